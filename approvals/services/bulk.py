"""Deciding several approval requests at once (the inbox's selection, the API's bulk call).

One choice and one comment, but no shortcut: each request is re-checked and decided on its
own by ``decisions.approval_decide``, in its own transaction with its own Decision, outbox
message and audit row, exactly as if decided alone. A refusal stops only its own request (and
is audited by ``approval_decide``, as every refusal is); the answer says per request what
happened. Only what concerns the batch as a whole is refused for all of it, before anything
is written (bad input, too many, mixed environments, a stale sign-in for PROD, not an
approver), and audited once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from core.roles import Role, user_roles

from ..models import ApprovalRequest, ApprovalStatus, DecisionStatus, OutboxState
from .decisions import approval_decide, decision_input_check, decision_refusal_record
from .refusals import NOT_AN_APPROVER, DecisionRefused
from .rules import decision_rules

DECIDED = "decided"


@dataclass(frozen=True)
class BulkOutcome:
    """What happened to one request of a bulk decision: ``code`` is ``decided`` or the
    refusal's code, ``http_status`` what deciding it alone would have answered."""

    approval_id: int
    decided: bool
    code: str
    message: str
    http_status: int
    decision_id: int | None = None
    status: str = ""  # the request's status afterwards ("" when it does not exist)

    @property
    def outcome(self) -> str:
        return "decided" if self.decided else "refused"


def bulk_ids_clean(*, approval_ids: Iterable) -> list[int]:
    """The ids asked for as integers, in the order given, duplicates dropped. Refuses (400)
    an id that is not a positive integer, an empty selection, and more than
    ``APPROVALS_BULK_MAX`` requests."""
    cleaned: list[int] = []
    for raw in approval_ids:
        if isinstance(raw, bool):
            raise _bad_ids(raw)
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, str) and raw.strip().isdigit():
            value = int(raw.strip())
        else:
            raise _bad_ids(raw)
        if value <= 0 or value > 2**63 - 1:
            raise _bad_ids(raw)
        if value not in cleaned:
            cleaned.append(value)
        if len(cleaned) > settings.APPROVALS_BULK_MAX:
            raise DecisionRefused(
                "bulk_too_many",
                f"Select at most {settings.APPROVALS_BULK_MAX} requests at once.",
                http_status=400,
            )
    if not cleaned:
        raise DecisionRefused("bulk_empty", "Select at least one pending request.", http_status=400)
    return cleaned


def _bad_ids(raw) -> DecisionRefused:
    shown = str(raw)[:40]
    return DecisionRefused(
        "bulk_bad_id", f"'{shown}' is not an approval request id.", http_status=400
    )


def bulk_environment_check(*, environments: dict[int, str]) -> str:
    """The one environment of the selection (``{approval id: environment}``); refuses (400)
    a selection that mixes them: QA and PROD are reviewed, and signed off, separately."""
    distinct = sorted(set(environments.values()))
    if len(distinct) > 1:
        counts = ", ".join(
            f"{sum(1 for e in environments.values() if e == env)} {env or 'without environment'}"
            for env in distinct
        )
        raise DecisionRefused(
            "bulk_mixed_environments",
            f"Only requests of the same environment can be decided together; this selection "
            f"mixes them ({counts}). Select QA or PROD requests only.",
            http_status=400,
            environments={str(pk): env for pk, env in environments.items()},
        )
    return distinct[0] if distinct else ""


