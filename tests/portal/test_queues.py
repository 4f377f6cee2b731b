"""The queues: every task is routed in settings (the one place), each lands in its queue on the
real Redis, and the broker never hands a sync out twice while it runs."""

import uuid

import pytest
import redis
from django.conf import settings

from core.tasks import enqueue
from portal import queues
from portal.celery import app
from portal.settings import base
from tests.approvals.faults import celery_app_on

GROUP_OF = {
    "approvals.deliver_decision": "deliveries",
    "pipelines.send_run_request": "deliveries",
    "registry.sync_source": "syncs",
    "pipelines.sync_project": "syncs",
    "approvals.sync_project": "syncs",
    "maturity.nightly": "maintenance",
    "approvals.sweep_outbox": "maintenance",
}


def _portal_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_task_but_the_ping_is_routed_in_settings():
    tasks = _portal_tasks()
    assert tasks - set(base.CELERY_TASK_ROUTES) == {"portal.ping"}
    assert set(base.CELERY_TASK_ROUTES) <= tasks, "a route names no task"
    assert {r["queue"] for r in base.CELERY_TASK_ROUTES.values()} == set(queues.GROUPS)


@pytest.mark.parametrize(("task", "group"), sorted(GROUP_OF.items()))
def test_each_task_lands_in_its_queue(task, group):
    prefix = f"test-queues-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    names = queues.queue_names(
        default_queue=prefix, routes=queues.prefixed_routes(base.CELERY_TASK_ROUTES, prefix)
    )
    try:
        with celery_app_on(settings.CELERY_BROKER_URL, prefix):
            assert enqueue(task, 0)
            assert enqueue("portal.ping")
        lengths = {name: client.llen(name) for name in names}
        assert lengths == {
            prefix: 1,
            **{f"{prefix}.{g}": int(g == group) for g in queues.GROUPS},
        }
    finally:
        client.delete(*names)


def test_the_session_queues_are_named_after_its_default_queue():
    default = settings.CELERY_TASK_DEFAULT_QUEUE
    assert queues.all_queues() == [default, *(f"{default}.{g}" for g in queues.GROUPS)]
    assert queues.group_queue("syncs") == f"{default}.syncs"
    with pytest.raises(ValueError, match="no queue group"):
        queues.group_queue("everything")


def test_a_sync_is_never_handed_out_twice_while_it_may_still_run():
    """Redis re-delivers an unacknowledged message after the visibility timeout: it must be
    longer than the hard time limit of every acks_late task (syncs above all), and longer than
    the longest retry countdown a delivery waits on (held unacknowledged meanwhile)."""
    app.loader.import_default_modules()
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]  # Redis's
    for name, route in base.CELERY_TASK_ROUTES.items():
        task = app.tasks[name]
        limit = task.time_limit or settings.CELERY_TASK_TIME_LIMIT
        if route["queue"] == "syncs":
            assert task.acks_late, name
        if task.acks_late:
            assert visibility > limit, (name, visibility, limit)
    assert visibility > settings.APPROVALS_DELIVERY_BACKOFF_MAX_SECONDS
