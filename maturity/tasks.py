"""Thin Celery tasks: primitive ids in, look the row up, call one service."""

from celery import shared_task

from . import services


@shared_task(name="maturity.nightly", acks_late=True)
def nightly() -> dict:
    """Beat, once a night: assess every model, refresh this week's snapshot, prune."""
    return services.nightly_run()


@shared_task(name="maturity.assess_models", acks_late=True, ignore_result=True)
def assess_models(catalog_model_ids: list[int], made_by: str = services.ON_CHANGE) -> dict:
    """Queued when a model's runs, approvals or versions changed."""
    return services.models_assess(catalog_model_ids=catalog_model_ids, made_by=made_by).as_dict()
