"""One delivery attempt of a decision to ADO (``outbox_deliver``): at least once, applied once.

The deliverer claims the message (a conditional UPDATE: never two workers at once), reads the
approval in ADO, and PATCHes only if ADO does not already carry the decision (found by the
portal's mark in a step's comment). Each outcome is written with its audit row in one
transaction; what ADO answered is applied to the mirror (``mirror.approval_apply``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from .. import client as ado
from ..models import OPEN_STATUSES, ApprovalStatus, AuditAction, OutboxMessage, OutboxState
from .audit import DELIVERY_ACTOR, PORTAL_MARK, audit_record
from .identity import (
    IDENTITY_FALLBACK,
    IDENTITY_NEEDS_SIGNIN,
    IDENTITY_PORTAL,
    IDENTITY_USER,
    DeliveryIdentity,
    delivery_identity,
    is_the_approver,
)
from .leases import lease_claim
from .mirror import ado_identity, ado_steps, approval_apply, deciding_step

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    state: str  # an OutboxState, or "busy" (someone else holds it) / "missing"
    retry_in: float | None = None  # seconds, when it should be tried again
    detail: str = ""


def delivery_backoff(attempts: int, retry_after: float | None) -> float:
    """Seconds before the next attempt: exponential with jitter, capped, never shorter than
    the Retry-After ADO asked for."""
    base = settings.APPROVALS_DELIVERY_BACKOFF_SECONDS
    cap = settings.APPROVALS_DELIVERY_BACKOFF_MAX_SECONDS
    delay = min(cap, base * (2 ** max(attempts - 1, 0)))
    delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter
    return max(delay, retry_after or 0)


def _claim(message_id: int) -> tuple[OutboxMessage | None, float | None]:
    """Take the message for one delivery attempt (``leases.lease_claim``: never two workers
    at once). Returns (message, None) or (None, seconds until it may be free)."""
    return lease_claim(
        model=OutboxMessage,
        pk=message_id,
        seconds=settings.APPROVALS_DELIVERY_CLAIM_SECONDS,
        related=("decision__user", "approval__project", "approval__catalog_model"),
    )


def _ours(data: dict, message: OutboxMessage) -> dict | None:
    """The step of ADO's approval that carries this decision, if ADO already has it."""
    mark = f"{PORTAL_MARK} {message.decision_id})"
    for step in data.get("steps") or []:
        if mark in str(step.get("comment") or ""):
            return step
        for entry in step.get("history") or []:
            if mark in str(entry.get("comment") or ""):
                return step
    return None


@dataclass
class _Attempt:
    """One claimed message on its way: whether the PATCH went out, and under whose identity
    (what an error after it means depends on both)."""

    message: OutboxMessage
    client: ado.AdoClient
    sent: bool = False
    identity: DeliveryIdentity | None = None


def outbox_deliver(*, message_id: int, client: ado.AdoClient | None = None) -> DeliveryOutcome:
    """One delivery attempt: claim, read the approval in ADO, PATCH only if needed, record."""
    message, busy_for = _claim(message_id)
    if message is None:
        if busy_for is not None:
            return DeliveryOutcome("busy", retry_in=busy_for)
        return DeliveryOutcome("missing")
    try:
        client = client or ado.delivery_client(message.approval.project)
    except ImproperlyConfigured as exc:  # no credentials: visible, not a silent loop
        return _failed(message, f"The portal has no ADO credentials: {exc}")
    attempt = _Attempt(message, client)
    try:
        return _send_unless_there(attempt)
    except ado.AdoBadRequest as exc:
        return _after_refused_patch(attempt, exc)
    except ado.AdoNotFound as exc:
        return _failed(message, f"ADO no longer has this approval (deleted or moved): {exc}")
    except ado.AdoAuthError as exc:
        return _after_auth_error(attempt, exc)
    except (ado.AdoThrottled, ado.AdoUnavailable) as exc:
        return _retry_later(message, str(exc), exc.retry_after)
    except ado.AdoError as exc:
        return _retry_later(message, str(exc), exc.retry_after)


