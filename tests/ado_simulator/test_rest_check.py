"""The simulator's Invoke REST API check (callback mode): the call it makes with ADO's headers,
the stage that waits for TaskCompleted, the token it must come with, the log lines, a repeat
accepted harmlessly, and the timeout that skips the stage. A local receiver stands in for the
service; the callbacks go over real HTTP."""

from __future__ import annotations

import base64
import time

import pytest
import requests

from ado_simulator import RemoteSimulator
from tests.ado_simulator.conftest import Receiver

BODY = {
    "model": "$(modelName)",
    "version": "$(modelVersion)",
    "environment": "PROD",
    "runId": "$(Build.BuildId)",
}


@pytest.fixture
def service():
    r = Receiver()
    yield r
    r.stop()


def release_to_prod(sim, service, timeout_minutes=60):
    """A release whose PROD stage has only the REST check; QA approved at once."""
    sim.configure_rest_check(
        "PROD",
        service.url,
        username="ado",
        secret="s3cret",
        body=BODY,
        timeout_minutes=timeout_minutes,
    )
    pipe = sim.create_pipeline(
        "fraud-release", "release", model="fraud-detector", approvers={"Deploy_PROD": []}
    )
    run = sim.queue_run(
        pipe,
        template_parameters={"modelName": "fraud-detector", "modelVersion": "7"},
        decisions={"Deploy_QA": "approved"},
    )
    sim.advance(600)  # Build, QA: PROD waits for the check
    [call] = service.wait_for(1)
    return run, call


def events_url(call: dict) -> str:
    h = call["headers"]
    return (
        f"{h['planurl']}{h['projectid']}/_apis/distributedtask/hubs/{h['hubname']}/plans/"
        f"{h['planid']}/events?api-version=2.0-preview.1"
    )


def feed_url(call: dict) -> str:
    h = call["headers"]
    return (
        f"{h['planurl']}{h['projectid']}/_apis/distributedtask/hubs/{h['hubname']}/plans/"
        f"{h['planid']}/timelines/{h['timelineid']}/records/{h['taskinstanceid']}/feed"
        "?api-version=4.1"
    )


def completed(call: dict, result: str, token: str | None = None) -> requests.Response:
    h = call["headers"]
    return requests.post(
        events_url(call),
        json={
            "name": "TaskCompleted",
            "taskId": h["taskinstanceid"],
            "jobId": h["jobid"],
            "result": result,
        },
        headers={"Authorization": f"Bearer {token or h['authtoken']}"},
        timeout=10,
    )


def prod_stage(sim, run):
    return next(s for s in sim.run(run.id).stages if s.name == "PROD")


def test_the_check_is_called_with_adoss_headers_and_the_filled_body(sim, service):
    run, call = release_to_prod(sim, service)
    h = call["headers"]
    for name in ("planurl", "projectid", "hubname", "planid", "jobid", "taskinstanceid"):
        assert h[name], name
    assert h["authtoken"] and h["timelineid"] and h["buildid"] == str(run.id)
    assert h["planurl"] == f"{sim.org_url}/" and h["hubname"] == "checks"
    assert h["authorization"] == "Basic " + base64.b64encode(b"ado:s3cret").decode()
    assert call["body"] == {
        "model": "fraud-detector",
        "version": "7",
        "environment": "PROD",
        "runId": str(run.id),
    }
    assert prod_stage(sim, run).state == "waiting"


def test_the_stage_waits_until_task_completed_succeeded(sim, service):
    run, call = release_to_prod(sim, service)
    sim.advance(3000)
    assert prod_stage(sim, run).state == "waiting"
    assert completed(call, "succeeded").status_code == 204
    sim.advance(600)
    assert prod_stage(sim, run).result == "succeeded"
    assert sim.run(run.id).result == "succeeded"


def test_a_failed_check_fails_the_stage_and_the_run(sim, service):
    run, call = release_to_prod(sim, service)
    assert completed(call, "failed").status_code == 204
    sim.advance(60)
    assert prod_stage(sim, run).result == "failed"
    assert sim.run(run.id).result == "failed"


def test_the_callback_needs_the_jobs_token(sim, service):
    run, call = release_to_prod(sim, service)
    other = call["headers"]["authtoken"].rsplit(".", 1)[0] + ".other"
    assert completed(call, "succeeded", token=other).status_code == 401
    sim.advance(60)
    assert prod_stage(sim, run).state == "waiting"


def test_a_repeated_task_completed_is_accepted_and_changes_nothing(sim, service):
    run, call = release_to_prod(sim, service)
    assert completed(call, "failed").status_code == 204
    assert completed(call, "succeeded").status_code == 204
    sim.advance(60)
    [check] = sim.check_runs_for(run.id)
    assert check.status == "failed" and len(check.events) == 2
    assert prod_stage(sim, run).result == "failed"


def test_log_lines_on_the_record_feed_are_kept(sim, service):
    run, call = release_to_prod(sim, service)
    token = call["headers"]["authtoken"]
    lines = ["[NOT OK] challenger: auc 0.71 vs champion v1 0.74: worse by 0.03"]
    answer = requests.post(
        feed_url(call),
        json={"count": 1, "value": lines},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 204
    [check] = sim.check_runs_for(run.id)
    assert check.log_lines == lines


def test_without_a_callback_the_stage_is_skipped_at_the_timeout(sim, service):
    run, _ = release_to_prod(sim, service, timeout_minutes=30)
    sim.advance(31 * 60)
    stage = prod_stage(sim, run)
    assert stage.result == "skipped"
    assert sim.run(run.id).result == "failed"
    [check] = sim.check_runs_for(run.id)
    assert check.status == "timedOut"


def test_a_service_that_does_not_answer_200_fails_the_check(sim, service):
    service.statuses = [500]
    run, _ = release_to_prod(sim, service)
    deadline = time.monotonic() + 10
    while sim.check_runs_for(run.id)[0].status == "pending" and time.monotonic() < deadline:
        time.sleep(0.02)
    sim.advance(60)
    assert prod_stage(sim, run).result == "failed"
    [check] = sim.check_runs_for(run.id)
    assert check.call["status"] == 500 and "500" in check.log_lines[0]


def test_the_control_api_configures_the_check_and_shows_its_log(sim, service):
    remote = RemoteSimulator(sim.url)
    configured = remote.configure_rest_check(
        "PROD", service.url, secret="s3cret", body=BODY, timeout_minutes=50
    )
    assert configured["secret"] == "********" and configured["timeoutMinutes"] == 50
    pipe = sim.create_pipeline("r", "release", model="m", approvers={"Deploy_PROD": []})
    run = sim.queue_run(pipe, decisions={"Deploy_QA": "approved"})
    remote.advance(600)
    [call] = service.wait_for(1)
    requests.post(
        feed_url(call),
        json={"count": 1, "value": ["a line"]},
        headers={"Authorization": f"Bearer {call['headers']['authtoken']}"},
        timeout=10,
    )
    [check] = remote.check_runs(run.id)
    assert check["status"] == "pending" and check["logLines"] == ["a line"]
    remote.remove_rest_check("PROD")
    assert sim.rest_checks == {}
