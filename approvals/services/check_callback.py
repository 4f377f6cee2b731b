"""The automated check's answer to ADO, through its outbox (``CheckCallback``): one delivery
attempt claims the row (``leases.lease_claim``, as a decision's delivery does), appends the
reasons to the check's timeline record log, then posts ``TaskCompleted`` with the job's token.

Exactly once, as ADO sees it: a worker killed before sending leaves the row queued, and the
sweep sends it after the lease runs out; killed after sending but before marking, the repeat
``TaskCompleted`` is answered harmlessly by ADO (the task is already completed). The log lines
are marked sent before the event, so a retry after them does not append them again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.tasks import enqueue

from .. import client as ado
from ..models import AuditAction, CallbackState, CheckCallback, CheckRequest
from .audit import audit_record
from .check import CALLBACK_TASK, CHECK_ACTOR, EVALUATE_TASK, check_token_decrypt
from .delivery import DeliveryOutcome, delivery_backoff
from .leases import lease_claim, lease_due_ids

logger = logging.getLogger(__name__)


def check_callback_deliver(
    *, callback_id: int, client: ado.PlanClient | None = None
) -> DeliveryOutcome:
    """One attempt: claim, log lines (once), TaskCompleted, record the outcome."""
    callback, busy_for = lease_claim(
        model=CheckCallback,
        pk=callback_id,
        seconds=settings.APPROVALS_CHECK_CLAIM_SECONDS,
        related=("request", "evaluation"),
    )
    if callback is None:
        if busy_for is not None:
            return DeliveryOutcome("busy", retry_in=busy_for)
        return DeliveryOutcome("missing")
    request = callback.request
    try:
        token = check_token_decrypt(encrypted=request.auth_token)
    except ValueError as exc:
        return _failed(callback, f"The job's token cannot be read: {exc}")
    client = client or ado.plan_client(request, token)
    try:
        if callback.log_sent_at is None and request.timeline_id and callback.log_lines:
            client.append_feed(
                timeline_id=request.timeline_id,
                record_id=request.task_instance_id,
                lines=list(callback.log_lines),
            )
            CheckCallback.objects.filter(pk=callback.pk).update(log_sent_at=timezone.now())
        client.task_completed(
            task_id=request.task_instance_id, job_id=request.job_id, result=callback.result
        )
    except (ado.AdoAuthError, ado.AdoNotFound, ado.AdoBadRequest) as exc:
        return _failed(callback, f"ADO refused the check's result: {exc}")
    except ado.AdoError as exc:
        return _retry_later(callback, str(exc), exc.retry_after)
    return _delivered(callback)


def _delivered(callback: CheckCallback) -> DeliveryOutcome:
    request = callback.request
    with transaction.atomic():
        CheckCallback.objects.filter(pk=callback.pk).update(
            state=CallbackState.DELIVERED,
            delivered_at=timezone.now(),
            claimed_until=None,
            last_error="",
        )
        audit_record(
            action=AuditAction.CHECK_CALLBACK_SENT,
            actor_name=CHECK_ACTOR,
            environment=request.environment,
            model_name=request.model_name,
            message=f"Told ADO the check {callback.result} for {request.model_name} "
            f"v{request.version or '?'} to {request.environment} (attempt {callback.attempts}).",
            detail={"check_request": request.pk, "callback": callback.pk},
        )
    return DeliveryOutcome(CallbackState.DELIVERED)


def _failed(callback: CheckCallback, reason: str) -> DeliveryOutcome:
    request = callback.request
    with transaction.atomic():
        CheckCallback.objects.filter(pk=callback.pk).update(
            state=CallbackState.FAILED, claimed_until=None, last_error=reason[:2000]
        )
        audit_record(
            action=AuditAction.CHECK_CALLBACK_FAILED,
            actor_name=CHECK_ACTOR,
            environment=request.environment,
            model_name=request.model_name,
            message=f"The check's result could not be sent to ADO: {reason[:1000]} "
            "(ADO fails or skips the stage at the check's timeout).",
            detail={"check_request": request.pk, "callback": callback.pk},
        )
    logger.warning("check callback %s failed: %s", callback.pk, reason)
    return DeliveryOutcome(CallbackState.FAILED, detail=reason)


def _retry_later(callback: CheckCallback, reason: str, retry_after: float | None):
    delay = delivery_backoff(callback.attempts, retry_after)
    CheckCallback.objects.filter(pk=callback.pk).update(
        claimed_until=None,
        last_error=reason[:2000],
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    logger.info("check callback %s: %s; retrying in %.1f s", callback.pk, reason, delay)
    return DeliveryOutcome(CallbackState.QUEUED, retry_in=delay, detail=reason)


def checks_sweep() -> dict:
    """What a lost task left behind: callbacks due with no live lease are queued again, and
    requests never evaluated (the broker was down when ADO called) are evaluated."""
    stuck = settings.APPROVALS_CHECK_STUCK_SECONDS
    callbacks = [
        pk
        for pk in lease_due_ids(model=CheckCallback, stuck_seconds=stuck)
        if enqueue(CALLBACK_TASK, pk)
    ]
    unevaluated = list(
        CheckRequest.objects.filter(
            evaluations__isnull=True, received_at__lte=timezone.now() - timedelta(seconds=stuck)
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:500]
    )
    evaluations = [pk for pk in unevaluated if enqueue(EVALUATE_TASK, pk)]
    if callbacks or evaluations:
        logger.info("check sweep re-queued callbacks %s, evaluations %s", callbacks, evaluations)
    return {"callbacks": callbacks, "evaluations": evaluations}
