"""Thin Celery tasks: ids in, one service call, a summary out."""

from celery import shared_task


@shared_task(name="registry.sync_source", acks_late=True)
def sync_source(source_id: int, full: bool = False) -> dict:
    """Sync one registry source (beat runs this per source; --full sweeps deletes too)."""
    from . import services
    from .models import RegistrySource

    source = RegistrySource.objects.filter(pk=source_id, enabled=True).first()
    if source is None:
        return {"skipped": "source missing or disabled"}
    return services.registry_sync(source=source, full=full).as_dict()


@shared_task(name="registry.sync_model", acks_late=True)
def sync_model(source_id: int, model_name: str) -> dict:
    """Re-read one registered model (what a webhook about it queues)."""
    from . import services
    from .models import RegistrySource

    source = RegistrySource.objects.filter(pk=source_id, enabled=True).first()
    if source is None:
        return {"skipped": "source missing or disabled"}
    return services.registered_model_sync(source=source, name=model_name).as_dict()