def _send_unless_there(attempt: _Attempt) -> DeliveryOutcome:
    """Read the approval; PATCH the decision only if ADO has neither it nor an outcome."""
    message, approval = attempt.message, attempt.message.approval
    current = attempt.client.get_approval(approval.ado_id, expand_steps=True)
    step = _ours(current, message)
    if step is None and current.get("status") in OPEN_STATUSES:
        try:
            attempt.identity = delivery_identity(message)
        except Exception as exc:  # Entra unreachable: try again later, nothing sent
            logger.warning("no delegated token for outbox message %s: %s", message.pk, exc)
            return _retry_later(
                message, f"Microsoft Entra ID did not answer ({type(exc).__name__})", None
            )
        if attempt.identity.kind == IDENTITY_NEEDS_SIGNIN:
            return _needs_signin(message, attempt.identity.reason)
        attempt.sent = True
        answer = attempt.client.update_approvals(
            list(message.payload), bearer_token=attempt.identity.token
        )
        current = next(
            (a for a in answer if str(a.get("id", "")).lower() == approval.ado_id), current
        )
        step = _ours(current, message) or {"status": message.decision.status}
    if step is not None:
        return _delivered(message, current, step, attempt.sent, attempt.identity)
    return _already_decided(message, current)


def _after_refused_patch(attempt: _Attempt, exc: ado.AdoBadRequest) -> DeliveryOutcome:
    """ADO refused the PATCH: most often someone decided it in ADO in the meantime."""
    message = attempt.message
    try:
        current = attempt.client.get_approval(message.approval.ado_id, expand_steps=True)
    except ado.AdoError:
        current = None
    step = _ours(current, message) if current is not None else None
    if step is not None:
        return _delivered(message, current, step, attempt.sent, attempt.identity)
    if current is not None and current.get("status") not in OPEN_STATUSES:
        return _already_decided(message, current)
    return _failed(message, f"ADO refused the decision: {exc}")


def _after_auth_error(attempt: _Attempt, exc: ado.AdoAuthError) -> DeliveryOutcome:
    """ADO refused the credentials: the approver's own (sign in again, or no permission) or
    the portal's (an operator fixes them, then retries)."""
    message = attempt.message
    if attempt.sent and attempt.identity is not None and attempt.identity.kind == IDENTITY_USER:
        name = message.decision.user_name
        if exc.status == 401:
            return _needs_signin(
                message,
                f"Azure DevOps did not accept {name}'s sign-in ({exc}); signing in again "
                "sends the decision.",
            )
        return _failed(
            message,
            f"Azure DevOps refused {name}'s own permission to decide this approval ({exc}).",
        )
    return _failed(
        message,
        f"ADO refused the portal's credentials ({exc}); fix them, then retry the delivery.",
    )


# --- Outcomes: each written with its audit row in one transaction ------------------------------


def _attempt_audit(message, action, text, detail=None) -> None:
    audit_record(
        action=action,
        actor_name=DELIVERY_ACTOR,
        approval=message.approval,
        decision=message.decision,
        message=text,
        detail={"outbox_message": message.pk, "attempt": message.attempts, **(detail or {})},
    )


