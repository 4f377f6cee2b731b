"""Decisions: a person's approve or reject, written with its outbox message and its audit row
in one transaction before anything is sent; a refusal is audited too, in its own."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.machine_access import MachineCredential
from core.request_context import get_request_id
from core.roles import Role, user_roles

from ..models import (
    ApprovalRequest,
    AuditAction,
    DecidedIn,
    Decision,
    DecisionStatus,
    OutboxMessage,
    OutboxState,
)
from .audit import PORTAL_MARK, audit_record, user_display_name
from .outbox import outbox_enqueue_after_commit
from .rules import HUMAN_DECISION_REQUIRED, NOT_AN_APPROVER, DecisionRefused, decision_rules

logger = logging.getLogger(__name__)


def decision_role_check(*, approval_id: int, user, status: str = "", via: str = "web") -> None:
    """Refuse (audited) anyone without the approver role before their input is read, so the
    page and the API answer a wrong role's attempt with the same 403 and the same audit row."""
    if Role.APPROVER in user_roles(user):
        return
    refusal = DecisionRefused("not_an_approver", NOT_AN_APPROVER)
    decision_refusal_record(
        approval_id=approval_id, user=user, status=status, refusal=refusal, via=via
    )
    raise refusal


def decision_token_check(
    *, approval_id: int, user, credential: MachineCredential | None, via: str = "api"
) -> None:
    """Refuse (audited) a decision attempted with a token of either kind, whatever its roles:
    an approval is decided by a person in a signed-in session, never by a script."""
    if credential is None:
        return
    refusal = DecisionRefused(
        "human_decision_required",
        f"{HUMAN_DECISION_REQUIRED} This call came with a {credential.describe()}.",
    )
    decision_refusal_record(
        approval_id=approval_id,
        user=user,
        status="",
        refusal=refusal,
        via=via,
        extra={"credential": credential.audit_facts()},
    )
    raise refusal


def decision_input_check(*, status: str, comment: str) -> None:
    """Refuse (400) a status that is neither approve nor reject, a rejection without a
    comment, a comment too long: the one check of a decision's input (single and bulk)."""
    if status not in DecisionStatus.values:
        raise DecisionRefused("invalid_status", "Choose approve or reject.", http_status=400)
    if status == DecisionStatus.REJECTED and not comment:
        raise DecisionRefused(
            "comment_required", "A rejection needs a comment saying why.", http_status=400
        )
    if len(comment) > settings.APPROVALS_COMMENT_MAX_LENGTH:
        raise DecisionRefused(
            "comment_too_long",
            f"Keep the comment under {settings.APPROVALS_COMMENT_MAX_LENGTH} characters.",
            http_status=400,
        )


def _decision_rules_check(approval: ApprovalRequest, user, authenticated_at, status: str) -> None:
    """Refuse at the first failed rule; a rejection passes the promotion gates."""
    for rule in decision_rules(approval=approval, user=user, authenticated_at=authenticated_at):
        if rule.ok or (rule.approve_only and status == DecisionStatus.REJECTED):
            continue
        raise rule.refusal(approval.pk)


def approval_decide(
    *,
    approval_id: int,
    user,
    status: str,
    comment: str = "",
    authenticated_at: datetime | None = None,
    via: str = "web",
    dry_run: bool = False,
) -> Decision | None:
    """Record a person's decision with its outbox message and audit row, in one transaction,
    and queue its delivery. Raises ``DecisionRefused`` (audited) when a rule says no.

    ``dry_run``: check and audit exactly the same, but record nothing and return None (the
    page's "are you sure?" step, so its refusals are recorded like every other)."""
    comment = (comment or "").strip()
    try:
        decision_input_check(status=status, comment=comment)
        if dry_run:
            approval = ApprovalRequest.objects.select_related(
                "run", "model_version", "catalog_model"
            ).get(pk=approval_id)
            _decision_rules_check(approval, user, authenticated_at, status)
            return None
        with transaction.atomic():
            approval = (
                ApprovalRequest.objects.select_for_update(of=("self",))
                .select_related("run", "model_version", "catalog_model")
                .get(pk=approval_id)
            )
            _decision_rules_check(approval, user, authenticated_at, status)
            decision = _decision_write(approval, user, status, comment, via)
    except DecisionRefused as refusal:
        decision_refusal_record(
            approval_id=approval_id, user=user, status=status, refusal=refusal, via=via
        )
        raise
    # Released held approvals go first: ADO then has both before the closing one arrives.
    for released in getattr(decision, "released", None) or []:
        outbox_enqueue_after_commit(message_id=released)
    if decision.outbox.state == OutboxState.QUEUED:
        outbox_enqueue_after_commit(message_id=decision.outbox.pk)
    return decision


