"""The ADO simulator over real HTTP: every endpoint, paging, api-versions, auth and identity,
approvals moving runs on, time-outs, faults and throttling, service-hook deliveries, the control
API and the standalone command."""

from __future__ import annotations

import base64
import collections
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ado_simulator import (
    APPROVAL_COMPLETED,
    APPROVAL_PENDING,
    BUILD_COMPLETE,
    EVENT_TYPES,
    RUN_EVENT,
    STAGE_EVENT,
    AdoSimulator,
    ControlError,
    Decision,
    Identity,
    RemoteSimulator,
)
from tests.ado_simulator.conftest import PAT, PAT_USER, Ado, make_jwt

ROOT = Path(__file__).resolve().parents[2]
ERROR_KEYS = {"$id", "innerException", "message", "typeName", "typeKey", "errorCode", "eventId"}


def release(sim, name="risk-fraud-detector-release", **kw):
    return sim.create_pipeline(name, "release", model="fraud-detector", **kw)


def stage_of(ado: Ado, build_id: int, identifier: str) -> dict:
    records = ado.ok("GET", f"build/builds/{build_id}/timeline")["records"]
    return next(r for r in records if r["type"] == "Stage" and r["identifier"] == identifier)


def pending_approval(ado: Ado, run_id: int) -> dict:
    value = ado.ok("GET", "pipelines/approvals", params={"state": "pending", "$expand": "steps"})
    found = [a for a in value["value"] if a["pipeline"]["owner"]["id"] == run_id]
    assert len(found) == 1, value
    return found[0]


# ==== the simulator says it is one ===============================================================


def test_home_page_says_it_is_a_simulator(sim):
    response = requests.get(sim.url + "/", timeout=5)
    assert response.status_code == 200
    assert response.headers["X-ADO-Simulator"] == "true"
    assert "text/html" in response.headers["Content-Type"]
    assert "simulator of Azure DevOps, not Azure DevOps" in response.text


def test_every_response_carries_the_simulator_header(sim, ado):
    pipe = sim.create_pipeline("p", "ci")
    responses = [
        ado.get("pipelines"),
        ado.get(f"pipelines/{pipe.id}"),
        ado.get("pipelines/999"),  # 404
        ado.get("pipelines", version=None),  # 400
        requests.get(ado.url("pipelines"), timeout=5),  # 401
        requests.get(sim.url + "/_simulator", timeout=5),
    ]
    assert [r.status_code for r in responses] == [200, 200, 404, 400, 401, 200]
    assert all(r.headers["X-ADO-Simulator"] == "true" for r in responses)


def test_every_log_line_is_prefixed(sim, ado, caplog):
    caplog.set_level(logging.INFO, logger="ado_simulator")
    pipe = release(sim)
    sim.queue_run(pipe)
    ado.get("pipelines")
    sim.advance(3600)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("ado_simulator")]
    assert len(lines) >= 4
    assert all(line.startswith("[ADO simulator] ") for line in lines), lines


# ==== auth =======================================================================================


def test_basic_auth_with_a_configured_pat_any_user(sim):
    for user in ("", "someone", PAT_USER):
        assert Ado(sim, auth=(user, PAT)).get("pipelines").status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic " + base64.b64encode(b":wrong-pat").decode(),
        "Basic not-base64!",
        "Bearer not-a-jwt",
        "Bearer " + make_jwt({"aud": "x"}),  # neither oid nor upn
        "Bearer " + make_jwt({"oid": "1", "upn": "a@example.com", "exp": 1000}),  # expired
        "Negotiate abc",
    ],
)
def test_bad_or_missing_auth_is_401(sim, header):
    session = requests.Session()
    headers = {"Authorization": header} if header else {}
    response = session.get(
        f"{sim.org_url}/MLOps/_apis/pipelines",
        params={"api-version": "7.1"},
        headers=headers,
        timeout=5,
    )
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert "simulator" in response.text


def test_bearer_jwt_is_accepted_without_verification(sim):
    token = make_jwt({"oid": "11111111-2222-3333-4444-555555555555", "upn": "alice@example.com"})
    assert Ado(sim, auth=f"Bearer {token}").get("pipelines").status_code == 200


# ==== api-version ================================================================================

ENDPOINTS = {
    "pipelines": "pipelines",
    "runs": "pipelines/{pipeline}/runs",
    "builds": "build/builds",
    "timeline": "build/builds/{run}/timeline",
    "approvals": "pipelines/approvals",
}


@pytest.fixture
def one_run(sim):
    pipe = release(sim)
    run = sim.queue_run(pipe)
    sim.advance(130)
    return pipe, run


@pytest.mark.parametrize(
    ("endpoint", "version"),
    [
        ("pipelines", "7.1"),
        ("pipelines", "7.0"),
        ("pipelines", "7.1-preview.1"),
        ("pipelines", "7.1-preview"),
        ("pipelines", "6.0-preview.1"),
        ("pipelines", "7.2-preview.1"),
        ("runs", "7.1"),
        ("runs", "7.1-preview.1"),
        ("runs", "7.2-preview.1"),
        ("builds", "7.1"),
        ("builds", "7.1-preview.7"),
        ("builds", "7.2-preview.8"),
        ("builds", "6.0"),
        ("timeline", "7.1"),
        ("timeline", "7.1-preview.2"),
        ("timeline", "7.2-preview.3"),
        ("approvals", "7.1"),
        ("approvals", "7.0"),
        ("approvals", "7.1-preview.1"),
        ("approvals", "7.2-preview.1"),
        ("approvals", "7.2-preview.2"),
        ("approvals", "6.1-preview.1"),
    ],
)
def test_documented_api_versions_are_accepted(ado, one_run, endpoint, version):
    pipe, run = one_run
    path = ENDPOINTS[endpoint].format(pipeline=pipe.id, run=run.id)
    response = ado.get(path, version=version)
    assert response.status_code == 200, response.text
    assert f"api-version={version}" in response.headers["Content-Type"]


