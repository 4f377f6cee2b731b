"""Runs the portal asks ADO to queue: a person's click, or a drift / new-data event.

The web process never calls ADO itself: ``trigger_run`` records the request (the outbox row)
and queues the task (by name, after commit) that sends it with ``run_request_send``.

Exactly once, the way decisions are delivered (docs/pipelines.md): each request carries its
own key as the template parameter ``portalRequestId``. A worker claims the row for one
attempt; an attempt that may have reached ADO (a timeout, a 5xx, a worker killed mid-call)
is retried with backoff, and every retry first looks in ADO for a run carrying the key, so a
request that did queue is linked, never queued twice. A pipeline that does not declare the
parameter is sent without it once ADO says so (then a lost answer is not resent: at most once).
"""

from __future__ import annotations

import logging
import random
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.tasks import enqueue, enqueue_after_commit

from ..client import AdoClient, AdoError
from ..models import Pipeline, PipelineKind, PipelineRun, RunRequest
from .common import ado_datetime

logger = logging.getLogger(__name__)

REQUEST_KEY_PARAMETER = "portalRequestId"
STARTABLE_KINDS = (PipelineKind.TRAINING, PipelineKind.SCORING, PipelineKind.DATA_CLEANSING)
# ADO answers that may have queued the run anyway (no answer, a server error): retry, after a
# look for the key. Anything else (400, 401, 403, 404) is ADO's refusal: the request fails.
_RETRYABLE = {None, 408, 429, 500, 502, 503, 504}


def trigger_run(
    *,
    pipeline: Pipeline,
    parameters: dict,
    reason: str,
    note: str = "",
    acting_user=None,
    allow_release: bool = False,
) -> RunRequest:
    """Ask ADO for a run of ``pipeline``: a person's click, or a drift / new-data event.

    The request is recorded with who asked and why, and a task sends it (the web process never
    calls ADO itself); its RunRequest shows whether ADO queued it. Release pipelines are
    queued only by the operations app's promotion (``allow_release``), for a named version.
    """
    kinds = STARTABLE_KINDS + ((PipelineKind.RELEASE,) if allow_release else ())
    if pipeline.kind not in kinds:
        raise ValidationError(
            f"{pipeline.get_kind_display()} pipelines are not started from the portal."
        )
    if not pipeline.project.enabled:
        raise ValidationError(f"The ADO project {pipeline.project.name} is disabled.")
    clean = {str(k): str(v) for k, v in (parameters or {}).items() if str(v) != ""}
    clean.setdefault("trigger", reason)
    if pipeline.catalog_model_id:
        clean.setdefault("modelName", pipeline.catalog_model.name)
    key = uuid.uuid4().hex
    clean[REQUEST_KEY_PARAMETER] = key
    request = RunRequest(
        pipeline=pipeline,
        parameters=clean,
        reason=reason[:50],
        note=note,
        requested_by=acting_user,
        key=key,
        next_attempt_at=timezone.now(),
    )
    request.full_clean()
    request.save()
    enqueue_after_commit("pipelines.send_run_request", request.pk)
    return request


def run_request_backoff(attempts: int, retry_after: float | None = None) -> float:
    base = settings.PIPELINES_RUN_REQUEST_BACKOFF_SECONDS
    delay = min(
        settings.PIPELINES_RUN_REQUEST_BACKOFF_MAX_SECONDS, base * 2 ** max(attempts - 1, 0)
    )
    delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter
    return max(delay, retry_after or 0)


def _claim(request_id: int) -> RunRequest | None:
    """Take the request for one attempt (a conditional UPDATE: two workers never both do)."""
    now = timezone.now()
    taken = RunRequest.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        pk=request_id,
        status=RunRequest.Status.QUEUED,
    ).update(
        claimed_until=now + timedelta(seconds=settings.PIPELINES_RUN_REQUEST_CLAIM_SECONDS),
        attempts=F("attempts") + 1,
    )
    if not taken:
        return None
    return RunRequest.objects.select_related("pipeline__project").get(pk=request_id)


