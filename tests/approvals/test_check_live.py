"""The automated check over real HTTP: the ADO simulator calls the portal's endpoint (a live
server) when a release reaches PROD, a real Celery worker evaluates it and posts TaskCompleted
back, and the simulator's stage goes on or fails with the reasons in ADO's check log. A worker
killed mid-callback is covered on both sides of the send: the result reaches ADO once.

Private redis-server and workers (``tests/approvals/faults``), stopped or killed by pid.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from types import SimpleNamespace

import pytest
import requests
from django.utils import timezone

from approvals import services
from approvals.models import (
    AuditAction,
    AuditEvent,
    CallbackState,
    CheckCallback,
    CheckEvaluation,
    CheckRequest,
    FreezeWindow,
)
from pipelines.models import AdoProject
from tests.approvals.faults import RedisServer, Worker, celery_app_on, wait_until
from tests.approvals.test_check import fraud_models, released

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]

SECRET = "live-check-secret"
CLAIM_SECONDS = 3
WORKER_ENV = {
    "APPROVALS_CHECK_CLAIM_SECONDS": CLAIM_SECONDS,
    "APPROVALS_CHECK_STUCK_SECONDS": 0,
    "APPROVALS_DELIVERY_BACKOFF_SECONDS": 0.2,
    "APPROVALS_DELIVERY_BACKOFF_MAX_SECONDS": 1,
    "APPROVALS_DELIVERY_CLIENT_RETRIES": 0,
    "APPROVALS_NOTIFY": "false",
}
BODY = {
    "model": "$(modelName)",
    "version": "$(modelVersion)",
    "environment": "PROD",
    "runId": "$(Build.BuildId)",
}


@pytest.fixture(autouse=True)
def _check_settings(settings):
    settings.APPROVALS_CHECK_SECRET = SECRET
    settings.APPROVALS_CHECK_STUCK_SECONDS = 0
    settings.APPROVALS_NOTIFY = False


@pytest.fixture
def broker(tmp_path):
    redis = RedisServer(tmp_path).start()
    queue = f"checks-{uuid.uuid4().hex[:10]}"
    try:
        with celery_app_on(redis.url, queue, broker_connection_timeout=1):
            yield SimpleNamespace(redis=redis, queue=queue)
    finally:
        redis.stop()


@pytest.fixture
def start_worker(broker, tmp_path, transactional_db):
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
def models(transactional_db):
    """fraud-detector: v1 (auc 0.74) runs in PROD; v2 (0.71) and v3 (0.80) went through QA."""
    data = fraud_models()
    released(data, 2, ado_id=9002)
    released(data, 3, ado_id=9003)
    return data


@pytest.fixture(autouse=True)
def organization(sim, transactional_db):
    """The simulator's organization, as one of the portal's ADO projects (PlanUrl must be)."""
    return AdoProject.objects.create(name="mlops", organization_url=sim.org_url, project="MLOps")


@pytest.fixture
def checked_release(sim, live_server):
    """A release whose PROD stage waits on the portal's check (QA approved at once)."""
    sim.configure_rest_check(
        "PROD",
        f"{live_server.url}/api/v1/approvals/checks/ado",
        username="ado",
        secret=SECRET,
        body=BODY,
        timeout_minutes=60,
    )
    pipe = sim.create_pipeline(
        "risk-fraud-detector-release",
        "release",
        model="fraud-detector",
        approvers={"Deploy_PROD": []},
        stage_seconds={"Build": 60, "Deploy_QA": 60, "Deploy_PROD": 60},
    )

    def release(version: int):
        run = sim.queue_run(
            pipe,
            template_parameters={"modelName": "fraud-detector", "modelVersion": str(version)},
            decisions={"Deploy_QA": "approved"},
        )
        sim.advance(150)  # Build and QA done: PROD waits for the check
        wait_until(lambda: CheckRequest.objects.exists(), 10, "the portal to receive the check")
        return run

    return release


def check_of(sim, run):
    [check] = sim.check_runs_for(run.id)
    return check


def prod(sim, run):
    sim.advance(1)
    return next(s for s in sim.run(run.id).stages if s.name == "PROD")


def test_a_worse_challenger_fails_the_check_with_the_numbers_in_ados_log(
    sim, models, checked_release, start_worker
):
    start_worker()
    run = checked_release(2)
    assert prod(sim, run).state == "waiting"
    wait_until(lambda: check_of(sim, run).status != "pending", 20, "the callback")
    check = check_of(sim, run)
    assert check.status == "failed"
    assert check.call["status"] == 200 and check.call["ms"] < 3000
    log = "\n".join(check.log_lines)
    assert "FAILED" in log
    assert "auc 0.71 vs champion v1 0.74: worse by 0.03; policy needs +0.01" in log
    assert prod(sim, run).result == "failed"
    assert sim.run(run.id).result == "failed"
    # ADO has the result a moment before the worker marks the callback delivered
    wait_until(lambda: CheckCallback.objects.get().state == CallbackState.DELIVERED, 10, "the mark")
    assert CheckCallback.objects.get().attempts == 1
    assert AuditEvent.objects.filter(action=AuditAction.CHECK_CALLBACK_SENT).count() == 1


def test_a_better_challenger_passes_and_the_stage_deploys(
    sim, models, checked_release, start_worker
):
    start_worker()
    run = checked_release(3)
    wait_until(lambda: check_of(sim, run).status != "pending", 20, "the callback")
    check = check_of(sim, run)
    assert check.status == "succeeded"
    assert any("[ok] challenger: auc 0.8 vs champion v1 0.74" in x for x in check.log_lines)
    sim.advance(120)
    assert prod(sim, run).result == "succeeded"
    assert sim.run(run.id).result == "succeeded"