def approvals_decide_bulk(
    *,
    approval_ids: Iterable,
    user,
    status: str,
    comment: str = "",
    authenticated_at: datetime | None = None,
    via: str = "web",
) -> list[BulkOutcome]:
    """Decide each selected request with the same choice and comment, one at a time through
    ``approval_decide``; the outcome of each, in the order asked (duplicates once).

    Raises ``DecisionRefused`` (audited once, nothing written) when the batch as a whole
    cannot go: bad ids, too many, bad input, mixed environments, not an approver, and for
    PROD a sign-in that is not recent (``ReauthenticationRequired``, as a single PROD
    decision answers)."""
    comment = (comment or "").strip()
    ids: list[int] = []
    try:
        if Role.APPROVER not in user_roles(user):  # before any input is read, as alone
            ids = _ids_for_audit(approval_ids)
            raise DecisionRefused("not_an_approver", NOT_AN_APPROVER)
        ids = bulk_ids_clean(approval_ids=approval_ids)
        decision_input_check(status=status, comment=comment)
        found = {
            a.pk: a
            for a in ApprovalRequest.objects.filter(pk__in=ids).select_related(
                "run", "model_version", "catalog_model"
            )
        }
        environment = bulk_environment_check(
            environments={pk: found[pk].environment for pk in ids if pk in found}
        )
        _sign_in_check(list(found.values()), user, authenticated_at, environment)
    except DecisionRefused as refusal:
        _batch_refusal_record(ids, user, status, refusal, via)
        raise
    return [
        _decide_one(pk, found.get(pk), user, status, comment, authenticated_at, via) for pk in ids
    ]


def _ids_for_audit(approval_ids) -> list[int]:
    try:
        return bulk_ids_clean(approval_ids=approval_ids)
    except DecisionRefused:
        return []


def _sign_in_check(approvals, user, authenticated_at, environment) -> None:
    """A selection that needs a recent sign-in (PROD) asks for it once, for the whole batch,
    before deciding any: the rule is the decision rules' own (``recent_sign_in``)."""
    for approval in approvals:
        for rule in decision_rules(approval=approval, user=user, authenticated_at=authenticated_at):
            if rule.code == "recent_sign_in":
                if not rule.ok:
                    raise rule.refusal(approval.pk)
                return


def _decide_one(pk, approval, user, status, comment, authenticated_at, via) -> BulkOutcome:
    if approval is None:
        return BulkOutcome(pk, False, "not_found", "No approval request with this id.", 404)
    try:
        decision = approval_decide(
            approval_id=pk,
            user=user,
            status=status,
            comment=comment,
            authenticated_at=authenticated_at,
            via=via,
        )
    except DecisionRefused as refusal:  # audited by approval_decide
        current = ApprovalRequest.objects.filter(pk=pk).values_list("status", flat=True).first()
        return BulkOutcome(
            pk, False, refusal.code, refusal.message, refusal.http_status, None, current or ""
        )
    except ApprovalRequest.DoesNotExist:  # deleted meanwhile
        return BulkOutcome(pk, False, "not_found", "No approval request with this id.", 404)
    approval.refresh_from_db(fields=["status"])
    return BulkOutcome(
        pk, True, DECIDED, _decided_message(approval, decision), 201, decision.pk, approval.status
    )


def _decided_message(approval: ApprovalRequest, decision) -> str:
    if decision.status == DecisionStatus.REJECTED:
        return "Rejected; the decision is on its way to Azure DevOps."
    if approval.status == ApprovalStatus.APPROVED:
        return "Approved; the decision is on its way to Azure DevOps."
    so_far = approval.decisions.filter(status=DecisionStatus.APPROVED).count()
    if getattr(decision, "outbox", None) is not None and decision.outbox.state == OutboxState.HELD:
        return (
            f"Your approval is recorded ({so_far} of {approval.required_approvers}) and held: "
            "a high-risk model needs another approver before anything goes to Azure DevOps."
        )
    return (
        f"Your approval is recorded ({so_far} of {approval.required_approvers}); "
        "it is on its way to Azure DevOps, which waits for the others."
    )


def _batch_refusal_record(ids, user, status, refusal: DecisionRefused, via) -> None:
    """One audit row for a refused batch (nothing was decided), naming the requests."""
    decision_refusal_record(
        approval_id=ids[0] if len(ids) == 1 else None,
        user=user,
        status=status,
        refusal=refusal,
        via=via,
        extra={"bulk": True, "approval_ids": ids[: settings.APPROVALS_BULK_MAX]},
    )
