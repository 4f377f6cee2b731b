"""Delivery survives its failures: a worker SIGKILLed mid-delivery, Redis stopped and restarted,
ADO answering 500 and then 429. Each decision reaches the simulator exactly once, nothing is
lost, and the outbox and the audit trail say what happened.

Real processes throughout: a private redis-server and private Celery workers (stopped or
killed by pid), the simulator over HTTP, the pytest-django PostgreSQL database. The test calls
``services.outbox_sweep()`` where beat would, once a dead worker's claim has run out.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals import services
from approvals.models import (
    ApprovalRequest,
    AuditAction,
    AuditEvent,
    OutboxMessage,
    OutboxState,
)
from approvals.tasks import sweep_outbox
from tests.approvals.conftest import PAT, mirror, wait_at
from tests.approvals.faults import (
    RedisServer,
    Worker,
    celery_app_on,
    patches,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

CLAIM_SECONDS = 3
WORKER_ENV = {
    "AZURE_DEVOPS_PAT": PAT,
    "APPROVALS_DELIVERY_CLAIM_SECONDS": CLAIM_SECONDS,
    "APPROVALS_DELIVERY_BACKOFF_SECONDS": 0.2,
    "APPROVALS_DELIVERY_BACKOFF_MAX_SECONDS": 1,
    # every failed request is one outbox attempt (no retry inside the client)
    "APPROVALS_DELIVERY_CLIENT_RETRIES": 0,
    "APPROVALS_NOTIFY": "false",
    "APPROVALS_OUTBOX_STUCK_SECONDS": 0,  # a sweep the test asks for re-queues at once
}


@pytest.fixture(autouse=True)
def _quick_outbox(settings):
    settings.APPROVALS_OUTBOX_STUCK_SECONDS = 0  # the test sweeps by hand, when it means to
    settings.APPROVALS_NOTIFY = False
    settings.APPROVALS_DELIVERY_CLIENT_RETRIES = 0


@pytest.fixture
def broker(tmp_path):
    """A private redis-server and queue; this process's Celery app publishes there."""
    redis = RedisServer(tmp_path).start()
    queue = f"faults-{uuid.uuid4().hex[:10]}"
    try:
        # Fail fast when the broker is down (the decision is saved either way).
        with celery_app_on(redis.url, queue, broker_connection_timeout=1):
            yield SimpleNamespace(redis=redis, queue=queue)
    finally:
        redis.stop()


@pytest.fixture
def start_worker(broker, tmp_path, transactional_db):
    """Start a private worker on ``broker`` (stopped by pid after the test)."""
    started: list[Worker] = []

    def start(**env) -> Worker:
        worker = Worker(
            broker_url=broker.redis.url,
            queue=broker.queue,
            log_dir=tmp_path,
            env={**WORKER_ENV, **env},
        ).start()
        started.append(worker)
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def approver(make_user):
    return make_user("approver", email="alice@example.com")


def waiting_approvals(sim, project, ado_client, release, count: int) -> list[ApprovalRequest]:
    """``count`` releases of fraud-detector v2 waiting at QA, mirrored."""
    runs = [
        sim.queue_run(
            release,
            template_parameters={"modelName": "fraud-detector", "modelVersion": "2"},
        )
        for _ in range(count)
    ]
    ids = [wait_at(sim, run, "QA") for run in runs]
    mirror(project, ado_client)
    return [ApprovalRequest.objects.get(ado_id=approval_id) for approval_id in ids]


def approve(approval, user, comment="Evidence checked"):
    return services.approval_decide(
        approval_id=approval.pk, user=user, status="approved", comment=comment
    )


def outbox_of(decision) -> OutboxMessage:
    return OutboxMessage.objects.get(decision=decision)


def delivered(*decisions) -> bool:
    return all(outbox_of(d).state == OutboxState.DELIVERED for d in decisions)


def audit_actions(decision) -> list[str]:
    return list(
        AuditEvent.objects.filter(decision=decision)
        .order_by("at", "pk")
        .values_list("action", flat=True)
    )


