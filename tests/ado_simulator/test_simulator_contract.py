"""Contract tests: the simulator's responses against the example payloads of the reference notes
and of the public API docs, so the simulator cannot drift into a toy.

For every example, the simulator's answer must have at least the same keys with the same JSON
types, recursively (a ``null`` in an example says nothing about the type, and matches anything;
a non-empty example list needs a non-empty answer whose items match the example's).

The examples come from two places:
- ``../shared/reference/azure-devops.md`` beside the repository (the reference notes), parsed at
  test time: its JSON code blocks, and the JSON body of its ``http`` block. Skipped, with the
  reason, when the notes are not there.
- ``contract_examples/*.json`` in this folder (listed in its ``manifest.json``): copies of the
  notes' examples plus examples from the REST spec and the service-hook docs, so the contract
  runs without the notes too. A test checks the copies still equal the notes.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import requests

from ado_simulator import (
    APPROVAL_COMPLETED,
    APPROVAL_PENDING,
    BUILD_COMPLETE,
    RUN_EVENT,
    STAGE_EVENT,
    Decision,
    Identity,
)
from tests.ado_simulator.conftest import Ado

ROOT = Path(__file__).resolve().parents[2]
NOTES = ROOT.parent / "shared" / "reference" / "azure-devops.md"
EXAMPLES = Path(__file__).parent / "contract_examples"
MANIFEST = json.loads((EXAMPLES / "manifest.json").read_text())["examples"]
REQUEST_ONLY = {"stagesToSkip", "previewRun", "yamlOverride"}  # RunPipelineParameters, not Run


# ==== the shape comparison =======================================================================


def _type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_problems(example, actual, path: str = "$") -> list[str]:
    """Where ``actual`` lacks a key of ``example`` or has another JSON type."""
    if example is None:
        return []
    expected, got = _type(example), _type(actual)
    if expected == "number" and got == "integer":
        got = "number"
    if expected != got:
        return [f"{path}: expected {expected}, got {got} ({json.dumps(actual)[:80]})"]
    problems: list[str] = []
    if isinstance(example, dict):
        for key, value in example.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems.extend(shape_problems(value, actual[key], f"{path}.{key}"))
    elif isinstance(example, list) and example:
        if not actual:
            return [f"{path}: expected a non-empty array, got []"]
        for i, item in enumerate(example):
            problems.extend(shape_problems(item, actual[min(i, len(actual) - 1)], f"{path}[{i}]"))
    return problems


def assert_shape(example, actual) -> None:
    problems = shape_problems(example, actual)
    assert not problems, "the simulator's answer differs from the example:\n  " + "\n  ".join(
        problems
    )


def test_shape_comparison_itself():
    assert (
        shape_problems(
            {"a": 1, "b": [{"c": "x"}], "d": None}, {"a": 2, "b": [{"c": "y", "e": 1}], "d": 5}
        )
        == []
    )
    assert shape_problems({"a": 1}, {"a": "1"}) == ['$.a: expected integer, got string ("1")']
    assert shape_problems({"a": {"b": True}}, {"a": {}}) == ["$.a.b: missing"]
    assert shape_problems({"a": [1]}, {"a": []}) == ["$.a: expected a non-empty array, got []"]
    assert shape_problems({"a": 1.5}, {"a": 2}) == []
    assert shape_problems({"a": True}, {"a": 1}) == ["$.a: expected boolean, got integer (1)"]


# ==== what each kind of example is compared with =================================================


def release_with_approvals(sim):
    return sim.create_pipeline(
        "risk-fraud-detector-release",
        "release",
        model="fraud-detector",
        blocked_approvers={
            "Deploy_QA": ["intern@example.com"],
            "Deploy_PROD": ["intern@example.com"],
        },
    )


def pending_approval_id(sim, ado: Ado) -> str:
    run = sim.queue_run(release_with_approvals(sim))
    sim.advance(120)
    return sim.pending_approvals(run)[0].id


def check_approval(sim, ado, receiver, example):
    approval_id = pending_approval_id(sim, ado)
    actual = ado.ok("GET", f"pipelines/approvals/{approval_id}", params={"$expand": "steps"})
    assert_shape(example, actual)


def check_approvals_query(sim, ado, receiver, example):
    pipe = release_with_approvals(sim)
    for _ in range(len(example["value"])):
        sim.queue_run(pipe)
    sim.advance(120)
    ids = ",".join(a.id for a in sim.pending_approvals())
    actual = ado.ok("GET", "pipelines/approvals", params={"approvalIds": ids})
    assert_shape(example, actual)


def check_approvals_patch_body(sim, ado, receiver, example):
    assert isinstance(example, list) and example
    body = copy.deepcopy(example)
    body[0]["approvalId"] = pending_approval_id(sim, ado)
    actual = ado.ok("PATCH", "pipelines/approvals", json=body)
    assert actual["count"] == len(body)
    approval = actual["value"][0]
    assert approval["id"] == body[0]["approvalId"]
    assert approval["status"] == body[0]["status"]
    step = approval["steps"][0]
    assert step["status"] == body[0]["status"]
    assert step["comment"] == body[0].get("comment", "")
    assert "actualApprover" in step


def check_approvals_patch_response(sim, ado, receiver, example):
    approval_id = pending_approval_id(sim, ado)
    body = [{"approvalId": approval_id, "status": "approved", "comment": "Approving"}]
    actual = ado.ok("PATCH", "pipelines/approvals", json=body)
    assert_shape(example, actual)


def check_run_parameters(sim, ado, receiver, example):
    pipe = release_with_approvals(sim)
    actual = ado.ok("POST", f"pipelines/{pipe.id}/runs", json=example)
    echoed = {k: v for k, v in example.items() if k not in REQUEST_ONLY}
    assert_shape(echoed, actual)
    assert actual["templateParameters"] == example.get(
        "templateParameters", actual["templateParameters"]
    )
    for stage in example.get("stagesToSkip", []):
        sim.advance(120)
        for approval in sim.pending_approvals(actual["id"]):
            sim.decide(approval.id, "approved", "alice@example.com")
        sim.advance(3600)
        records = ado.ok("GET", f"build/builds/{actual['id']}/timeline")["records"]
        skipped = next(r for r in records if r["type"] == "Stage" and r["identifier"] == stage)
        assert skipped["result"] == "skipped"


def check_subscription_request(sim, ado, receiver, example):
    actual = ado.ok("POST", "hooks/subscriptions", org=True, json=example)
    assert_shape(example, actual)


def check_subscription_response(sim, ado, receiver, example, request):
    actual = ado.ok("POST", "hooks/subscriptions", org=True, json=request)
    assert_shape(example, actual)


def _pick_event(bodies: list[dict], event_type: str) -> dict:
    candidates = [b for b in bodies if b["eventType"] == event_type]
    assert candidates, f"no {event_type} was delivered"
    if event_type in (RUN_EVENT, STAGE_EVENT):  # the samples show a completed run / stage
        key = "run" if event_type == RUN_EVENT else "stage"
        candidates = [b for b in candidates if b["resource"][key]["state"] == "completed"]
    return candidates[-1]


def check_event(sim, ado, receiver, example):
    sim.add_subscription(receiver.url, username="ado-hook", password="secret")
    pipe = release_with_approvals(sim)
    sim.queue_run(
        pipe,
        decisions={
            "Deploy_QA": Decision(600, "approved", Identity.user("alice@example.com"), "ok"),
            "Deploy_PROD": Decision(600, "approved", Identity.user("paul@example.com"), "go"),
        },
    )
    sim.advance(3 * 3600)
    assert sim.wait_for_deliveries()
    actual = _pick_event(receiver.bodies(), example["eventType"])
    assert_shape(example, actual)


def _rest_check_call(sim, receiver) -> dict:
    """A release reaching PROD with a REST check on it: the call the receiver got."""
    sim.configure_rest_check("PROD", receiver.url, secret="s", body={"model": "m"})
    pipe = sim.create_pipeline("checked", "release", model="m", approvers={"Deploy_PROD": []})
    sim.queue_run(pipe, decisions={"Deploy_QA": "approved"})
    sim.advance(600)
    [call] = receiver.wait_for(1)
    return call


def _plan_url(call: dict, tail: str) -> str:
    h = call["headers"]
    return (
        f"{h['planurl']}{h['projectid']}/_apis/distributedtask/hubs/{h['hubname']}/plans/"
        f"{h['planid']}/{tail}"
    )


def check_call_headers(sim, ado, receiver, example):
    headers = _rest_check_call(sim, receiver)["headers"]
    assert_shape({k.lower(): v for k, v in example.items()}, headers)


def check_task_completed(sim, ado, receiver, example):
    call = _rest_check_call(sim, receiver)
    h = call["headers"]
    body = {**example, "taskId": h["taskinstanceid"], "jobId": h["jobid"]}
    answer = requests.post(
        _plan_url(call, "events"),
        params={"api-version": "2.0-preview.1"},
        json=body,
        headers={"Authorization": f"Bearer {h['authtoken']}"},
        timeout=10,
    )
    assert answer.status_code == 204, answer.text
    [check] = sim.check_runs_for()
    assert check.status == example["result"]


def check_timeline_feed(sim, ado, receiver, example):
    call = _rest_check_call(sim, receiver)
    h = call["headers"]
    answer = requests.post(
        _plan_url(call, f"timelines/{h['timelineid']}/records/{h['taskinstanceid']}/feed"),
        params={"api-version": "4.1"},
        json=example,
        headers={"Authorization": f"Bearer {h['authtoken']}"},
        timeout=10,
    )
    assert answer.status_code == 204, answer.text
    [check] = sim.check_runs_for()
    assert check.log_lines == example["value"]


CHECKS = {
    "approval": check_approval,
    "approvals_query": check_approvals_query,
    "approvals_patch_body": check_approvals_patch_body,
    "approvals_patch_response": check_approvals_patch_response,
    "run_parameters": check_run_parameters,
    "subscription_request": check_subscription_request,
    "subscription_response": check_subscription_response,
    "event": check_event,
    "check_call_headers": check_call_headers,
    "task_completed": check_task_completed,
    "timeline_feed": check_timeline_feed,
}
EVENT_TYPES_WITH_SAMPLES = {
    RUN_EVENT,
    STAGE_EVENT,
    APPROVAL_PENDING,
    APPROVAL_COMPLETED,
    BUILD_COMPLETE,
}


# ==== the copied examples (always run) ===========================================================


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_simulator_matches_copied_example(sim, ado, receiver, entry):
    example = json.loads((EXAMPLES / entry["file"]).read_text())
    if entry.get("request"):
        request = json.loads((EXAMPLES / entry["request"]).read_text())
        CHECKS[entry["kind"]](sim, ado, receiver, example, request)
    else:
        CHECKS[entry["kind"]](sim, ado, receiver, example)


def test_every_copied_example_is_listed_and_every_event_has_a_sample():
    listed = {e["file"] for e in MANIFEST} | {e["request"] for e in MANIFEST if e.get("request")}
    on_disk = {p.name for p in EXAMPLES.glob("*.json")} - {"manifest.json"}
    assert listed == on_disk
    events = {
        json.loads((EXAMPLES / e["file"]).read_text())["eventType"]
        for e in MANIFEST
        if e["kind"] == "event"
    }
    assert events == EVENT_TYPES_WITH_SAMPLES


# ==== the reference notes (when shared/ is beside the clone) =====================================


def notes_examples() -> list[tuple[str, object]]:
    """The JSON examples of the notes: ```json blocks, and the JSON body of ```http blocks."""
    if not NOTES.is_file():
        return []
    text = NOTES.read_text()
    found = []
    for match in re.finditer(r"```(json|http)\n(.*?)```", text, re.DOTALL):
        lang, body = match.groups()
        line = text[: match.start()].count("\n") + 1
        if lang == "http":
            _request_line, _, body = body.partition("\n")
            if not body.strip().startswith(("{", "[")):
                continue
        found.append((f"line {line}", json.loads(body)))
    return found


def classify(example) -> str | None:
    if isinstance(example, list) and example and all("approvalId" in i for i in example):
        return "approvals_patch_body"
    if not isinstance(example, dict):
        return None
    if {"steps", "executionOrder"} <= set(example):
        return "approval"
    if {"count", "value"} <= set(example):
        return "approvals_query"
    if (
        example.get("templateParameters") is not None
        or "stagesToSkip" in example
        or "resources" in example
    ):
        return "run_parameters"
    if "consumerId" in example or "consumerInputs" in example:
        return "subscription_request"
    if "eventType" in example and "resource" in example:
        return "event"
    return None


NOTES_EXAMPLES = notes_examples()
NOTES_MISSING = (
    f"the reference notes are not at {NOTES} (CI keeps shared/ beside the clone); "
    "the copies in contract_examples/ still run"
)


@pytest.mark.skipif(not NOTES_EXAMPLES, reason=NOTES_MISSING)
@pytest.mark.parametrize(
    "where, example",
    NOTES_EXAMPLES or [("none", None)],
    ids=[w for w, _ in NOTES_EXAMPLES] or ["none"],
)
def test_simulator_matches_notes_example(sim, ado, receiver, where, example):
    kind = classify(example)
    assert kind is not None, (
        f"The example at {where} of {NOTES.name} is of a kind the contract does not know yet; add "
        "a check for it (and a copy in contract_examples/)."
    )
    CHECKS[kind](sim, ado, receiver, example)


@pytest.mark.skipif(not NOTES_EXAMPLES, reason=NOTES_MISSING)
def test_copies_equal_the_notes_examples():
    copies = [
        json.loads((EXAMPLES / e["file"]).read_text())
        for e in MANIFEST
        if e["file"].startswith("notes_")
    ]
    notes = [example for _, example in NOTES_EXAMPLES]
    assert len(copies) == len(notes)
    for example in notes:
        assert example in copies, f"contract_examples/ has no copy of {json.dumps(example)[:120]}"
