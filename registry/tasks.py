"""Thin Celery tasks: ids in, one service call, a summary out."""

from celery import shared_task

from . import services
from .models import RegistrySource

BUSY_RETRY_SECONDS = 15


@shared_task(name="registry.sync_source", acks_late=True)
def sync_source(source_id: int, full: bool = False) -> dict:
    """Sync one registry source (beat runs this per source; full=True also sweeps deletions).

    A sync already running for the source makes this one a no-op: beat comes back soon.
    """
    source = RegistrySource.objects.filter(pk=source_id, enabled=True).first()
    if source is None:
        return {"skipped": "source missing or disabled"}
    return services.registry_sync(source=source, full=full).as_dict()


@shared_task(name="registry.sync_model", bind=True, acks_late=True, max_retries=20)
def sync_model(self, source_id: int, model_name: str) -> dict:
    """Re-read one registered model (what a webhook about it queues).

    Unlike the periodic sync, a webhook's refresh is not repeated by beat, so when the source
    is busy it waits its turn instead of being dropped.
    """
    source = RegistrySource.objects.filter(pk=source_id, enabled=True).first()
    if source is None:
        return {"skipped": "source missing or disabled"}
    result = services.registered_model_sync(source=source, name=model_name)
    if result.skipped:
        raise self.retry(countdown=BUSY_RETRY_SECONDS)
    return result.as_dict()


@shared_task(name="registry.check_artifacts", acks_late=True)
def check_artifacts() -> dict:
    """Check the binaries of the versions in QA, PROD or waiting for approval (beat)."""
    return services.artifact_check_sweep()


@shared_task(name="registry.check_artifact", acks_late=True)
def check_artifact(*version_ids: int) -> dict:
    """Check these versions' binaries ("Check now", a new approval request's version)."""
    return services.artifact_check_many(version_ids=list(version_ids))