def assert_delivered_once(sim, decision) -> OutboxMessage:
    """ADO has the decision, received one PATCH for it, and the portal's records agree."""
    message = outbox_of(decision)
    approval = decision.approval
    assert message.state == OutboxState.DELIVERED, (message.state, message.last_error)
    assert sim.approval(approval.ado_id).status == "approved"
    sent = patches(sim, approval.ado_id)
    assert [entry["status"] for entry in sent] == [200], sent
    actions = audit_actions(decision)
    assert actions.count(AuditAction.DECISION_MADE) == 1
    assert actions.count(AuditAction.DELIVERY_DELIVERED) == 1
    assert AuditAction.DELIVERY_FAILED not in actions
    return message


# ---- a worker killed mid-delivery ------------------------------------------------------------


def test_worker_killed_before_the_patch_then_the_sweep_requeues(
    sim, project, ado_client, release, fraud, approver, start_worker
):
    [approval] = waiting_approvals(sim, project, ado_client, release, 1)
    first = start_worker()
    held = sim.slow_next(1, 60, path=approval.ado_id, method="GET")
    decision = approve(approval, approver)

    wait_until(lambda: held.hits, 20, "the worker to read the approval")
    message = outbox_of(decision)
    assert message.state == OutboxState.QUEUED
    assert message.attempts == 1 and message.claimed_until is not None
    first.kill()  # SIGKILL, process group: no ack, no reject, the claim stays
    held.release()
    # While the dead worker's claim holds, the sweep leaves the message alone.
    if message.claimed_until > timezone.now() + timedelta(seconds=0.5):
        assert services.outbox_sweep() == []

    start_worker()  # the broker still holds the killed task as unacked: only the sweep helps
    wait_until(
        lambda: outbox_of(decision).claimed_until < timezone.now(), 10, "the claim to expire"
    )
    # What beat sends every 30 s; the new worker runs the sweep, which re-queues the message.
    assert sweep_outbox.apply_async().get(timeout=20) == {"requeued": [message.pk]}
    wait_until(lambda: delivered(decision), 20, "the new worker to deliver")

    message = assert_delivered_once(sim, decision)
    assert len(patches(sim)) == 1
    assert message.attempts == 2
    assert message.ado_outcome["patched_now"] is True
    assert services.outbox_sweep() == []  # nothing left to re-queue


def test_worker_killed_after_the_patch_landed_does_not_send_it_again(
    sim, project, ado_client, release, fraud, approver, start_worker
):
    [approval] = waiting_approvals(sim, project, ado_client, release, 1)
    first = start_worker()
    held = sim.slow_next(1, 60, path="pipelines/approvals", method="PATCH", after=True)
    decision = approve(approval, approver)

    # ADO applied the PATCH; its answer is held, and the worker dies before recording it.
    wait_until(lambda: sim.approval(approval.ado_id).status == "approved", 20, "the PATCH")
    first.kill()
    held.release()
    assert outbox_of(decision).state == OutboxState.QUEUED

    start_worker()
    wait_until(
        lambda: outbox_of(decision).claimed_until < timezone.now(), 10, "the claim to expire"
    )
    assert services.outbox_sweep() == [outbox_of(decision).pk]
    wait_until(lambda: delivered(decision), 20, "the retry to record the delivery")

    message = assert_delivered_once(sim, decision)
    assert len(patches(sim)) == 1  # the retry read the approval, found the mark, sent nothing
    assert message.attempts == 2
    assert message.ado_outcome["patched_now"] is False
    confirmation = AuditEvent.objects.get(decision=decision, action=AuditAction.DELIVERY_DELIVERED)
    assert "nothing re-sent" in confirmation.message


def test_pool_process_killed_the_worker_requeues_and_retries_after_the_claim(
    sim, project, ado_client, release, fraud, approver, start_worker
):
    """Only the pool process dies: ``reject_on_worker_lost`` puts the task back, the worker
    finds the message still claimed, retries when the claim runs out, and delivers (no
    sweep)."""
    [approval] = waiting_approvals(sim, project, ado_client, release, 1)
    worker = start_worker()
    held = sim.slow_next(1, 60, path=approval.ado_id, method="GET")
    decision = approve(approval, approver)

    wait_until(lambda: held.hits, 20, "the worker to read the approval")
    children = worker.pool_children()
    assert len(children) == 1, children
    import os
    import signal

    os.kill(children[0], signal.SIGKILL)
    held.release()
    wait_until(lambda: delivered(decision), 25, "the same worker to deliver on its own")

    message = assert_delivered_once(sim, decision)
    assert len(patches(sim)) == 1
    assert message.attempts == 2
    assert worker.process.poll() is None  # the worker itself lived on