@pytest.mark.parametrize(
    ("endpoint", "version", "type_key"),
    [
        ("pipelines", None, "VssVersionNotSpecifiedException"),
        ("approvals", None, "VssVersionNotSpecifiedException"),
        ("builds", "", "VssVersionNotSpecifiedException"),
        ("pipelines", "9.0", "VssVersionOutOfRangeException"),
        ("approvals", "7.3-preview.1", "VssVersionOutOfRangeException"),
        ("pipelines", "7.2", "VssInvalidPreviewVersionException"),
        ("approvals", "7.2", "VssInvalidPreviewVersionException"),
        ("pipelines", "6.0", "VssInvalidPreviewVersionException"),
        ("pipelines", "7.2-preview.2", "VssVersionOutOfRangeException"),
        ("approvals", "7.1-preview.2", "VssVersionOutOfRangeException"),
        ("approvals", "5.0", "VssVersionOutOfRangeException"),
        ("timeline", "7.1-preview.3", "VssVersionOutOfRangeException"),
        ("builds", "latest", "VssInvalidApiVersionException"),
    ],
)
def test_missing_or_unknown_api_version_is_rejected_like_ado(
    ado, one_run, endpoint, version, type_key
):
    pipe, run = one_run
    path = ENDPOINTS[endpoint].format(pipeline=pipe.id, run=run.id)
    response = (
        ado.get(path, version=version) if version is not None else ado.get(path, version=None)
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["$id"] == "1"
    assert body["innerException"] is None
    assert body["errorCode"] == 0
    assert body["eventId"] == 3000
    assert body["typeKey"] == type_key
    assert body["typeName"].startswith(f"Microsoft.VisualStudio.Services.WebApi.{type_key}, ")
    assert body["message"]


def test_missing_api_version_message_names_the_method(ado):
    body = ado.post("pipelines/1/runs", version=None, json={}).json()
    assert body["message"].startswith('No api-version was supplied for the "POST" request.')


def test_api_version_in_the_accept_header(sim, ado):
    response = ado.session.get(
        ado.url("pipelines"), headers={"Accept": "application/json;api-version=7.1"}, timeout=5
    )
    assert response.status_code == 200


# ==== pipelines ==================================================================================


def test_pipeline_list_and_get(sim, ado):
    pipe = sim.create_pipeline(
        "risk-fraud-detector-train",
        "training",
        folder="\\risk\\fraud-detector",
        model="fraud-detector",
    )
    listed = ado.ok("GET", "pipelines")
    assert listed["count"] == 1
    item = listed["value"][0]
    assert {"_links", "url", "id", "revision", "name", "folder"} <= set(item)
    assert item["folder"] == "\\risk\\fraud-detector"
    got = ado.ok("GET", f"pipelines/{pipe.id}")
    assert got["name"] == "risk-fraud-detector-train"
    assert got["configuration"]["type"] == "yaml"
    assert got["_links"]["web"]["href"].endswith(f"definitionId={pipe.id}")
    missing = ado.get("pipelines/4242")
    assert missing.status_code == 404
    assert set(missing.json()) == ERROR_KEYS


def test_project_by_id_and_unknown_project(sim):
    sim.create_pipeline("p", "ci")
    by_id = Ado(sim, project=sim.default_project.id).get("pipelines")
    assert by_id.status_code == 200 and by_id.json()["count"] == 1
    unknown = Ado(sim, project="Nope").get("pipelines")
    assert unknown.status_code == 404
    assert unknown.json()["typeKey"] == "ProjectDoesNotExistWithNameException"


def follow(ado: Ado, path: str, top: int, top_param: str = "$top", **params) -> list[list[dict]]:
    pages, token = [], None
    while True:
        query = {top_param: top, **params}
        if token:
            query["continuationToken"] = token
        response = ado.get(path, params=query)
        assert response.status_code == 200, response.text
        pages.append(response.json()["value"])
        assert response.json()["count"] == len(pages[-1])
        token = response.headers.get("x-ms-continuationtoken")
        if not token:
            return pages
        assert len(pages) < 50, "the continuation tokens never end"


def test_pipelines_paging_over_ten_pages(sim, ado):
    for i in range(30):
        sim.create_pipeline(f"pipe-{i:02d}", "ci")
    pages = follow(ado, "pipelines", 3)
    assert len(pages) == 10
    names = [p["name"] for page in pages for p in page]
    assert names == sorted(f"pipe-{i:02d}" for i in range(30))
    descending = follow(ado, "pipelines", 7, orderBy="name desc")
    assert [p["name"] for page in descending for p in page] == names[::-1]


def test_bad_continuation_token_is_400(ado):
    response = ado.get("pipelines", params={"continuationToken": "garbage!"})
    assert response.status_code == 400
    assert set(response.json()) == ERROR_KEYS


# ==== runs =======================================================================================


def test_queue_run_returns_the_documented_run_and_it_moves_on(sim, ado):
    pipe = sim.create_pipeline("risk-fraud-detector-train", "training", model="fraud-detector")
    body = {
        "resources": {"repositories": {"self": {"refName": "refs/heads/feature/x"}}},
        "templateParameters": {"modelName": "fraud-detector"},
        "variables": {
            "TRIGGER": {"value": "drift", "isSecret": False},
            "TOKEN": {"value": "s", "isSecret": True},
        },
    }
    run = ado.ok("POST", f"pipelines/{pipe.id}/runs", json=body)
    assert {"_links", "pipeline", "state", "createdDate", "url", "id", "name"} <= set(run)
    assert set(run["_links"]) == {"self", "web", "pipeline.web", "pipeline"}
    assert run["state"] == "inProgress"
    assert "result" not in run and "finishedDate" not in run  # ADO leaves them out until done
    assert run["pipeline"]["id"] == pipe.id
    assert run["resources"]["repositories"]["self"]["refName"] == "refs/heads/feature/x"
    assert run["templateParameters"] == {"modelName": "fraud-detector"}
    assert run["variables"]["TRIGGER"] == {"value": "drift", "isSecret": False}
    assert run["variables"]["TOKEN"] == {"isSecret": True}  # secret values are not returned

    sim.advance(600 + 60)
    done = ado.ok("GET", f"pipelines/{pipe.id}/runs/{run['id']}")
    assert done["state"] == "completed"
    assert done["result"] == "succeeded"
    assert done["finishedDate"] > done["createdDate"]

    listed = ado.ok("GET", f"pipelines/{pipe.id}/runs")
    assert [r["id"] for r in listed["value"]] == [run["id"]]
    build = ado.ok("GET", f"build/builds/{run['id']}")
    assert build["requestedFor"]["uniqueName"] == PAT_USER
    assert build["reason"] == "manual"
    assert build["sourceBranch"] == "refs/heads/feature/x"


def test_queue_run_errors(sim, ado):
    pipe = sim.create_pipeline("p", "release", parameters=["modelName"])
    assert ado.post("pipelines/999/runs", json={}).status_code == 404
    bad_param = ado.post(f"pipelines/{pipe.id}/runs", json={"templateParameters": {"nope": "1"}})
    assert bad_param.status_code == 400
    assert "nope" in bad_param.json()["message"]
    bad_stage = ado.post(f"pipelines/{pipe.id}/runs", json={"stagesToSkip": ["Nope"]})
    assert bad_stage.status_code == 400
    assert (
        ado.post(
            f"pipelines/{pipe.id}/runs", data="{", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert ado.get(f"pipelines/{pipe.id}/runs/12345").status_code == 404


def test_stages_to_skip(sim, ado):
    pipe = release(sim)
    run = ado.ok(
        "POST",
        f"pipelines/{pipe.id}/runs",
        json={"stagesToSkip": ["Deploy_PROD"]},
    )
    sim.advance(120)
    sim.decide(pending_approval(ado, run["id"])["id"], "approved", "alice@example.com")
    sim.advance(180)
    assert stage_of(ado, run["id"], "Deploy_PROD")["result"] == "skipped"
    assert ado.ok("GET", f"build/builds/{run['id']}")["result"] == "succeeded"


def test_runs_of_each_kind_have_one_or_two_stages_and_no_approvals(sim, ado):
    for kind in ("ci", "data-cleansing", "training", "scoring"):
        pipe = sim.create_pipeline(f"x-{kind}", kind)
        run = sim.queue_run(pipe)
        stages = [
            r
            for r in ado.ok("GET", f"build/builds/{run.id}/timeline")["records"]
            if r["type"] == "Stage"
        ]
        assert 1 <= len(stages) <= 2
    sim.advance(3600)
    assert ado.ok("GET", "pipelines/approvals")["count"] == 0
    assert all(r.result == "succeeded" for r in sim.runs.values())


# ==== builds =====================================================================================


def test_build_get_shape(sim, ado):
    pipe = release(sim)
    run = sim.queue_run(pipe, reason="resourceTrigger", requested_for="dana@example.com")
    build = ado.ok("GET", f"build/builds/{run.id}")
    for key in (
        "id",
        "buildNumber",
        "status",
        "queueTime",
        "startTime",
        "definition",
        "sourceBranch",
        "sourceVersion",
        "requestedFor",
        "reason",
        "templateParameters",
        "_links",
        "uri",
        "url",
        "project",
    ):
        assert key in build, key
    assert build["status"] == "inProgress"
    assert "result" not in build and "finishTime" not in build
    assert build["definition"] == {**build["definition"], "id": pipe.id, "name": pipe.name}
    assert build["reason"] == "resourceTrigger"
    assert build["requestedFor"]["uniqueName"] == "dana@example.com"
    assert len(build["sourceVersion"]) == 40
    assert ado.get("build/builds/98765").status_code == 404


def test_build_number_counts_per_pipeline_per_day(sim):
    pipe = sim.create_pipeline("p", "ci")
    names = [sim.queue_run(pipe).name for _ in range(3)]
    assert names == ["20250303.1", "20250303.2", "20250303.3"]


def test_builds_paging_over_ten_pages_with_filters(sim, ado):
    a = sim.create_pipeline("a", "ci", stage_seconds=30)
    b = sim.create_pipeline("b", "ci", stage_seconds=30)
    for i in range(50):
        sim.queue_run(a if i % 2 else b)
        sim.advance(61)
    sim.queue_run(a)  # in progress: has no finish time
    pages = follow(ado, "build/builds", 5, queryOrder="finishTimeDescending")
    assert len(pages) == 10
    builds = [b for page in pages for b in page]
    assert len({b["id"] for b in builds}) == 50
    finish = [b["finishTime"] for b in builds]
    assert finish == sorted(finish, reverse=True)

    by_queue = [b for page in follow(ado, "build/builds", 17) for b in page]
    assert len(by_queue) == 51  # default order queueTimeDescending includes the running one
    assert by_queue[0]["status"] == "inProgress"

    only_a = [b for page in follow(ado, "build/builds", 4, definitions=str(a.id)) for b in page]
    assert {b["definition"]["id"] for b in only_a} == {a.id}
    assert len(only_a) == 26

    cutoff = builds[9]["finishTime"]
    recent = ado.ok(
        "GET", "build/builds", params={"minTime": cutoff, "queryOrder": "finishTimeAscending"}
    )["value"]
    assert [b["id"] for b in recent] == [b["id"] for b in builds[:10]][::-1]

    running = ado.ok("GET", "build/builds", params={"statusFilter": "inProgress"})["value"]
    assert len(running) == 1 and running[0]["status"] == "inProgress"
    ids = ",".join(str(b["id"]) for b in builds[:3])
    assert ado.ok("GET", "build/builds", params={"buildIds": ids})["count"] == 3
    assert ado.ok("GET", "build/builds", params={"maxBuildsPerDefinition": 2})["count"] == 4


# ==== timeline ===================================================================================


def test_timeline_records_are_linked_stage_checkpoint_approval(sim, ado):
    pipe = release(sim)
    run = sim.queue_run(pipe)
    sim.advance(120)
    timeline = ado.ok("GET", f"build/builds/{run.id}/timeline")
    assert {"records", "lastChangedBy", "lastChangedOn", "id", "changeId", "url"} <= set(timeline)
    records = timeline["records"]
    for record in records:
        for key in (
            "id",
            "parentId",
            "type",
            "name",
            "identifier",
            "state",
            "result",
            "startTime",
            "finishTime",
            "order",
        ):
            assert key in record, (key, record)
        assert record["state"] in ("pending", "inProgress", "completed")
    by_id = {r["id"]: r for r in records}
    stages = [r for r in records if r["type"] == "Stage"]
    assert [s["identifier"] for s in stages] == ["Build", "Deploy_QA", "Deploy_PROD"]
    assert [s["name"] for s in stages] == ["Build", "QA", "PROD"]
    assert [s["order"] for s in stages] == [1, 2, 3]
    assert all(s["parentId"] is None for s in stages)
    assert stages[0]["state"] == "completed" and stages[0]["result"] == "succeeded"
    assert stages[1]["state"] == "inProgress" and stages[1]["result"] is None
    assert stages[2]["state"] == "pending"

    approval = pending_approval(ado, run.id)
    record = by_id[approval["id"]]  # the Checkpoint.Approval record id is the approval id
    assert record["type"] == "Checkpoint.Approval"
    assert record["identifier"] == approval["id"]
    assert record["state"] == "inProgress"
    checkpoint = by_id[record["parentId"]]
    assert checkpoint["type"] == "Checkpoint" and checkpoint["state"] == "inProgress"
    assert by_id[checkpoint["parentId"]]["identifier"] == "Deploy_QA"
    jobs = [r for r in records if r["type"] == "Job"]
    phases = [r for r in records if r["type"] == "Phase"]
    assert all(by_id[j["parentId"]]["type"] == "Phase" for j in jobs)
    assert all(by_id[p["parentId"]]["type"] == "Stage" for p in phases)
    other = ado.get(f"build/builds/{run.id}/timeline/{timeline['id']}")
    assert other.status_code == 200
    assert (
        ado.get(f"build/builds/{run.id}/timeline/00000000-0000-0000-0000-000000000001").status_code
        == 404
    )


# ==== approvals ==================================================================================


def test_approval_list_get_and_filters(sim, ado):
    pipe = release(
        sim,
        min_required_approvers=1,
        approvers={"Deploy_QA": ["alice@example.com", "bob@example.com"]},
    )
    runs = [sim.queue_run(pipe) for _ in range(3)]
    sim.advance(120)
    everything = ado.ok("GET", "pipelines/approvals")
    assert everything["count"] == 3
    assert all(a["steps"] == [] for a in everything["value"])  # steps only with $expand=steps
    expanded = ado.ok("GET", "pipelines/approvals", params={"state": "pending", "$expand": "steps"})
    approval = expanded["value"][0]
    for key in (
        "id",
        "steps",
        "status",
        "createdOn",
        "lastModifiedOn",
        "instructions",
        "minRequiredApprovers",
        "blockedApprovers",
        "executionOrder",
        "pipeline",
        "_links",
    ):
        assert key in approval, key
    assert [s["assignedApprover"]["uniqueName"] for s in approval["steps"]] == [
        "alice@example.com",
        "bob@example.com",
    ]
    assert approval["pipeline"]["owner"]["id"] in {r.id for r in runs}
    assert approval["pipeline"]["id"] == str(pipe.id)
    assert approval["pipeline"]["name"] == pipe.name
    assert approval["executionOrder"] == "anyOrder"
    ids = [a["id"] for a in expanded["value"]]
    chosen = ado.ok("GET", "pipelines/approvals", params={"approvalIds": ",".join(ids[:2])})
    assert {a["id"] for a in chosen["value"]} == set(ids[:2])
    mine = ado.ok("GET", "pipelines/approvals", params={"userIds": "bob@example.com"})
    assert mine["count"] == 3
    assert ado.ok("GET", "pipelines/approvals", params={"state": "approved"})["count"] == 0
    one = ado.ok("GET", f"pipelines/approvals/{ids[0]}", params={"$expand": "steps,permissions"})
    assert one["id"] == ids[0] and one["steps"] and one["permissions"] == "view, update"
    assert ado.get("pipelines/approvals/00000000-0000-0000-0000-000000000000").status_code == 404
    assert ado.get("pipelines/approvals", params={"state": "bogus"}).status_code == 400


def test_approvals_paging_with_top_and_continuation_token(sim, ado):
    pipe = release(sim)
    for _ in range(10):
        sim.queue_run(pipe)
    sim.advance(120)
    pages = follow(ado, "pipelines/approvals", 1, top_param="top", state="pending")
    assert len(pages) == 10
    assert len({a["id"] for page in pages for a in page}) == 10


def test_approving_moves_the_run_through_qa_and_prod(sim, ado):
    pipe = release(sim)
    run = sim.queue_run(pipe)
    sim.advance(120)
    qa = pending_approval(ado, run.id)
    assert stage_of(ado, run.id, "Deploy_QA")["state"] == "inProgress"
    patched = ado.ok(
        "PATCH",
        "pipelines/approvals",
        json=[{"approvalId": qa["id"], "status": "approved", "comment": "QA ok"}],
    )
    assert patched["count"] == 1
    step = patched["value"][0]["steps"][0]
    assert patched["value"][0]["status"] == "approved"
    assert step["status"] == "approved"
    assert step["actualApprover"]["uniqueName"] == PAT_USER
    assert step["lastModifiedBy"]["uniqueName"] == PAT_USER
    assert step["comment"] == "QA ok"
    timeline = ado.ok("GET", f"build/builds/{run.id}/timeline")["records"]
    approval_record = next(r for r in timeline if r["id"] == qa["id"])
    assert approval_record["state"] == "completed" and approval_record["result"] == "succeeded"

    sim.advance(180)
    assert stage_of(ado, run.id, "Deploy_QA")["result"] == "succeeded"
    prod = pending_approval(ado, run.id)
    assert prod["id"] != qa["id"]
    ado.ok(
        "PATCH",
        "pipelines/approvals",
        json=[{"approvalId": prod["id"], "status": "approved", "comment": ""}],
    )
    sim.advance(180)
    done = ado.ok("GET", f"pipelines/{pipe.id}/runs/{run.id}")
    assert (done["state"], done["result"]) == ("completed", "succeeded")
    assert ado.ok("GET", f"build/builds/{run.id}")["result"] == "succeeded"


def test_rejecting_fails_the_stage_and_the_run(sim, ado, receiver):
    sim.add_subscription(
        receiver.url, username="hook", password="s3cret", event_types=[STAGE_EVENT]
    )
    pipe = release(sim)
    run = sim.queue_run(pipe)
    sim.advance(120)
    qa = pending_approval(ado, run.id)
    ado.ok(
        "PATCH",
        "pipelines/approvals",
        json=[{"approvalId": qa["id"], "status": "rejected", "comment": "no"}],
    )
    assert ado.ok("GET", f"pipelines/approvals/{qa['id']}")["status"] == "rejected"
    qa_stage = stage_of(ado, run.id, "Deploy_QA")
    assert (qa_stage["state"], qa_stage["result"]) == ("completed", "failed")
    prod_stage = stage_of(ado, run.id, "Deploy_PROD")
    assert (prod_stage["state"], prod_stage["result"]) == ("completed", "skipped")
    done = ado.ok("GET", f"pipelines/{pipe.id}/runs/{run.id}")
    assert (done["state"], done["result"]) == ("completed", "failed")
    assert ado.ok("GET", f"build/builds/{run.id}")["result"] == "failed"
    assert sim.wait_for_deliveries()
    stage_results = [
        (
            b["resource"]["stage"]["name"],
            b["resource"]["stage"]["state"],
            b["resource"]["stage"]["result"],
        )
        for b in receiver.bodies(STAGE_EVENT)
    ]
    assert ("Deploy_QA", "completed", "rejected") in stage_results


def test_patching_a_completed_approval_is_an_error_and_changes_nothing(sim, ado):
    run = sim.queue_run(release(sim))
    sim.advance(120)
    qa = pending_approval(ado, run.id)
    ado.ok("PATCH", "pipelines/approvals", json=[{"approvalId": qa["id"], "status": "approved"}])
    again = ado.patch("pipelines/approvals", json=[{"approvalId": qa["id"], "status": "rejected"}])
    assert again.status_code == 400
    assert set(again.json()) == ERROR_KEYS
    assert ado.ok("GET", f"pipelines/approvals/{qa['id']}")["status"] == "approved"
    assert ado.patch("pipelines/approvals", json={"approvalId": qa["id"]}).status_code == 400
    assert (
        ado.patch(
            "pipelines/approvals", json=[{"approvalId": qa["id"], "status": "maybe"}]
        ).status_code
        == 400
    )
    unknown = ado.patch(
        "pipelines/approvals",
        json=[{"approvalId": "00000000-0000-0000-0000-000000000009", "status": "approved"}],
    )
    assert unknown.status_code == 404


def test_two_approvers_needed(sim, ado):
    pipe = release(
        sim,
        min_required_approvers=2,
        approvers={"Deploy_QA": ["alice@example.com", "bob@example.com"]},
    )
    run = sim.queue_run(pipe)
    sim.advance(120)
    qa = pending_approval(ado, run.id)
    alice = Ado(
        sim, auth="Bearer " + make_jwt({"oid": "a1", "upn": "alice@example.com", "name": "Alice"})
    )
    bob = Ado(
        sim, auth="Bearer " + make_jwt({"oid": "b2", "upn": "bob@example.com", "name": "Bob"})
    )
    first = alice.ok(
        "PATCH", "pipelines/approvals", json=[{"approvalId": qa["id"], "status": "approved"}]
    )
    assert first["value"][0]["status"] == "pending"
    assert (
        alice.patch(
            "pipelines/approvals", json=[{"approvalId": qa["id"], "status": "approved"}]
        ).status_code
        == 400
    )
    second = bob.ok(
        "PATCH", "pipelines/approvals", json=[{"approvalId": qa["id"], "status": "approved"}]
    )
    assert second["value"][0]["status"] == "approved"
    approvers = {s["actualApprover"]["uniqueName"] for s in second["value"][0]["steps"]}
    assert approvers == {"alice@example.com", "bob@example.com"}


def test_identity_recorded_for_basic_and_bearer(sim, ado):
    pipe = release(sim)
    runs = [sim.queue_run(pipe), sim.queue_run(pipe)]
    sim.advance(120)
    first, second = (pending_approval(ado, r.id) for r in runs)
    ado.ok("PATCH", "pipelines/approvals", json=[{"approvalId": first["id"], "status": "approved"}])
    claims = {
        "oid": "6f1e2d3c-0000-4000-8000-00000000a11c",
        "upn": "alice@example.com",
        "name": "Alice Approver",
        "tid": "tenant",
        "exp": int(time.time()) + 3600,
    }
    user = Ado(sim, auth="Bearer " + make_jwt(claims))
    user.ok(
        "PATCH", "pipelines/approvals", json=[{"approvalId": second["id"], "status": "approved"}]
    )

    log = sim.patch_log
    assert [e["scheme"] for e in log] == ["Basic", "Bearer"]
    assert log[0]["identity"]["uniqueName"] == PAT_USER
    assert log[1]["identity"] == {
        "id": claims["oid"],
        "displayName": "Alice Approver",
        "uniqueName": "alice@example.com",
    }
    assert log[1]["claims"]["upn"] == "alice@example.com"
    assert log[1]["body"] == [{"approvalId": second["id"], "status": "approved"}]
    assert [e["status"] for e in log] == [200, 200]
    got = ado.ok("GET", f"pipelines/approvals/{second['id']}", params={"$expand": "steps"})
    assert got["steps"][0]["actualApprover"]["id"] == claims["oid"]
    assert got["steps"][0]["actualApprover"]["displayName"] == "Alice Approver"
    over_http = requests.get(sim.url + "/_simulator/patch-log", timeout=5).json()
    assert [e["identity"]["uniqueName"] for e in over_http] == [PAT_USER, "alice@example.com"]


def test_connection_data_names_the_identity_of_the_pat_or_token(sim, ado):
    """``GET {org}/_apis/connectionData`` answers who the credentials belong to, as ADO
    does: ``authenticatedUser`` with ``providerDisplayName``, ``id`` and the account name in
    ``properties.Account.$value``; preview api-versions or none, a GA one is refused."""
    service = sim.add_pat("service-pat", "svc-mlops@contoso.test", "MLOps Portal Service")
    data = Ado(sim, auth=("", "service-pat")).ok(
        "GET", "connectionData", org=True, version="7.1-preview.1"
    )
    who = data["authenticatedUser"]
    assert who["providerDisplayName"] == "MLOps Portal Service"
    assert who["id"] == service.id
    assert who["properties"]["Account"]["$value"] == "svc-mlops@contoso.test"
    assert data["authorizedUser"]["id"] == service.id and data["instanceId"]

    unversioned = ado.ok("GET", "connectionData", org=True, version=None)
    assert unversioned["authenticatedUser"]["properties"]["Account"]["$value"] == PAT_USER
    token = make_jwt({"oid": "6f1e2d3c-0000-4000-8000-0000000000b0", "upn": "bo@example.com"})
    bearer = Ado(sim, auth=f"Bearer {token}").ok("GET", "connectionData", org=True, version=None)
    assert bearer["authenticatedUser"]["id"] == "6f1e2d3c-0000-4000-8000-0000000000b0"
    assert ado.get("connectionData", org=True, version="7.1").status_code == 400
    assert ado.get("connectionData", org=True, version=None, auth=("", "nope")).status_code == 401


def test_approval_times_out(sim, ado):
    pipe = release(sim, approval_timeout_minutes=60)
    run = sim.queue_run(pipe)
    sim.advance(120)
    qa = pending_approval(ado, run.id)
    sim.advance(59 * 60)
    assert ado.ok("GET", f"pipelines/approvals/{qa['id']}")["status"] == "pending"
    sim.advance(60)
    assert ado.ok("GET", f"pipelines/approvals/{qa['id']}")["status"] == "timedOut"
    assert stage_of(ado, run.id, "Deploy_QA")["result"] == "skipped"
    run_json = ado.ok("GET", f"pipelines/{pipe.id}/runs/{run.id}")
    assert (run_json["state"], run_json["result"]) == ("completed", "failed")
    late = ado.patch("pipelines/approvals", json=[{"approvalId": qa["id"], "status": "approved"}])
    assert late.status_code == 400


def test_scripted_time_out_and_failure(sim, ado):
    pipe = release(sim)
    timed_out = sim.queue_run(pipe, time_out_stage="QA")
    failing = sim.queue_run(pipe, fail_stage="Build")
    scripted = sim.queue_run(
        pipe,
        decisions={
            "Deploy_QA": Decision(600, "approved", Identity.user("alice@example.com")),
            "Deploy_PROD": Decision(60, "rejected", Identity.user("paul@example.com"), "not now"),
        },
    )
    sim.advance(3600)
    assert sim.run(timed_out.id).result == "failed"
    assert sim.run(timed_out.id).stage("QA").approval.status == "timedOut"
    build_stage = stage_of(ado, failing.id, "Build")
    assert build_stage["result"] == "failed"
    job = next(
        r
        for r in ado.ok("GET", f"build/builds/{failing.id}/timeline")["records"]
        if r["type"] == "Job" and r["identifier"].startswith("Build.")
    )
    assert job["result"] == "failed" and job["issues"]
    assert stage_of(ado, failing.id, "Deploy_QA")["result"] == "skipped"
    assert ado.ok("GET", "pipelines/approvals", params={"approvalIds": ""})["count"] >= 3
    done = sim.run(scripted.id)
    assert done.result == "failed"
    assert done.stage("QA").approval.steps[0].actual.unique_name == "alice@example.com"
    assert done.stage("PROD").approval.status == "rejected"
    assert done.stage("PROD").approval.steps[0].comment == "not now"


def test_cancel_run(sim, ado):
    pipe = release(sim)
    run = sim.queue_run(pipe)
    sim.advance(120)
    sim.cancel_run(run.id)
    got = ado.ok("GET", f"pipelines/{pipe.id}/runs/{run.id}")
    assert (got["state"], got["result"]) == ("completed", "canceled")
    assert sim.run(run.id).stage("QA").approval.status == "canceled"


# ==== faults and throttling ======================================================================


def test_429_with_retry_after_then_success(sim, ado):
    sim.throttle_next(2, retry_after=2)
    for _ in range(2):
        response = ado.get("pipelines")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"
        for header in (
            "X-RateLimit-Resource",
            "X-RateLimit-Delay",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ):
            assert header in response.headers
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())
        body = response.json()
        assert body["typeKey"] == "RequestBlockedException"
        assert body["message"].startswith("TF400733")
    assert ado.get("pipelines").status_code == 200


def test_500_then_success_and_per_path_faults(sim, ado):
    pipe = release(sim)
    sim.fail_next(1, 500)
    failed = ado.get("pipelines")
    assert failed.status_code == 500
    assert set(failed.json()) == ERROR_KEYS
    assert ado.get("pipelines").status_code == 200
    sim.fail_next(2, 500, path="/pipelines/approvals", method="PATCH")
    assert ado.get("pipelines/approvals").status_code == 200
    assert ado.patch("pipelines/approvals", json=[]).status_code == 500
    assert ado.get(f"pipelines/{pipe.id}").status_code == 200
    assert ado.patch("pipelines/approvals", json=[]).status_code == 500
    assert ado.patch("pipelines/approvals", json=[]).status_code == 400  # the fault is used up
    sim.fail_next(1, 503)
    unavailable = ado.get("pipelines")
    assert unavailable.status_code == 503 and "Retry-After" in unavailable.headers


def test_rate_budget_sends_headers_when_low_then_blocks(sim, ado):
    sim.set_rate_limit(limit=5, window=60, warn_below=2)
    statuses, remaining = [], []
    for _ in range(7):
        response = ado.get("pipelines")
        statuses.append(response.status_code)
        remaining.append(response.headers.get("X-RateLimit-Remaining"))
    assert statuses == [200, 200, 200, 200, 200, 429, 429]
    assert remaining[:3] == [None, None, "2"]
    assert remaining[3:5] == ["1", "0"]
    blocked = ado.get("pipelines")
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    other = Ado(sim, auth="Bearer " + make_jwt({"oid": "x", "upn": "other@example.com"}))
    assert other.get("pipelines").status_code == 200  # the budget is per identity
    sim.clear_rate_limit()
    assert ado.get("pipelines").status_code == 200


def test_down_503_and_refusing_connections(sim, ado):
    sim.create_pipeline("p", "ci")
    sim.go_down("503")
    assert ado.get("pipelines").status_code == 503
    sim.come_up()
    assert ado.get("pipelines").status_code == 200
    port = sim.port
    sim.go_down("refuse")
    with pytest.raises(requests.ConnectionError):
        Ado(sim).get("pipelines")
    with pytest.raises(requests.ConnectionError):
        ado.get("pipelines")  # pooled keep-alive connections are dropped too
    sim.come_up()
    assert sim.port == port
    assert ado.get("pipelines").json()["count"] == 1  # state survives the outage


def test_down_for_some_seconds_through_the_control_api(sim, ado):
    response = requests.post(
        sim.url + "/_simulator/down", json={"mode": "refuse", "seconds": 1.5}, timeout=5
    )
    assert response.status_code == 200
    time.sleep(0.5)
    with pytest.raises(requests.ConnectionError):
        Ado(sim).get("pipelines")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if Ado(sim).get("pipelines").status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        pytest.fail("the simulator did not come back up")


# ==== service hooks ==============================================================================


def test_service_hook_deliveries_with_basic_auth_and_envelope(sim, ado, receiver):
    sub = sim.add_subscription(receiver.url, username="ado-hook", password="hook-secret")
    pipe = release(sim)
    run = sim.queue_run(pipe)
    sim.advance(120)
    qa = pending_approval(ado, run.id)
    ado.ok("PATCH", "pipelines/approvals", json=[{"approvalId": qa["id"], "status": "approved"}])
    sim.advance(180)
    prod = pending_approval(ado, run.id)
    ado.ok("PATCH", "pipelines/approvals", json=[{"approvalId": prod["id"], "status": "approved"}])
    sim.advance(180)
    assert sim.wait_for_deliveries()
    requests_seen = receiver.requests
    expected_auth = "Basic " + base64.b64encode(b"ado-hook:hook-secret").decode()
    assert requests_seen and all(
        r["headers"]["authorization"] == expected_auth for r in requests_seen
    )
    assert all(r["path"] == "/ado/hooks/" for r in requests_seen)
    assert all(r["headers"]["content-type"].startswith("application/json") for r in requests_seen)
    bodies = [r["body"] for r in requests_seen]
    envelope_keys = {
        "subscriptionId",
        "notificationId",
        "id",
        "eventType",
        "publisherId",
        "message",
        "detailedMessage",
        "resource",
        "resourceVersion",
        "resourceContainers",
        "createdDate",
    }
    assert all(envelope_keys <= set(b) for b in bodies)
    assert all(b["subscriptionId"] == sub.id for b in bodies)
    ids = [b["notificationId"] for b in bodies]
    assert len(set(ids)) == len(ids) and all(isinstance(i, int) for i in ids)
    assert len({b["id"] for b in bodies}) == len(bodies)
    types = [b["eventType"] for b in bodies]
    assert set(types) == set(EVENT_TYPES)
    assert types[0] == RUN_EVENT and types[-2:] == [RUN_EVENT, BUILD_COMPLETE]
    assert types.count(APPROVAL_PENDING) == 2 and types.count(APPROVAL_COMPLETED) == 2
    run_events = [b for b in bodies if b["eventType"] == RUN_EVENT]
    assert [e["resource"]["run"]["state"] for e in run_events] == ["inProgress", "completed"]
    assert run_events[-1]["resource"]["run"]["result"] == "succeeded"
    assert run_events[-1]["publisherId"] == "pipelines"
    assert run_events[-1]["resourceVersion"] == "5.1-preview.1"
    stage_events = [
        (b["resource"]["stage"]["name"], b["resource"]["stage"]["state"])
        for b in bodies
        if b["eventType"] == STAGE_EVENT
    ]
    assert stage_events == [
        ("Build", "running"),
        ("Build", "completed"),
        ("Deploy_QA", "waiting"),
        ("Deploy_QA", "running"),
        ("Deploy_QA", "completed"),
        ("Deploy_PROD", "waiting"),
        ("Deploy_PROD", "running"),
        ("Deploy_PROD", "completed"),
    ]
    pending = next(b for b in bodies if b["eventType"] == APPROVAL_PENDING)
    assert pending["resource"]["approval"]["id"] == qa["id"]
    assert pending["resource"]["run"] is None  # as the ADO docs sample: re-read over REST
    assert pending["message"]["text"].startswith("Approval pending for deployment of pipeline")
    completed = next(b for b in bodies if b["eventType"] == BUILD_COMPLETE)
    assert completed["publisherId"] == "tfs"
    assert completed["resource"]["id"] == run.id and completed["resource"]["result"] == "succeeded"
    log = sim.deliveries()
    assert [d.notification_id for d in log] == ids
    assert all(d.status == "succeeded" and len(d.attempts) == 1 for d in log)


def test_full_approval_events_and_filters(sim, ado, receiver):
    sim.add_subscription(
        receiver.url,
        event_types=[APPROVAL_PENDING, RUN_EVENT],
        approval_event_detail="full",
        publisher_inputs={"runStateId": "Completed", "stageName": "Deploy_PROD"},
    )
    pipe = release(sim)
    run = sim.queue_run(pipe, decisions={"Deploy_QA": "approved", "Deploy_PROD": "approved"})
    sim.advance(3600)
    assert sim.wait_for_deliveries()
    bodies = receiver.bodies()
    assert [b["eventType"] for b in bodies] == [APPROVAL_PENDING, RUN_EVENT]
    pending = bodies[0]["resource"]
    assert pending["stageName"] == "Deploy_PROD"
    assert pending["run"]["id"] == run.id
    assert pending["resource"] == {**pending["resource"], "type": "environment", "name": "PROD"}
    assert bodies[1]["resource"]["run"]["state"] == "completed"


def test_subscription_through_the_ado_rest_api(sim, ado, receiver):
    pipe_a, pipe_b = release(sim, "a"), release(sim, "b")
    body = {
        "publisherId": "pipelines",
        "eventType": RUN_EVENT,
        "resourceVersion": "5.1-preview.1",
        "consumerId": "webHooks",
        "consumerActionId": "httpRequest",
        "publisherInputs": {
            "projectId": sim.default_project.id,
            "pipelineId": str(pipe_b.id),
            "runStateId": "Completed",
        },
        "consumerInputs": {
            "url": receiver.url,
            "basicAuthUsername": "ado-hook",
            "basicAuthPassword": "pw",
            "httpHeaders": "X-Portal-Hook-Token:tok",
        },
    }
    created = ado.ok("POST", "hooks/subscriptions", org=True, json=body)
    assert created["consumerInputs"]["basicAuthPassword"] == "********"
    assert created["status"] == "enabled"
    assert ado.ok("GET", f"hooks/subscriptions/{created['id']}", org=True)["id"] == created["id"]
    assert ado.ok("GET", "hooks/subscriptions", org=True)["count"] == 1
    for pipe in (pipe_a, pipe_b):
        sim.queue_run(pipe, decisions={"QA": "approved", "PROD": "approved"})
    sim.advance(3600)
    assert sim.wait_for_deliveries()
    bodies = receiver.bodies()
    assert len(bodies) == 1
    assert bodies[0]["resource"]["pipeline"]["id"] == pipe_b.id
    assert receiver.requests[0]["headers"]["x-portal-hook-token"] == "tok"
    bad = ado.post("hooks/subscriptions", org=True, json={**body, "eventType": "git.push"})
    assert bad.status_code == 400
    assert (
        ado.request("DELETE", f"hooks/subscriptions/{created['id']}", org=True).status_code == 204
    )
    assert ado.get(f"hooks/subscriptions/{created['id']}", org=True).status_code == 404


def test_failed_delivery_is_retried_once(sim, receiver):
    sim.add_subscription(receiver.url, event_types=[RUN_EVENT])
    receiver.statuses = [500, 500, 503]
    pipe = sim.create_pipeline("p", "ci")
    sim.queue_run(pipe)  # run started: 500, then 500 on the retry -> failed
    assert sim.wait_for_deliveries()
    sim.advance(3600)  # run completed: 503, then 200 on the retry
    assert sim.wait_for_deliveries()
    first, second = sim.deliveries()
    assert first.status == "failed" and [a["statusCode"] for a in first.attempts] == [500, 500]
    assert second.status == "succeeded" and [a["statusCode"] for a in second.attempts] == [503, 200]


def test_probation_drops_deliveries_and_redelivery_repeats_one(sim, receiver):
    sub = sim.add_subscription(receiver.url, event_types=[RUN_EVENT])
    pipe = sim.create_pipeline("p", "ci")
    sim.set_probation(sub.id)
    sim.queue_run(pipe)
    sim.advance(3600)
    assert sim.wait_for_deliveries()
    assert receiver.requests == []
    assert [d.status for d in sim.deliveries()] == ["dropped", "dropped"]
    sim.set_probation(sub.id, on=False)
    sim.queue_run(pipe)
    assert sim.wait_for_deliveries()
    delivered = sim.deliveries()[-1]
    assert delivered.status == "succeeded"
    again = sim.redeliver(delivered.notification_id)
    assert sim.wait_for_deliveries()
    assert again.status == "succeeded"
    first, second = receiver.bodies()
    assert first == second  # same event id and notification id


def test_unreachable_subscriber_fails_and_auto_probation(receiver):
    receiver.stop()
    with AdoSimulator(
        start=None, hook_retry_delay=0.01, hook_timeout=1, auto_probation=True
    ) as sim:
        sub = sim.add_subscription(receiver.url, event_types=[RUN_EVENT])
        sim.queue_run(sim.create_pipeline("p", "ci"))
        assert sim.wait_for_deliveries()
        delivery = sim.deliveries()[0]
        assert delivery.status == "failed" and "error" in delivery.attempts[0]
        assert sub.status == "onProbation"


# ==== control API ================================================================================


def test_control_api_drives_a_whole_story(sim, receiver):
    control = sim.url + "/_simulator"

    def call(method, path, **kw):
        response = requests.request(method, control + path, timeout=10, **kw)
        assert response.status_code == 200, response.text
        assert response.headers["X-ADO-Simulator"] == "true"
        return response.json()

    pipe = call(
        "POST",
        "/pipelines",
        json={
            "name": "growth-churn-predictor-release",
            "kind": "release",
            "folder": "\\growth\\churn-predictor",
            "model": "churn-predictor",
        },
    )
    assert pipe["simulator"]["model"] == "churn-predictor"
    assert [s["identifier"] for s in pipe["simulator"]["stages"]] == [
        "Build",
        "Deploy_QA",
        "Deploy_PROD",
    ]
    call(
        "POST",
        "/subscriptions",
        json={
            "url": receiver.url,
            "username": "u",
            "password": "p",
            "eventTypes": [APPROVAL_PENDING],
        },
    )
    run = call(
        "POST",
        "/runs",
        json={"pipelineId": pipe["id"], "templateParameters": {"modelVersion": "3"}},
    )
    assert run["state"] == "inProgress"
    clock = call("POST", "/clock/advance", json={"seconds": 120})
    assert clock["now"].startswith("2025-03-03T09:02:00")
    approvals = call("GET", "/approvals", params={"status": "pending"})
    assert len(approvals) == 1 and approvals[0]["runId"] == run["id"]
    call(
        "POST",
        f"/approvals/{approvals[0]['id']}",
        json={"status": "approved", "approver": "alice@example.com"},
    )
    call("POST", "/clock/advance", json={"seconds": 180})
    assert call("GET", f"/runs/{run['id']}")["stages"][2]["state"] == "waiting"
    assert call("POST", "/deliveries/wait", json={"timeout": 5})["idle"] is True
    deliveries = call("GET", "/deliveries")
    assert [d["eventType"] for d in deliveries] == [APPROVAL_PENDING, APPROVAL_PENDING]
    assert call("GET", "/deliveries", params={"payload": "0"})[0].get("payload") is None
    redelivered = call("POST", f"/deliveries/{deliveries[0]['notificationId']}/redeliver")
    assert redelivered["notificationId"] == deliveries[0]["notificationId"]

    call("POST", "/faults", json={"status": 429, "count": 1, "retryAfter": 3})
    assert call("GET", "/faults")[0]["status"] == 429
    ado = Ado(sim)
    throttled = ado.get("pipelines")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    call("POST", "/pats", json={"pat": "second-pat", "uniqueName": "svc2@example.com"})
    assert Ado(sim, auth=("", "second-pat")).get("pipelines").status_code == 200
    call("POST", "/rate-limit", json={"limit": 1, "window": 60})
    second = Ado(sim, auth=("", "second-pat"))
    assert [second.get("pipelines").status_code for _ in range(2)] == [200, 429]
    call("DELETE", "/rate-limit")
    call("POST", "/down", json={"mode": "503"})
    assert ado.get("pipelines").status_code == 503
    call("POST", "/up")
    assert ado.get("pipelines").status_code == 200
    requests_seen = call("GET", "/requests")
    assert requests_seen["count"] == len(requests_seen["requests"]) == sim.request_count
    assert call("GET", "/patch-log") == []
    state = call("GET", "/")
    assert state["pipelines"] == 1 and state["runs"]["total"] == 1
    assert call("GET", "/clock")["speed"] == 0.0
    call("POST", "/reset")
    assert call("GET", "/")["pipelines"] == 0
    bad = requests.post(control + "/runs", json={"pipelineId": 1}, timeout=5)
    assert bad.status_code == 404
    assert requests.get(control + "/nope", timeout=5).status_code == 404
    assert requests.post(control + "/down", json={"mode": "refuse"}, timeout=5).status_code == 400


def test_control_api_seed_demo(sim, ado):
    response = requests.post(sim.url + "/_simulator/seed", json={"name": "demo"}, timeout=30)
    assert response.status_code == 200
    assert response.json()["pipelines"] == 40
    assert ado.ok("GET", "pipelines", params={"$top": 100})["count"] == 40
    pending = ado.ok("GET", "pipelines/approvals", params={"state": "pending"})
    assert pending["count"] == 3
    assert sim.summary()["runs"]["failed"] == 3


def test_real_time_speed_moves_runs(sim, ado):
    pipe = sim.create_pipeline("p", "ci", stage_seconds=30)
    run = sim.queue_run(pipe)
    sim.set_speed(600)  # 60 simulated seconds take 0.1 s
    deadline = time.monotonic() + 5
    while sim.run(run.id).state != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ado.ok("GET", f"build/builds/{run.id}")["result"] == "succeeded"


def test_remote_simulator_client(sim, receiver):
    remote = RemoteSimulator(sim.url)
    pipe = remote.create_pipeline("p", "release", model="m", stage_seconds={"Build": 10})
    remote.add_subscription(
        receiver.url, event_types=[APPROVAL_COMPLETED], approval_event_detail="full"
    )
    run = remote.queue_run(
        pipe["id"],
        decisions={
            "Deploy_QA": {"seconds": 30, "status": "approved", "approver": "alice@example.com"}
        },
        fail_stage="Deploy_QA",
    )
    remote.advance(10 + 30 + 180)
    assert remote.run(run["id"])["result"] == "failed"
    assert remote.wait_for_deliveries()
    [event] = remote.deliveries(APPROVAL_COMPLETED)
    step = event["payload"]["resource"]["approval"]["steps"][0]
    assert step["actualApprover"]["uniqueName"] == "alice@example.com"
    remote.throttle_next(1, retry_after=4)
    assert Ado(sim).get("pipelines").headers["Retry-After"] == "4"
    assert remote.summary()["runs"]["failed"] == 1
    with pytest.raises(ControlError) as error:
        remote.queue_run(999)
    assert error.value.status == 404


def test_the_azure_devops_sdk_works_against_the_simulator(sim, monkeypatch):
    """The SDK resolves routes with OPTIONS {org}/_apis and the build area with ResourceAreas."""
    import azure.devops.client
    import azure.devops.connection
    from azure.devops.connection import Connection
    from azure.devops.v7_1.pipelines.models import RunPipelineParameters
    from msrest.authentication import BasicAuthentication

    # Keep the SDK's disk caches (keyed by URL) out of it.
    options_cache = collections.defaultdict(lambda: None)
    monkeypatch.setattr(azure.devops.client, "OPTIONS_FILE_CACHE", options_cache)
    monkeypatch.setattr(
        azure.devops.connection, "RESOURCE_FILE_CACHE", collections.defaultdict(lambda: None)
    )
    pipe = release(sim)
    connection = Connection(base_url=sim.org_url, creds=BasicAuthentication("", PAT))
    pipelines_client = connection.clients_v7_1.get_pipelines_client()
    assert [p.name for p in pipelines_client.list_pipelines("MLOps")] == [pipe.name]
    run = pipelines_client.run_pipeline(
        RunPipelineParameters(template_parameters={"modelName": "fraud-detector"}), "MLOps", pipe.id
    )
    assert (run.state, run.pipeline.id) == ("inProgress", pipe.id)
    sim.advance(130)
    assert [r.id for r in pipelines_client.list_runs("MLOps", pipe.id)] == [run.id]
    build_client = connection.clients_v7_1.get_build_client()
    assert build_client.get_build("MLOps", run.id).requested_for.unique_name == PAT_USER
    assert [b.id for b in build_client.get_builds("MLOps", definitions=[pipe.id], top=5)] == [
        run.id
    ]
    records = build_client.get_build_timeline("MLOps", run.id).records
    assert "Checkpoint.Approval" in {r.type for r in records}


# ==== standalone =================================================================================


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the simulator exited early with {process.returncode}")
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            time.sleep(0.2)
    pytest.fail("the simulator did not start")


@pytest.mark.parametrize(
    "command",
    [
        ["manage.py", "run_ado_simulator", "--seed", "demo", "--speed", "60"],
        ["-m", "ado_simulator"],
    ],
    ids=["manage.py", "python -m"],
)
def test_standalone_process_started_and_stopped_by_pid(command, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "simulator.log"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                *command,
                "--port",
                str(port),
                "--pat",
                "standalone-pat=svc@example.com",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        home = wait_until_up(f"http://127.0.0.1:{port}/", process)
        assert home.status_code == 200
        assert home.headers["X-ADO-Simulator"] == "true"
        assert "not Azure DevOps" in home.text
        response = requests.get(
            f"http://127.0.0.1:{port}/simorg/MLOps/_apis/pipelines",
            params={"api-version": "7.1"},
            auth=("", "standalone-pat"),
            timeout=5,
        )
        assert response.status_code == 200
        if "--seed" in command:
            assert response.json()["count"] == 40
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    output = log_path.read_text()
    assert process.returncode == 0, output
    simulator_lines = [line for line in output.splitlines() if "[ADO simulator]" in line]
    assert any("listening on" in line for line in simulator_lines), output
    assert any("stopped" in line for line in simulator_lines), output


def test_the_package_imports_no_django():
    code = (
        "import sys, ado_simulator, ado_simulator.cli, ado_simulator.seed;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
