"""Thin Celery tasks: primitive ids in, look the row up, call one service."""

from celery import shared_task

from . import services


@shared_task(name="maturity.nightly", acks_late=True)
def nightly() -> dict:
    """Beat, once a night: assess every model, refresh this week's snapshot, prune."""
    return services.nightly_run()


@shared_task(name="maturity.assess_changed", acks_late=True, ignore_result=True)
def assess_changed() -> dict:
    """Beat, every minute: assess the models whose runs, approvals or versions changed."""
    return services.changed_models_assess().as_dict()
