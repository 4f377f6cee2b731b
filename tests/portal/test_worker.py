"""A real Celery worker process on the real Redis broker, end to end."""

import pytest

from core.request_context import reset_request_id, set_request_id
from core.roles import Role
from portal.tasks import ping
from tests.approvals.faults import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db]


def test_a_task_runs_on_the_worker_and_returns_its_result(celery_worker_process):
    result = ping.delay().get(timeout=30)
    assert result["pong"] is True
    assert celery_worker_process.poll() is None


def test_the_request_id_travels_into_the_task(celery_worker_process):
    token = set_request_id("req-into-worker-1")
    try:
        async_result = ping.delay()
    finally:
        reset_request_id(token)
    assert async_result.get(timeout=30)["request_id"] == "req-into-worker-1"


def test_a_task_queued_outside_a_request_gets_its_own_id(celery_worker_process):
    async_result = ping.delay()
    assert async_result.get(timeout=30)["request_id"] == f"task-{async_result.id}"


def _ping_successes(client) -> float:
    prefix = 'portal_celery_tasks_total{outcome="success",task="portal.ping"}'
    body = client.get("/metrics").content.decode()
    return sum(float(line.split()[-1]) for line in body.splitlines() if line.startswith(prefix))


def test_the_workers_task_outcomes_reach_metrics(celery_worker_process, role_client):
    """The worker is another process: its counters reach /metrics through the shared folder."""
    client = role_client(Role.ADMIN)
    before = _ping_successes(client)
    ping.delay().get(timeout=30)
    # The result is stored before task_postrun counts it: the counter may lag a moment.
    wait_until(lambda: _ping_successes(client) == before + 1, 10, "the worker's counter")
