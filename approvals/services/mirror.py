"""The mirror of one approval: ADO's JSON read into an ``ApprovalRequest`` (``approval_apply``),
and what ADO deciding it itself means for the portal's record and its audit trail.

Both the sync (polls, hooks) and the outbox (after a delivery) apply what ADO answered here,
so an approval is read the same way whoever read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.sync import SyncResultMixin
from pipelines.models import AdoProject, PipelineRun
from pipelines.services import run_refresh

from ..models import OPEN_STATUSES, ApprovalRequest, ApprovalStatus, AuditAction, DecidedIn
from .audit import PORTAL_MARK, SYSTEM_ACTOR, audit_record


@dataclass
class SyncResult(SyncResultMixin):
    """What one approvals sync did (``as_dict``: the stats ``ApprovalSync`` keeps and
    ``sync_approvals`` prints; ``new_ids`` is for the notifications and the binary check only)."""

    UNREPORTED = frozenset({"new_ids"})

    project: str
    mode: str  # poll | one
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    closed_in_ado: int = 0
    linked_runs_refreshed: int = 0
    imported: int = 0  # decided in ADO before the project's first sync (its history)
    error: str = ""
    new_ids: list[int] = field(default_factory=list)


# --- Reading ADO's JSON ----------------------------------------------------------------------


def ado_when(value) -> datetime | None:
    """A timestamp of ADO's JSON (naive ones are UTC), or None."""
    if not value:
        return None
    parsed = parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.utc)
    return parsed


def ado_identity(ref: dict | None) -> dict:
    """An identity reference of ADO's (a person or a group) as the mirror keeps it."""
    ref = ref or {}
    return {
        "id": str(ref.get("id") or ""),
        "name": str(ref.get("displayName") or ref.get("uniqueName") or ""),
        "unique_name": str(ref.get("uniqueName") or ""),
        "is_group": bool(ref.get("isContainer"))
        or str(ref.get("descriptor") or "").startswith("vssgp."),
    }


def ado_steps(data: dict) -> list[dict]:
    """The approval's steps (one per assigned approver) as the mirror keeps them."""
    steps = []
    for step in data.get("steps") or []:
        actual = step.get("actualApprover")
        steps.append(
            {
                "assigned": ado_identity(step.get("assignedApprover")),
                "actual": ado_identity(actual) if actual else None,
                "status": str(step.get("status") or ""),
                "comment": str(step.get("comment") or ""),
                "order": step.get("order") or 0,
                "initiated_on": step.get("initiatedOn") or "",
                "last_modified_on": step.get("lastModifiedOn") or "",
            }
        )
    return steps


def deciding_step(steps: list[dict], status: str) -> dict | None:
    """The last step whose approver gave ``status`` (who decided it, in ADO's eyes)."""
    acted = [s for s in steps if s.get("actual") and s.get("status") == status]
    acted.sort(key=lambda s: s.get("last_modified_on") or "")
    return acted[-1] if acted else None


# --- Upserting one approval ------------------------------------------------------------------


def _link(project, build_id: int | None, approval_id: str, client, result=None) -> tuple:
    """(run, stage) of an approval: the run from ``pipeline.owner.id``, the stage from the
    run's timeline (the stage whose checkpoint holds this approval). Re-reads the run once
    when the mirror does not know it yet."""
    if build_id is None:
        return None, None
    for attempt in (1, 2):
        run = (
            PipelineRun.objects.filter(pipeline__project=project, ado_id=build_id)
            .select_related("pipeline__catalog_model", "model_version")
            .first()
        )
        stage = None
        if run is not None:
            stage = next(
                (
                    s
                    for s in run.stages.all()
                    if approval_id in [str(i).lower() for i in s.approval_ids]
                ),
                None,
            )
        if (run is not None and stage is not None) or attempt == 2 or client is None:
            return run, stage
        run_refresh(project=project, build_id=build_id, client=client)
        if result is not None:
            result.linked_runs_refreshed += 1
    return None, None


