"""A decision is delivered while a long sync runs: the deliveries queue has a worker of its own
(as compose runs it), so a registry or pipelines sweep never stands in front of a PATCH.

Real processes: a private redis-server, two private Celery workers (one on the syncs queue,
one on deliveries), the simulator over HTTP holding the sync's builds request for real.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from approvals.models import OutboxMessage, OutboxState
from core.tasks import enqueue
from tests.approvals.conftest import PAT
from tests.approvals.faults import RedisServer, Worker, celery_app_on, patches, wait_until
from tests.approvals.test_delivery_faults import WORKER_ENV, approve, waiting_approvals

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def broker(tmp_path):
    redis = RedisServer(tmp_path).start()
    queue = f"isolation-{uuid.uuid4().hex[:10]}"
    try:
        with celery_app_on(redis.url, queue, broker_connection_timeout=1):
            yield SimpleNamespace(redis=redis, queue=queue)
    finally:
        redis.stop()


@pytest.fixture
def workers(broker, tmp_path, transactional_db):
    started = {
        group: Worker(
            broker_url=broker.redis.url,
            queue=broker.queue,
            log_dir=tmp_path,
            env={**WORKER_ENV, "AZURE_DEVOPS_PAT": PAT},
            only=(group,),
        ).start()
        for group in ("syncs", "deliveries")
    }
    try:
        for worker in started.values():
            worker.wait_ready()
        yield started
    finally:
        for worker in started.values():
            worker.stop()


def test_a_decision_is_delivered_while_a_long_sync_runs(
    sim, project, ado_client, release, fraud, make_user, workers
):
    [approval] = waiting_approvals(sim, project, ado_client, release, 1)
    approver = make_user("approver", email="alice@example.com")
    held = sim.slow_next(1, 120, path="build/builds", method="GET")  # the sync's long read
    try:
        assert enqueue("pipelines.sync_project", project.pk, True)
        wait_until(lambda: held.hits == 1, 20, "the sync to be held on its builds request")

        decision = approve(approval, approver)
        wait_until(
            lambda: OutboxMessage.objects.get(decision=decision).state == OutboxState.DELIVERED,
            20,
            "the delivery while the sync is held",
        )
        assert "pipelines.sync_project" in workers["syncs"].log()
        assert "succeeded" not in workers["syncs"].log()  # still held: the sync is running
        assert sim.approval(approval.ado_id).status == "approved"
        assert [entry["status"] for entry in patches(sim, approval.ado_id)] == [200]
    finally:
        held.release()
    wait_until(lambda: "succeeded" in workers["syncs"].log(), 30, "the sync to finish")
