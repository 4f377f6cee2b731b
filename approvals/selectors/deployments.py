"""Who approved each deployment of the pipelines' deployment history (the hook
PIPELINES_DEPLOYMENT_ANNOTATORS names approvals.sections.deployment_approvers)."""

from __future__ import annotations

from django.db.models import Q
from django.urls import reverse

from ..models import ApprovalRequest, ApprovalStatus, DecidedIn, Decision, DecisionStatus


def _approvers(approval: dict, decided: dict[int, list[str]]) -> list[str]:
    """The people who approved: ADO's approved steps when ADO decided it, else the
    portal's approve decisions."""
    if approval["decided_in"] == DecidedIn.ADO:
        names = []
        for step in approval["steps"] or []:
            if not isinstance(step, dict) or step.get("status") != ApprovalStatus.APPROVED:
                continue
            who = step.get("actual") or step.get("assigned") or {}
            names.append(str(who.get("name") or who.get("unique_name") or ""))
        by = approval["decided_by"]
        return [n for n in names if n] or ([by] if by else [])
    return decided.get(approval["pk"], [])


def deployment_approvers(records) -> dict[int, dict]:
    """{record pk: {"approved_by": [...], "approval_url": ...}} for deployment records: the
    approvals of the record's stage (its ADO approval ids), else of its run and environment.
    Two queries (approvals, their approve decisions), whatever the number of records."""
    records = list(records)
    if not records:
        return {}
    ado_ids = {str(i) for r in records for i in (r.approval_ids or [])}
    run_ids = {r.run_id for r in records}
    approvals = list(
        ApprovalRequest.objects.filter(Q(ado_id__in=ado_ids) | Q(run_id__in=run_ids))
        .order_by("created_on", "pk")
        .values("pk", "ado_id", "run_id", "environment", "steps", "decided_in", "decided_by")
    )
    decided: dict[int, list[str]] = {}
    portal_decided = [a["pk"] for a in approvals if a["decided_in"] != DecidedIn.ADO]
    if portal_decided:
        for approval_id, name in (
            Decision.objects.filter(approval_id__in=portal_decided, status=DecisionStatus.APPROVED)
            .order_by("created_at", "pk")
            .values_list("approval_id", "user_name")
        ):
            decided.setdefault(approval_id, []).append(name)
    by_ado = {a["ado_id"]: a for a in approvals}
    by_run: dict[tuple[int, str], list[dict]] = {}
    for approval in approvals:
        by_run.setdefault((approval["run_id"], approval["environment"]), []).append(approval)
    # Reversed once, the pk filled in (the pattern ends "<int:pk>/").
    detail_prefix = reverse("approvals:detail", kwargs={"pk": 1})[: -len("1/")]
    result: dict[int, dict] = {}
    for record in records:
        found = [by_ado[str(i)] for i in record.approval_ids or [] if str(i) in by_ado]
        found = found or by_run.get((record.run_id, record.environment), [])
        if not found:
            continue
        names: list[str] = []
        for approval in found:
            names += [n for n in _approvers(approval, decided) if n not in names]
        result[record.pk] = {
            "approved_by": names,
            "approval_url": f"{detail_prefix}{found[-1]['pk']}/",
        }
    return result