def _build_id(owner: dict) -> int | None:
    try:
        return int(owner.get("id")) if owner.get("id") is not None else None
    except (TypeError, ValueError):
        return None


def _values(data: dict, steps: list[dict], build_id, run, stage) -> dict:
    """The columns ADO's JSON (and the run and stage it belongs to) give the request."""
    owner = ((data.get("pipeline") or {}).get("owner")) or {}
    created_on = ado_when(data.get("createdOn")) or timezone.now()
    ado_status = str(data.get("status") or ApprovalStatus.UNDEFINED)
    if ado_status not in ApprovalStatus.values:
        ado_status = ApprovalStatus.UNDEFINED
    values = {
        "build_id": build_id,
        "ado_status": ado_status,
        "instructions": str(data.get("instructions") or ""),
        "min_required_approvers": max(int(data.get("minRequiredApprovers") or 0), 0)
        or max(len(steps), 1),
        "execution_order": str(data.get("executionOrder") or "")[:20],
        "assigned_approvers": [s["assigned"] for s in steps],
        "blocked_approvers": [ado_identity(b) for b in data.get("blockedApprovers") or []],
        "steps": steps,
        "created_on": created_on,
        "last_modified_on": ado_when(data.get("lastModifiedOn")),
        "expires_at": created_on + timedelta(minutes=settings.APPROVALS_TIMEOUT_MINUTES),
    }
    pipeline_ref = data.get("pipeline") or {}
    if run is not None:
        values.update(
            run=run,
            pipeline_name=run.pipeline.name[:300],
            run_name=run.name[:300],
            catalog_model=run.pipeline.catalog_model,
            model_version=run.model_version,
            requested_by=run.requested_by[:300],
            requested_by_id=run.requested_by_id[:300],
        )
    else:
        values.update(
            pipeline_name=str(pipeline_ref.get("name") or "")[:300],
            run_name=str(owner.get("name") or "")[:300],
        )
    if stage is not None:
        values.update(stage=stage, stage_name=stage.name[:300], environment=stage.environment)
    return values


def approval_apply(
    *, project: AdoProject, data: dict, client=None, result: SyncResult | None = None
) -> str:
    """Upsert one approval from ADO's JSON; return created | updated | closed | unchanged.

    A decision made in the portal keeps the request closed while ADO still says pending (it
    is on its way); anything ADO decided itself is recorded as a change in ADO.
    """
    approval_id = str(data["id"]).lower()
    owner = ((data.get("pipeline") or {}).get("owner")) or {}
    build_id = _build_id(owner)
    existing = (
        ApprovalRequest.objects.filter(project=project, ado_id=approval_id)
        .select_related("run__pipeline__catalog_model", "run__model_version", "stage")
        .first()
    )
    needs_link = existing is None or existing.run_id is None or existing.stage_id is None
    run, stage = (
        _link(project, build_id, approval_id, client, result)
        if needs_link
        else (existing.run, existing.stage)
    )
    steps = ado_steps(data)
    values = _values(data, steps, build_id, run, stage)
    if existing is not None and not any(
        _differs(getattr(existing, k), v) for k, v in values.items()
    ):
        return "unchanged"  # the common case of a poll: one query, no lock, no write

    with transaction.atomic():
        request = (
            ApprovalRequest.objects.select_for_update(of=("self",))
            .filter(project=project, ado_id=approval_id)
            .first()
        )
        if request is None:
            return _create(project, approval_id, values, steps)
        return _update(request, values, steps)


def _create(project, approval_id: str, values: dict, steps: list[dict]) -> str:
    """A request the mirror did not hold: saved with its "requested" audit row."""
    ado_status = values["ado_status"]
    request = ApprovalRequest(project=project, ado_id=approval_id, last_synced_at=timezone.now())
    for key, value in values.items():
        setattr(request, key, value)
    request.status = ado_status
    if ado_status not in OPEN_STATUSES:
        _close_from_ado(request, steps)
    try:
        with transaction.atomic():
            request.save()
    except IntegrityError:
        return "unchanged"  # a concurrent sync created it
    audit_record(
        action=AuditAction.APPROVAL_REQUESTED,
        actor_name=request.requested_by or SYSTEM_ACTOR,
        approval=request,
        message=(
            f"{request.environment or 'An'} approval requested in ADO for "
            f"{request.pipeline_name or 'a pipeline'} run {request.run_name}".strip()
        ),
        detail={"ado_status": ado_status, "build_id": values["build_id"]},
        at=values["created_on"],
    )
    return "created"


