"""The outbox's queue: a decision's delivery queued by task name once its transaction commits
(``core.tasks``, so no service imports the tasks module), the sweep that re-queues what a lost
task left behind, an admin's retry, and the decisions that waited for their approver's sign-in.
One delivery attempt is ``delivery.outbox_deliver``."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.roles import Role, user_roles
from core.tasks import enqueue, enqueue_after_commit

from ..models import AuditAction, OutboxMessage, OutboxState
from .audit import audit_record
from .leases import lease_due_ids
from .refusals import DecisionRefused

logger = logging.getLogger(__name__)

DELIVER_TASK = "approvals.deliver_decision"


def outbox_enqueue(*, message_id: int) -> bool:
    """Queue one delivery now; False (logged) when the broker is down: the message waits in
    the database and the sweep queues it again."""
    return enqueue(DELIVER_TASK, message_id)


def outbox_enqueue_after_commit(*, message_id: int) -> None:
    """Queue one delivery once the transaction that wrote its message commits."""
    enqueue_after_commit(DELIVER_TASK, message_id)


def outbox_requeue_after_sign_in(*, user) -> list[int]:
    """``user`` signed in again: their decisions waiting for it go back to the queue."""
    requeued = []
    with transaction.atomic():
        waiting = list(
            OutboxMessage.objects.select_for_update(of=("self",))
            .filter(state=OutboxState.NEEDS_SIGNIN, decision__user=user)
            .select_related("approval__catalog_model", "decision")
        )
        for message in waiting:
            _requeue_audited(
                message,
                user,
                "Signed in again: the decision that waited for it is sent now.",
                {"outbox_message": message.pk, "after": "sign_in"},
            )
            requeued.append(message.pk)
    for message_id in requeued:
        outbox_enqueue_after_commit(message_id=message_id)
    return requeued


def outbox_sweep() -> list[int]:
    """Re-queue messages that have been due for over a minute with no worker on them: their
    task was lost (broker down when it was queued, a worker killed mid-delivery)."""
    ids = lease_due_ids(model=OutboxMessage, stuck_seconds=settings.APPROVALS_OUTBOX_STUCK_SECONDS)
    requeued = []
    for message_id in ids:
        if outbox_enqueue(message_id=message_id):
            requeued.append(message_id)
    if requeued:
        logger.info("outbox sweep re-queued %d message(s): %s", len(requeued), requeued)
    return requeued


def outbox_retry(*, message_id: int, user) -> OutboxMessage:
    """An admin's retry of a failed delivery: back to the queue, audited."""
    if Role.ADMIN not in user_roles(user):  # the page, the API and the admin agree
        raise DecisionRefused(
            "not_an_admin", "Only an admin can retry a failed delivery.", http_status=403
        )
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(of=("self",))
            .select_related("approval__catalog_model", "decision")
            .get(pk=message_id)
        )
        if message.state != OutboxState.FAILED:
            raise DecisionRefused(
                "not_failed",
                f"Only a failed delivery can be retried; this one is "
                f"{message.get_state_display().lower()}.",
                http_status=409,
            )
        _requeue_audited(
            message,
            user,
            f"Retry of the failed delivery requested (last error: {message.last_error})",
            {"outbox_message": message.pk},
        )
    outbox_enqueue_after_commit(message_id=message_id)
    return message


def _requeue_audited(message: OutboxMessage, user, why: str, detail: dict) -> None:
    """Put a held delivery back in the queue now (inside the caller's locking transaction),
    with the audit row that says who asked and why."""
    message.state = OutboxState.QUEUED
    message.next_attempt_at = timezone.now()
    message.claimed_until = None
    message.save(update_fields=["state", "next_attempt_at", "claimed_until"])
    audit_record(
        action=AuditAction.DELIVERY_RETRY_REQUESTED,
        actor=user,
        approval=message.approval,
        decision=message.decision,
        message=why,
        detail=detail,
    )