def _already_queued(client: AdoClient, request: RunRequest) -> dict | None:
    """The build ADO queued for this request on an earlier attempt, if any."""
    if not request.key or request.parameters.get(REQUEST_KEY_PARAMETER) != request.key:
        return None
    # The newest runs of the pipeline, by ADO's own clock (not ours: no minTime).
    builds = client.list_builds(
        definitions=[request.pipeline.ado_id], query_order="queueTimeDescending", top=100
    )
    for seen, build in enumerate(builds):
        params = build.get("templateParameters") or {}
        if str(params.get(REQUEST_KEY_PARAMETER, "")) == request.key:
            return build
        if seen >= 200:
            break
    return None


def _undeclared_key(exc: AdoError) -> bool:
    return exc.status == 400 and REQUEST_KEY_PARAMETER in str(exc)


def run_request_send(*, request: RunRequest, client: AdoClient | None = None) -> RunRequest:
    """One attempt to queue the run in ADO (see the module's docstring for why it is once)."""
    claimed = _claim(request.pk)
    if claimed is None:
        request.refresh_from_db()
        return request  # sent, failed, not due yet, or another worker holds it
    request = claimed
    pipeline = request.pipeline
    client = client or AdoClient.for_project(pipeline.project)
    try:
        answer = _already_queued(client, request) if request.attempts > 1 else None
        if answer is None:
            answer = client.queue_run(pipeline.ado_id, template_parameters=request.parameters)
    except AdoError as exc:
        return _attempt_failed(request, exc)
    return _sent(request, answer)


def _attempt_failed(request: RunRequest, exc: AdoError) -> RunRequest:
    error = f"{exc.status or ''} {exc}".strip()[:2000]
    now = timezone.now()
    values: dict = {"claimed_until": None, "error": error}
    if _undeclared_key(exc):
        # The pipeline does not declare portalRequestId: send without it, at once.
        parameters = {k: v for k, v in request.parameters.items() if k != REQUEST_KEY_PARAMETER}
        values.update(parameters=parameters, next_attempt_at=now)
        logger.warning("run request %s: %s; sending without the key", request.pk, error)
    elif exc.status in _RETRYABLE and (
        request.attempts < settings.PIPELINES_RUN_REQUEST_MAX_ATTEMPTS
        and request.parameters.get(REQUEST_KEY_PARAMETER)
    ):
        delay = run_request_backoff(request.attempts, exc.retry_after)
        values.update(
            next_attempt_at=now + timedelta(seconds=delay),
            error=f"attempt {request.attempts} failed ({error}); retrying in {delay:.0f} s",
        )
    else:
        values.update(status=RunRequest.Status.FAILED)
    RunRequest.objects.filter(pk=request.pk).update(**values)
    request.refresh_from_db()
    if request.status == RunRequest.Status.QUEUED and request.next_attempt_at <= now:
        enqueue_after_commit("pipelines.send_run_request", request.pk)
    return request


def _sent(request: RunRequest, answer: dict) -> RunRequest:
    pipeline = request.pipeline
    with transaction.atomic():
        run, _ = PipelineRun.objects.get_or_create(
            pipeline=pipeline,
            ado_id=answer["id"],
            defaults={
                "name": str(answer.get("name") or answer.get("buildNumber") or "")[:300],
                "state": answer.get("state") or "inProgress",
                "reason": "manual",
                "trigger": request.parameters.get("trigger", request.reason)[:50],
                "queued_at": ado_datetime(answer.get("createdDate") or answer.get("queueTime"))
                or timezone.now(),
                "parameters": request.parameters,
                "web_url": (((answer.get("_links") or {}).get("web") or {}).get("href") or "")[
                    :500
                ],
            },
        )
        PipelineRun.objects.filter(pk=run.pk).update(
            triggered_by=request.requested_by, trigger_note=request.note
        )
        RunRequest.objects.filter(pk=request.pk).update(
            status=RunRequest.Status.SENT,
            error="",
            sent_at=timezone.now(),
            run=run,
            claimed_until=None,
        )
    request.refresh_from_db()
    return request


def run_requests_sweep() -> int:
    """Queue the send of every request that is due and not held (beat, every minute): the
    ones whose task was lost with the broker, a worker killed mid-attempt, retries."""
    now = timezone.now()
    due = list(
        RunRequest.objects.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
            status=RunRequest.Status.QUEUED,
            requested_at__lte=now - timedelta(seconds=5),
        ).values_list("pk", flat=True)[:500]
    )
    for pk in due:
        enqueue("pipelines.send_run_request", pk)
    return len(due)