def _delivered(
    message: OutboxMessage,
    current: dict,
    step: dict,
    sent: bool,
    identity: DeliveryIdentity | None = None,
) -> DeliveryOutcome:
    actual = ado_identity(step.get("actualApprover")) if step.get("actualApprover") else {}
    if identity is not None and sent:
        sent_as = IDENTITY_USER if identity.kind == IDENTITY_USER else IDENTITY_PORTAL
    else:  # found in ADO by its marker: whose name ADO shows says how it went
        sent_as = IDENTITY_USER if is_the_approver(message.decision.user, actual) else "portal"
    outcome = {
        "ado_status": current.get("status"),
        "step_status": step.get("status"),
        "actual_approver": actual.get("name") or actual.get("unique_name") or "",
        "actual_approver_id": actual.get("id") or "",
        "patched_now": sent,
        "identity": sent_as,
    }
    if identity is not None and identity.kind == IDENTITY_FALLBACK and sent:
        outcome["fallback_reason"] = identity.reason
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxState.DELIVERED,
            delivered_at=timezone.now(),
            claimed_until=None,
            last_error="",
            ado_outcome=outcome,
        )
        _attempt_audit(
            message,
            AuditAction.DELIVERY_DELIVERED,
            "Delivered to Azure DevOps"
            + (f" as {outcome['actual_approver']}" if outcome["actual_approver"] else "")
            + ("" if sent else " (ADO already had it; nothing re-sent)"),
            outcome,
        )
        if "fallback_reason" in outcome:
            _attempt_audit(
                message,
                AuditAction.DELIVERY_FALLBACK,
                f"Sent with the portal's own identity instead of {message.decision.user_name}'s "
                f"({identity.reason}); ADO shows the portal as the approver, and "
                f"{message.decision.user_name}'s name is in the comment.",
                {"reason": identity.reason, "actual_approver": outcome["actual_approver"]},
            )
    approval_apply(project=message.approval.project, data=current)
    return DeliveryOutcome(OutboxState.DELIVERED)


def _needs_signin(message: OutboxMessage, reason: str) -> DeliveryOutcome:
    """The approver's own token cannot be had: the decision waits, not swept, until they
    sign in again (``outbox_requeue_after_sign_in``)."""
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxState.NEEDS_SIGNIN, claimed_until=None, last_error=reason[:2000]
        )
        _attempt_audit(message, AuditAction.DELIVERY_NEEDS_SIGNIN, reason[:2000])
    logger.info("outbox message %s waits for its approver's sign-in: %s", message.pk, reason)
    return DeliveryOutcome(OutboxState.NEEDS_SIGNIN, detail=reason)


def _already_decided(message: OutboxMessage, current: dict) -> DeliveryOutcome:
    status = str(current.get("status") or "")
    steps = ado_steps(current)
    who = ((deciding_step(steps, status) or {}).get("actual") or {}).get("name", "")
    label = ApprovalStatus(status).label.lower() if status in ApprovalStatus.values else status
    text = f"Not sent: the approval was already {label} in Azure DevOps" + (
        f" by {who}" if who else ""
    )
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxState.ALREADY_DECIDED,
            claimed_until=None,
            last_error=text,
            ado_outcome={"ado_status": status, "decided_by": who},
        )
        _attempt_audit(message, AuditAction.DELIVERY_ALREADY_DECIDED, text, {"ado_status": status})
    approval_apply(project=message.approval.project, data=current)
    return DeliveryOutcome(OutboxState.ALREADY_DECIDED, detail=text)


def _failed(message: OutboxMessage, reason: str) -> DeliveryOutcome:
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxState.FAILED, claimed_until=None, last_error=reason[:2000]
        )
        _attempt_audit(message, AuditAction.DELIVERY_FAILED, reason[:2000])
    logger.warning("delivery of outbox message %s failed: %s", message.pk, reason)
    return DeliveryOutcome(OutboxState.FAILED, detail=reason)


def _retry_later(message: OutboxMessage, reason: str, retry_after: float | None):
    delay = delivery_backoff(message.attempts, retry_after)
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            claimed_until=None,
            last_error=reason[:2000],
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        _attempt_audit(
            message,
            AuditAction.DELIVERY_ATTEMPT,
            f"Attempt {message.attempts} did not reach ADO ({reason[:300]}); "
            f"next try in {delay:.0f} s.",
            {"retry_in_seconds": round(delay, 1)},
        )
    logger.info("outbox message %s: %s; retrying in %.1f s", message.pk, reason, delay)
    return DeliveryOutcome(OutboxState.QUEUED, retry_in=delay, detail=reason)
