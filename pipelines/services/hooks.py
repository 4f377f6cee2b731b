"""Service-hook intake: record a delivery once, and queue the re-read it asks for.

The payload is only a trigger (pipelines/hooks.py authenticates it); the run or the project
is re-read from ADO by a task, queued by name once the delivery's row is committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.tasks import enqueue_after_commit

from ..models import AdoProject, HookDelivery
from ..signals import hook_received


@dataclass(frozen=True)
class HookOutcome:
    status: str  # queued | duplicate | ignored
    build_id: int | None = None


def hook_delivery_accept(*, project: AdoProject, envelope: dict) -> HookOutcome:
    """Record a delivery by its event id and say which run to re-read (None: the project).
    A broker that is down does not fail the delivery: the queueing is logged, and the next
    scheduled sync reads the change."""
    event_id = str(envelope.get("id") or "")[:100]
    event_type = str(envelope.get("eventType") or "")[:200]
    try:
        with transaction.atomic():
            HookDelivery.objects.create(event_id=event_id, project=project, event_type=event_type)
    except IntegrityError:
        return HookOutcome("duplicate")
    resource = envelope.get("resource") or {}
    transaction.on_commit(
        lambda: hook_received.send_robust(
            sender=AdoProject, project=project, event_type=event_type, resource=resource
        )
    )
    build_id = _hook_build_id(event_type, resource)
    if build_id is not None:
        enqueue_after_commit("pipelines.refresh_run", project.pk, build_id)
        return HookOutcome("queued", build_id)
    if event_type.startswith("ms.vss-pipelinechecks-events."):
        # Approval payloads often lack the run: re-read the project's recent runs instead.
        enqueue_after_commit("pipelines.sync_project", project.pk)
        return HookOutcome("queued")
    return HookOutcome("ignored")


def _hook_build_id(event_type: str, resource: dict) -> int | None:
    """The run a delivery is about: a build's id, a stage's run, an approval's pipeline run."""
    candidates = []
    if event_type == "build.complete":
        candidates.append(resource.get("id"))
    run = resource.get("run") or {}
    candidates.append(run.get("id"))
    approval_pipeline = ((resource.get("approval") or {}).get("pipeline") or {}).get("owner") or {}
    candidates.append(approval_pipeline.get("id"))
    for candidate in candidates:
        if isinstance(candidate, int) and candidate > 0:
            return candidate
        if isinstance(candidate, str) and candidate.isdigit():
            return int(candidate)
    return None


def hook_deliveries_prune(*, older_than_days: int = 14) -> int:
    """Forget deliveries older than ADO would redeliver, so the table stays small."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = HookDelivery.objects.filter(received_at__lt=cutoff).delete()
    return deleted