# ---- Redis stopped and restarted -------------------------------------------------------------


def test_redis_down_decisions_are_kept_and_delivered_after_it_returns(
    sim, project, ado_client, release, fraud, approver, start_worker, broker, caplog
):
    before, during, also_during = waiting_approvals(sim, project, ado_client, release, 3)
    start_worker()
    first = approve(before, approver)
    wait_until(lambda: delivered(first), 20, "a delivery while Redis is up")

    broker.redis.stop()  # no persistence: whatever it held is gone
    with caplog.at_level("WARNING", logger="approvals.services"):
        lost = [approve(during, approver), approve(also_during, approver)]
    # The decisions stand (closed in the portal, queued in the outbox); only the enqueue failed.
    for decision in lost:
        decision.approval.refresh_from_db()
        assert decision.approval.status == "approved"
        assert outbox_of(decision).state == OutboxState.QUEUED
        assert audit_actions(decision) == [AuditAction.DECISION_MADE]
    assert sum("could not queue" in r.getMessage() for r in caplog.records) == 2

    broker.redis.start()  # the same port, empty
    requeued: set[int] = set()

    def swept_and_delivered() -> bool:
        requeued.update(services.outbox_sweep())
        return delivered(*lost)

    wait_until(swept_and_delivered, 30, "the sweep and the worker to deliver", every=1)
    assert {outbox_of(d).pk for d in lost} <= requeued
    for decision in [first, *lost]:
        assert_delivered_once(sim, decision)
    assert len(patches(sim)) == 3


_RETRY_SCHEDULED = re.compile(r"retry: Retry in (\d+(?:\.\d+)?)s")


def holds_a_long_retry(log: str) -> bool:
    """The worker's log shows a retry of 5 s or more scheduled, then received back."""
    scheduled = [m for m in _RETRY_SCHEDULED.finditer(log) if float(m.group(1)) >= 5]
    return bool(scheduled) and " received" in log[scheduled[-1].end() :]


def test_redis_restarted_while_a_worker_holds_a_delivery_waiting_on_its_retry(
    sim, project, ado_client, release, fraud, approver, start_worker, broker
):
    """The crash of docs/decisions/0002: Redis goes away while the worker holds a delivery's
    retry (unacknowledged, waiting on its countdown), then comes back empty. The worker rides
    it out (no hand restart); the outbox sweep re-queues what Redis lost; ADO gets one PATCH."""
    [approval] = waiting_approvals(sim, project, ado_client, release, 1)
    worker = start_worker()
    sim.fail_next(1, 500, path=approval.ado_id, method="GET")
    sim.throttle_next(1, retry_after=8, path=approval.ado_id)
    decision = approve(approval, approver)
    wait_until(lambda: outbox_of(decision).attempts == 2, 20, "a 500, then a 429 (Retry-After 8)")
    # The outbox counts an attempt when it starts: wait for the worker to have scheduled the
    # 429's retry and received it back (held, unacknowledged, on its countdown), so the crash
    # always meets that held delivery. (A task finishing after the reconnect, the other way the
    # dead channel crashed a worker, is replayed in tests/portal/test_kombu_fixes.py.)
    wait_until(lambda: holds_a_long_retry(worker.log()), 20, "the worker to hold the 8 s retry")
    assert outbox_of(decision).state == OutboxState.QUEUED

    broker.redis.kill()  # a crash: sockets reset, nothing saved
    wait_until(lambda: "onnection" in worker.log(), 15, "the worker to see the broker go")
    broker.redis.start()  # the same port, empty

    def swept_and_delivered() -> bool:
        services.outbox_sweep()  # what beat does every 30 s
        return delivered(decision)

    try:
        wait_until(swept_and_delivered, 60, "the delivery after Redis returned", every=1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.log()}") from None
    assert worker.process.poll() is None, worker.log()
    assert "Unrecoverable error" not in worker.log(), worker.log()
    # portal/kombu_fixes.py at work (the whole log: worker.log() is only its tail)
    assert "left to Redis's visibility timeout" in worker.log_path.read_text(errors="replace")
    assert_delivered_once(sim, decision)
    assert len(patches(sim)) == 1
    # And the same worker still takes new work.
    worker.wait_ready(timeout=30)


