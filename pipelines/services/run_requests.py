"""Runs the portal asks ADO to queue: a person's click, or a drift / new-data event.

The web process never calls ADO itself: ``trigger_run`` records the request and queues the
task (by name, after commit) that sends it with ``run_request_send``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.tasks import enqueue_after_commit

from ..client import AdoClient, AdoError
from ..models import Pipeline, PipelineKind, PipelineRun, RunRequest
from .common import ado_datetime


def trigger_run(
    *, pipeline: Pipeline, parameters: dict, reason: str, note: str = "", acting_user=None
) -> RunRequest:
    """Ask ADO for a run of ``pipeline``: a person's click, or a drift / new-data event.

    The request is recorded with who asked and why, and a task sends it (the web process never
    calls ADO itself); its RunRequest shows whether ADO queued it.
    """
    if pipeline.kind not in (
        PipelineKind.TRAINING,
        PipelineKind.SCORING,
        PipelineKind.DATA_CLEANSING,
    ):
        raise ValidationError(
            f"{pipeline.get_kind_display()} pipelines are not started from the portal."
        )
    if not pipeline.project.enabled:
        raise ValidationError(f"The ADO project {pipeline.project.name} is disabled.")
    clean = {str(k): str(v) for k, v in (parameters or {}).items() if str(v) != ""}
    clean.setdefault("trigger", reason)
    if pipeline.catalog_model_id:
        clean.setdefault("modelName", pipeline.catalog_model.name)
    request = RunRequest(
        pipeline=pipeline, parameters=clean, reason=reason[:50], note=note, requested_by=acting_user
    )
    request.full_clean()
    request.save()
    enqueue_after_commit("pipelines.send_run_request", request.pk)
    return request


def run_request_send(*, request: RunRequest, client: AdoClient | None = None) -> RunRequest:
    """Queue the run in ADO. Sent at most once: a lost answer is shown as failed, not resent."""
    updated = RunRequest.objects.filter(pk=request.pk, status=RunRequest.Status.QUEUED).update(
        status=RunRequest.Status.FAILED, error="sending (no answer from ADO yet)"
    )
    if not updated:
        return request  # already sent, or already failed
    pipeline = request.pipeline
    client = client or AdoClient.for_project(pipeline.project)
    try:
        answer = client.queue_run(pipeline.ado_id, template_parameters=request.parameters)
    except AdoError as exc:
        RunRequest.objects.filter(pk=request.pk).update(
            error=f"{exc.status or ''} {exc}".strip()[:2000]
        )
        request.refresh_from_db()
        return request
    with transaction.atomic():
        run, _ = PipelineRun.objects.get_or_create(
            pipeline=pipeline,
            ado_id=answer["id"],
            defaults={
                "name": str(answer.get("name") or "")[:300],
                "state": answer.get("state") or "inProgress",
                "reason": "manual",
                "trigger": request.parameters.get("trigger", request.reason)[:50],
                "queued_at": ado_datetime(answer.get("createdDate")) or timezone.now(),
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
            status=RunRequest.Status.SENT, error="", sent_at=timezone.now(), run=run
        )
    request.refresh_from_db()
    return request