def _decision_write(approval, user, status, comment, via) -> Decision:
    now = timezone.now()
    name = user_display_name(user)
    decision = Decision.objects.create(
        approval=approval,
        user=user,
        user_name=name[:300],
        status=status,
        comment=comment,
        request_id=(get_request_id() or "")[:100],
        via=via,
    )
    approvals_so_far = approval.decisions.filter(status=DecisionStatus.APPROVED).count()
    required = approval.required_approvers
    closes = status == DecisionStatus.REJECTED or approvals_so_far >= required
    # Short of the portal's number (a high-risk model in PROD), an approval is recorded but
    # held: one approval in ADO would already pass ADO's own gate.
    held = (
        status == DecisionStatus.APPROVED
        and not closes
        and required > (approval.min_required_approvers)
    )
    ado_comment = f"{comment}\n\n— {name} ({PORTAL_MARK} {decision.pk})".strip()
    message = OutboxMessage.objects.create(
        decision=decision,
        approval=approval,
        payload=[{"approvalId": approval.ado_id, "status": status, "comment": ado_comment}],
        next_attempt_at=now,
        state=OutboxState.HELD if held else OutboxState.QUEUED,
    )
    if closes:
        approval.status = status
        approval.decided_at = now
        approval.decided_by = name[:300]
        approval.decided_in = DecidedIn.PORTAL
        approval.save(update_fields=["status", "decided_at", "decided_by", "decided_in"])
    verb = "Approved" if status == DecisionStatus.APPROVED else "Rejected"
    audit_record(
        action=AuditAction.DECISION_MADE,
        actor=user,
        approval=approval,
        decision=decision,
        message=" ".join(filter(None, (verb, approval.environment, "deployment")))
        + (f": {comment}" if comment else ""),
        detail={
            "status": status,
            "outbox_message": message.pk,
            "approvals_so_far": approvals_so_far,
            "required": required,
            "ado_required": approval.min_required_approvers,
            "closes_request": closes,
            "held": held,
            "via": via,
        },
        at=now,
    )
    if held:
        audit_record(
            action=AuditAction.DELIVERY_HELD,
            actor=user,
            approval=approval,
            decision=decision,
            message=f"Approval {approvals_so_far} of {required} recorded and held: "
            f"{HIGH_RISK_RULE}",
            detail={"outbox_message": message.pk, "required": required},
            at=now,
        )
    if closes:
        decision.released = _held_settle(approval, user, status, now)
    return decision


HIGH_RISK_RULE = "a high-risk model needs two approvers in PROD"


def _held_settle(approval, user, status: str, now) -> list[int]:
    """The closing decision: held approvals are released (an approval closed it: the delivery
    reads ADO first, so the second message becomes "already decided") or withdrawn (a
    rejection closed it: they are never sent). Returns the released messages' ids."""
    held = list(
        OutboxMessage.objects.select_for_update().filter(approval=approval, state=OutboxState.HELD)
    )
    released = []
    for message in held:
        if status == DecisionStatus.APPROVED:
            message.state, message.next_attempt_at = OutboxState.QUEUED, now
            action, text = AuditAction.DELIVERY_RELEASED, "Held approval released: sent to ADO"
            released.append(message.pk)
        else:
            message.state, message.next_attempt_at = OutboxState.WITHDRAWN, now
            action = AuditAction.DELIVERY_WITHDRAWN
            text = "Held approval not sent: the request was rejected"
        message.save(update_fields=["state", "next_attempt_at"])
        audit_record(
            action=action,
            actor=user,
            approval=approval,
            decision=message.decision,
            message=text,
            detail={"outbox_message": message.pk},
            at=now,
        )
    return released


def decision_refusal_record(
    *, approval_id, user, status: str, refusal: DecisionRefused, via: str, extra=None
) -> None:
    """The audit row of a refused decision attempt: the one way the page's and the API's
    refusals (bad input, a rule, a wrong role) are recorded."""
    approval = (
        ApprovalRequest.objects.filter(pk=approval_id).select_related("catalog_model").first()
    )
    what = f"Refused to record '{status}'" if status else "Refused a decision"
    try:
        audit_record(
            action=AuditAction.DECISION_REFUSED,
            actor=user,
            approval=approval,
            message=f"{what}: {refusal.message}",
            detail={"code": refusal.code, "status": status, "via": via, **(extra or {})},
        )
    except Exception:  # the refusal stands even if its audit row cannot be written
        logger.exception("could not audit a refused decision on approval %s", approval_id)