# ---- ADO answering 500, then 429 -------------------------------------------------------------


def test_500_then_429_each_attempt_recorded_and_retry_after_honoured(
    sim, project, ado_client, release, fraud, approver
):
    """One delivery attempt at a time in this process: each failure is recorded, the next
    attempt is not due before ADO's Retry-After, and the decision is PATCHed once."""
    [approval] = waiting_approvals(sim, project, ado_client, release, 1)
    sim.fail_next(1, 500, path=approval.ado_id, method="GET")
    sim.fail_next(1, 500, path="pipelines/approvals", method="PATCH")  # not applied by ADO
    sim.throttle_next(2, retry_after=7, path="pipelines/approvals")
    # No worker: the decision waits in the outbox; this test delivers by hand.
    decision = services.approval_decide(
        approval_id=approval.pk, user=approver, status="approved", comment="ok"
    )
    message_id = outbox_of(decision).pk

    outcomes = []
    for _ in range(10):
        started = timezone.now()
        outcome = services.outbox_deliver(message_id=message_id)
        outcomes.append(outcome)
        message = OutboxMessage.objects.get(pk=message_id)
        if outcome.state == OutboxState.DELIVERED:
            break
        assert outcome.state == OutboxState.QUEUED and outcome.retry_in is not None
        assert message.claimed_until is None  # let go for the next attempt
        if "429" in outcome.detail:
            assert outcome.retry_in >= 7
            assert message.next_attempt_at >= started + timedelta(seconds=7)
        else:
            assert "500" in outcome.detail

    assert [o.state for o in outcomes] == ["queued"] * 4 + ["delivered"]
    message = assert_delivered_once(sim, decision)
    assert message.attempts == 5
    attempts = AuditEvent.objects.filter(decision=decision, action=AuditAction.DELIVERY_ATTEMPT)
    assert sorted(a.detail["attempt"] for a in attempts) == [1, 2, 3, 4]
    assert sum(1 for a in attempts if a.detail["retry_in_seconds"] >= 7) == 2
    # Two PATCH requests reached the simulator (one answered 500 before it took effect).
    assert [r["status"] for r in patches(sim)] == [500, 200]


def test_worker_rides_out_500_and_429_and_delivers_every_decision_once(
    sim, project, ado_client, release, fraud, approver, start_worker
):
    approvals = waiting_approvals(sim, project, ado_client, release, 3)
    start_worker()
    since = sim.request_count
    sim.fail_next(3, 500, path="pipelines/approvals/", method="GET")
    sim.throttle_next(3, retry_after=1, path="pipelines/approvals/", method="GET")
    decisions = [approve(approval, approver) for approval in approvals]

    wait_until(lambda: delivered(*decisions), 25, "every decision to be delivered")

    for decision in decisions:
        assert_delivered_once(sim, decision)
    assert len(patches(sim)) == 3
    messages = [outbox_of(d) for d in decisions]
    # Each faulted request cost one attempt; none was lost or repeated.
    assert sum(m.attempts for m in messages) == 3 + 6
    attempt_rows = AuditEvent.objects.filter(
        decision__in=decisions, action=AuditAction.DELIVERY_ATTEMPT
    )
    assert attempt_rows.count() == 6
    # The worker waited out each Retry-After before asking ADO about that approval again.
    log = sim.request_log(since)
    for index, entry in enumerate(log):
        if entry["status"] != 429:
            continue
        later = [e for e in log[index + 1 :] if e["path"] == entry["path"]]
        assert later, entry
        gap = parse_datetime(later[0]["at"]) - parse_datetime(entry["at"])
        assert gap >= timedelta(seconds=1), (entry, later[0])
