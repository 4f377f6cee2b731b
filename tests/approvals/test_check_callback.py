"""The check's callback, one attempt at a time, against the ADO simulator over HTTP (no
worker): the log lines then TaskCompleted with the job's token, once; a refused token fails
it visibly; ADO unavailable retries later without sending the log lines twice."""

from __future__ import annotations

import pytest

from approvals import services
from approvals.models import AuditAction, AuditEvent, CallbackState, CheckCallback
from tests.ado_simulator.conftest import Receiver
from tests.approvals.test_check import fraud_models, released

pytestmark = pytest.mark.django_db
BODY = {
    "model": "$(modelName)",
    "version": "$(modelVersion)",
    "environment": "PROD",
    "runId": "$(Build.BuildId)",
}


@pytest.fixture
def service():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def ado_call(sim, service):
    """The call the simulator made when a release of fraud-detector v2 reached PROD."""
    sim.configure_rest_check("PROD", service.url, secret="s", body=BODY)
    pipe = sim.create_pipeline(
        "r", "release", model="fraud-detector", approvers={"Deploy_PROD": []}
    )
    run = sim.queue_run(
        pipe,
        template_parameters={"modelName": "fraud-detector", "modelVersion": "2"},
        decisions={"Deploy_QA": "approved"},
    )
    sim.advance(600)
    [call] = service.wait_for(1)
    return run, call


def evaluated(call: dict, token: str | None = None) -> CheckCallback:
    data = fraud_models()
    released(data, 2, ado_id=9102)
    h, body = call["headers"], call["body"]
    request, _ = services.check_receive(
        call=services.CheckCall(
            plan_url=h["planurl"],
            project_id=h["projectid"],
            hub_name=h["hubname"],
            plan_id=h["planid"],
            job_id=h["jobid"],
            task_instance_id=h["taskinstanceid"],
            auth_token=token or h["authtoken"],
            timeline_id=h["timelineid"],
            build_id=h["buildid"],
            model_name=body["model"],
            version=body["version"],
            environment=body["environment"],
            run_id=body["runId"],
            body=body,
        )
    )
    evaluation = services.check_evaluate(request_id=request.pk)
    return CheckCallback.objects.get(evaluation=evaluation)


def test_the_log_lines_then_task_completed_reach_ado_once(sim, ado_call):
    run, call = ado_call
    callback = evaluated(call)
    outcome = services.check_callback_deliver(callback_id=callback.pk)
    assert outcome.state == CallbackState.DELIVERED
    [check] = sim.check_runs_for(run.id)
    assert check.status == "failed" and len(check.events) == 1
    assert check.log_lines == callback.log_lines
    assert any("worse by 0.03" in line for line in check.log_lines)
    assert AuditEvent.objects.filter(action=AuditAction.CHECK_CALLBACK_SENT).count() == 1
    assert services.check_callback_deliver(callback_id=callback.pk).state == "missing"
    assert len(sim.check_runs_for(run.id)[0].events) == 1


def test_a_token_ado_refuses_fails_the_callback_visibly(sim, ado_call):
    run, call = ado_call
    callback = evaluated(call, token=call["headers"]["authtoken"] + "x")
    outcome = services.check_callback_deliver(callback_id=callback.pk)
    assert outcome.state == CallbackState.FAILED
    callback.refresh_from_db()
    assert "401" in callback.last_error or "refused" in callback.last_error
    failed = AuditEvent.objects.get(action=AuditAction.CHECK_CALLBACK_FAILED)
    assert "could not be sent" in failed.message
    assert sim.check_runs_for(run.id)[0].status == "pending"


def test_ado_unavailable_retries_later_and_sends_the_log_once(sim, ado_call):
    run, call = ado_call
    callback = evaluated(call)
    sim.fail_next(1, 503, path="/events", method="POST")
    first = services.check_callback_deliver(callback_id=callback.pk)
    assert first.state == CallbackState.QUEUED and first.retry_in is not None
    callback.refresh_from_db()
    assert callback.log_sent_at is not None and callback.claimed_until is None
    assert services.check_callback_deliver(callback_id=callback.pk).state == "delivered"
    [check] = sim.check_runs_for(run.id)
    assert check.log_lines == callback.log_lines  # appended once, not on the retry
    assert check.status == "failed"