def test_a_freeze_window_fails_the_check_naming_the_window_and_when_it_reopens(
    sim, models, checked_release, start_worker
):
    """The better challenger of the test above, but PROD is frozen: the check fails on the
    freeze gate the decision box uses, and ADO's log says which window and until when."""
    FreezeWindow.objects.create(
        name="Year-end close",
        kind="deny",
        environment="PROD",
        reason="finance closes the books",
        dtstart=timezone.now() - dt.timedelta(hours=1),
        duration_minutes=6 * 60,
        timezone="UTC",
    )
    start_worker()
    run = checked_release(3)
    wait_until(lambda: check_of(sim, run).status != "pending", 20, "the callback")
    check = check_of(sim, run)
    assert check.status == "failed"
    log = "\n".join(check.log_lines)
    assert "[ok] challenger: auc 0.8 vs champion v1 0.74" in log
    assert "freeze_window" in log and "Year-end close" in log and "reopens at" in log
    assert prod(sim, run).result == "failed"
    evaluation = CheckEvaluation.objects.get()
    [frozen] = [r for r in evaluation.rules if r["code"] == "freeze_window"]
    assert frozen["ok"] is False and frozen["values"]["reopens_at"]


def test_the_wrong_secret_is_refused_and_adoss_check_fails(sim, models, live_server):
    sim.configure_rest_check(
        "PROD", f"{live_server.url}/api/v1/approvals/checks/ado", secret="wrong", body=BODY
    )
    pipe = sim.create_pipeline(
        "r", "release", model="fraud-detector", approvers={"Deploy_PROD": []}
    )
    run = sim.queue_run(
        pipe,
        template_parameters={"modelName": "fraud-detector", "modelVersion": "3"},
        decisions={"Deploy_QA": "approved"},
    )
    sim.advance(600)
    wait_until(lambda: check_of(sim, run).call, 10, "the simulator's call")
    assert check_of(sim, run).call["status"] == 401
    assert prod(sim, run).result == "failed"
    assert CheckRequest.objects.count() == 0


def _headers(plan_url: str, **extra) -> dict:
    return {
        "PlanUrl": plan_url,
        "ProjectId": str(uuid.uuid4()),
        "HubName": "checks",
        "PlanId": str(uuid.uuid4()),
        "JobId": str(uuid.uuid4()),
        "TaskInstanceId": str(uuid.uuid4()),
        "AuthToken": "token",
        "Authorization": "Basic " + base64.b64encode(f"ado:{SECRET}".encode()).decode(),
        **extra,
    }


def test_bad_headers_are_400_and_a_repeat_is_answered_once(sim, models, live_server, broker):
    """``broker``: the accepted call's evaluation goes to a private queue nobody reads, so no
    worker of an earlier test writes while this test's tables are emptied."""
    url = f"{live_server.url}/api/v1/approvals/checks/ado"
    body = {"model": "fraud-detector", "version": "3", "environment": "PROD"}
    missing = _headers(sim.org_url)
    del missing["TaskInstanceId"]
    answer = requests.post(url, json=body, headers=missing, timeout=10)
    assert answer.status_code == 400 and "'TaskInstanceId'" in answer.json()["detail"]
    assert (
        requests.post(
            url, json=body, headers=_headers(sim.org_url, Authorization="Bearer no"), timeout=10
        ).status_code
        == 401
    )
    headers = _headers(sim.org_url)
    first = requests.post(url, json=body, headers=headers, timeout=10)
    second = requests.post(url, json=body, headers=headers, timeout=10)
    assert (first.status_code, second.status_code) == (200, 200)
    assert [first.json()["status"], second.json()["status"]] == ["accepted", "duplicate"]
    assert CheckRequest.objects.count() == 1


@pytest.mark.parametrize("applied", [False, True], ids=["before-sending", "after-sending"])
def test_a_callback_lost_to_a_worker_kill_is_sent_once_after_restart(
    sim, models, checked_release, start_worker, applied
):
    first = start_worker()
    if applied:
        held = sim.slow_next(1, 60, path="/events", method="POST", after=True)
    else:
        held = sim.faults.add(503, 1, path="/events", method="POST", delay=60)
    run = checked_release(2)
    wait_until(lambda: held.hits, 20, "the worker to post TaskCompleted")
    callback = CheckCallback.objects.get()
    assert callback.state == CallbackState.QUEUED and callback.log_sent_at is not None
    first.kill()  # SIGKILL: no ack, the lease stays until it runs out
    held.release()
    assert check_of(sim, run).status == ("failed" if applied else "pending")

    start_worker()
    wait_until(lambda: CheckCallback.objects.get().claimed_until < timezone.now(), 10, "the lease")
    assert services.checks_sweep()["callbacks"] == [callback.pk]
    wait_until(
        lambda: CheckCallback.objects.get().state == CallbackState.DELIVERED, 20, "the resend"
    )
    check = check_of(sim, run)
    assert check.status == "failed"
    assert len(check.events) == (2 if applied else 1)  # a repeat ADO takes harmlessly
    assert sum("FAILED" in line for line in check.log_lines) == 1  # the log went once
    assert CheckEvaluation.objects.count() == 1
    assert CheckCallback.objects.get().attempts == 2
    assert prod(sim, run).result == "failed"