def _update(request: ApprovalRequest, values: dict, steps: list[dict]) -> str:
    """A request the mirror holds (locked): ADO's changes applied, ADO's decision recorded."""
    ado_status = values["ado_status"]
    if ado_status in OPEN_STATUSES and request.ado_status not in OPEN_STATUSES:
        # ADO never reopens an approval: this JSON was read before it closed (a replayed
        # hook, a poll racing a hook). Applying it would regress what ADO said, and the
        # next read would record ADO's decision a second time.
        return "unchanged"
    changed = [k for k, v in values.items() if _differs(getattr(request, k), v)]
    for key in changed:
        setattr(request, key, values[key])
    outcome = "updated" if changed else "unchanged"
    if ado_status not in OPEN_STATUSES and "ado_status" in changed:
        outcome = _ado_closed(request, steps, ado_status)
    elif ado_status in OPEN_STATUSES and request.status not in OPEN_STATUSES:
        # ADO still waits: a portal decision on its way, or one ADO refused (kept closed).
        pass
    elif ado_status in OPEN_STATUSES:
        request.status = ado_status
    request.last_synced_at = timezone.now()
    request.save()
    return outcome


def _differs(current, new) -> bool:
    if hasattr(current, "pk") or hasattr(new, "pk"):
        return getattr(current, "pk", current) != getattr(new, "pk", new)
    return current != new


# --- ADO decided ---------------------------------------------------------------------------


def _close_from_ado(request: ApprovalRequest, steps: list[dict]) -> None:
    step = deciding_step(steps, request.ado_status)
    request.status = request.ado_status
    request.decided_at = (
        ado_when(step.get("last_modified_on")) if step else None
    ) or request.last_modified_on
    request.decided_by = ((step or {}).get("actual") or {}).get("name", "")[:300]
    request.decided_in = DecidedIn.ADO


def _ado_closed(request: ApprovalRequest, steps: list[dict], ado_status: str) -> str:
    """ADO closed the approval. If the portal decided the same way, that is ADO confirming
    it; otherwise ADO (a person there, a timeout, a cancel) decided, and the page says so."""
    portal_decided = request.decided_in == DecidedIn.PORTAL
    # Confirmed only if a step that decided it carries the portal's mark: the same outcome
    # from someone else in ADO (before our PATCH arrived) is ADO's decision, not ours.
    ours = any(
        s.get("status") == ado_status and PORTAL_MARK in (s.get("comment") or "") for s in steps
    )
    if portal_decided and request.status == ado_status and ours:
        audit_record(
            action=AuditAction.APPROVAL_CONFIRMED,
            actor_name=SYSTEM_ACTOR,
            approval=request,
            message=f"ADO shows the approval {ado_status}, as decided in the portal.",
            detail={"ado_status": ado_status},
        )
        return "updated"
    before = request.status
    _close_from_ado(request, steps)
    step = deciding_step(steps, ado_status)
    who = request.decided_by or "ADO"
    comment = (step or {}).get("comment", "")
    label = ApprovalStatus(ado_status).label.lower()
    audit_record(
        action=AuditAction.APPROVAL_CHANGED_IN_ADO,
        actor_name=who,
        approval=request,
        message=(
            f"{label.capitalize()} in Azure DevOps"
            + (f" by {who}" if request.decided_by else "")
            + (f": {comment}" if comment else "")
            + (f" (the portal had it {before})" if portal_decided else "")
        ),
        detail={"ado_status": ado_status, "previous_status": before, "comment": comment},
        at=request.decided_at,
    )
    return "closed"
