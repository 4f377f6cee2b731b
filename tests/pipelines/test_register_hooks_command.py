"""manage.py register_ado_hooks against the ADO simulator, over real HTTP through the
azure-devops SDK's ServiceHooksClient: refusals, create, update in place, and real deliveries."""

from __future__ import annotations

import base64
import io
import logging
import socket
import time

import pytest
from django.core.management import CommandError, call_command

from ado_simulator import EVENT_TYPES
from pipelines.models import AdoProject
from tests.ado_simulator.conftest import PAT

SECRET = "hook-secret-0123"
EVENTS = {
    "ms.vss-pipelines.run-state-changed-event": ("pipelines", "5.1-preview.1"),
    "ms.vss-pipelines.stage-state-changed-event": ("pipelines", "5.1-preview.1"),
    "ms.vss-pipelinechecks-events.approval-pending": ("pipelines", "5.1-preview.1"),
    "ms.vss-pipelinechecks-events.approval-completed": ("pipelines", "5.1-preview.1"),
    "build.complete": ("tfs", "1.0"),
}


@pytest.fixture
def configured(settings):
    settings.AZURE_DEVOPS_PAT = PAT
    settings.ADO_HOOK_SECRET = SECRET
    return settings


@pytest.fixture
def project(db, sim):
    return AdoProject.objects.create(name="mlops", organization_url=sim.org_url, project="MLOps")


def hook_url(receiver, name="mlops") -> str:
    return f"http://127.0.0.1:{receiver.server.server_address[1]}/pipelines/hooks/ado/{name}/"


def register(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("register_ado_hooks", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_creates_the_five_subscriptions_and_they_deliver(configured, project, sim, receiver):
    url = hook_url(receiver)
    out, err = register("--project", "mlops", "--url", url)
    assert out.count("Created ") == 5
    assert "5 service-hook subscriptions" in out
    assert "plain http" in err  # a warning, not a refusal

    subs = list(sim.subscriptions.values())
    assert len(subs) == 5
    assert {s.event_types[0]: (s.publisher_id, s.resource_version) for s in subs} == EVENTS
    assert set(EVENTS) == set(EVENT_TYPES)
    for sub in subs:
        assert (sub.url, sub.username, sub.password) == (url, "ado-hook", SECRET)
        assert sub.publisher_inputs == {"projectId": sim.default_project.id}
        assert sub.consumer_inputs["resourceDetailsToSend"] == "minimal"
        assert sub.created_by.unique_name == "portal-service@example.com"

    # Real deliveries: a release through QA and PROD, with basic auth ado-hook:<secret>.
    pipe = sim.create_pipeline("risk-fraud-detector-release", "release", model="fraud-detector")
    sim.queue_run(pipe, decisions={"Deploy_QA": "approved", "Deploy_PROD": "approved"})
    sim.advance(3600)
    assert sim.wait_for_deliveries()
    bodies = receiver.bodies()
    assert {b["eventType"] for b in bodies} == set(EVENTS)
    expected = "Basic " + base64.b64encode(f"ado-hook:{SECRET}".encode()).decode()
    assert {r["headers"]["authorization"] for r in receiver.requests} == {expected}
    assert {r["path"] for r in receiver.requests} == {"/pipelines/hooks/ado/mlops/"}


def test_a_second_run_updates_in_place_without_duplicating(configured, project, sim, receiver):
    url = hook_url(receiver)
    other = sim.add_subscription(
        "https://elsewhere.example.com/hook",
        username="x",
        password="y",
        event_types=["ms.vss-pipelinechecks-events.approval-pending"],  # a CI run has none
    )
    register("--project", "mlops", "--url", url)
    ids = {s.event_types[0]: s.id for s in sim.subscriptions.values() if s.url == url}

    configured.ADO_HOOK_SECRET = "rotated-secret"
    out, _ = register("--project", "mlops", "--url", url, "--username", "portal")
    assert out.count("Updated ") == 5 and "Created" not in out
    mine = [s for s in sim.subscriptions.values() if s.url == url]
    assert len(mine) == 5 and len(sim.subscriptions) == 6
    assert {s.event_types[0]: s.id for s in mine} == ids
    assert {(s.username, s.password) for s in mine} == {("portal", "rotated-secret")}
    assert sim.subscription(other.id).password == "y"  # another consumer's is left alone

    pipe = sim.create_pipeline("p", "ci", stage_seconds=10)
    sim.queue_run(pipe)
    sim.advance(60)
    assert sim.wait_for_deliveries()
    expected = "Basic " + base64.b64encode(b"portal:rotated-secret").decode()
    assert receiver.requests
    assert {r["headers"]["authorization"] for r in receiver.requests} == {expected}


def test_another_url_gets_its_own_subscriptions(configured, project, sim, receiver):
    register("--project", "mlops", "--url", hook_url(receiver))
    register("--project", "mlops", "--url", "https://portal.example.com/pipelines/hooks/ado/mlops/")
    assert len(sim.subscriptions) == 10


def test_duplicates_are_reported(configured, project, sim, receiver):
    url = hook_url(receiver)
    register("--project", "mlops", "--url", url)
    sim.add_subscription(url, event_types=["build.complete"], username="old", password="old")
    out, err = register("--project", "mlops", "--url", url)
    assert "2 subscriptions send build.complete" in err
    assert out.count("Updated ") == 5 and len(sim.subscriptions) == 6


def test_a_missing_secret_is_refused(configured, project, sim):
    configured.ADO_HOOK_SECRET = ""
    with pytest.raises(CommandError, match="ADO_HOOK_SECRET is not set"):
        register(
            "--project", "mlops", "--url", "https://portal.example.com/pipelines/hooks/ado/mlops/"
        )
    assert sim.request_count == 0 and not sim.subscriptions


def test_an_unknown_project_is_refused_listing_the_known_ones(configured, project, sim):
    AdoProject.objects.create(name="other", organization_url=sim.org_url, project="Other")
    with pytest.raises(CommandError, match=r"Unknown ADO project 'nope' \(known: mlops, other\)"):
        register("--project", "nope", "--url", "https://portal.example.com/")
    assert sim.request_count == 0


def test_missing_credentials_are_refused(configured, project, sim):
    configured.AZURE_DEVOPS_PAT = ""
    configured.ENTRA_TENANT_ID = configured.ENTRA_CLIENT_ID = configured.ENTRA_CLIENT_SECRET = ""
    with pytest.raises(CommandError, match="AZURE_DEVOPS_PAT"):
        register(
            "--project", "mlops", "--url", "https://portal.example.com/pipelines/hooks/ado/mlops/"
        )


def test_a_refused_pat_is_reported(configured, project, sim):
    configured.AZURE_DEVOPS_PAT = "not-a-known-pat"
    with pytest.raises(CommandError, match=r"could not be read: .*HTTP 401"):
        register(
            "--project", "mlops", "--url", "https://portal.example.com/pipelines/hooks/ado/mlops/"
        )
    assert not sim.subscriptions


def test_an_unreachable_organization_is_reported_quickly(configured, db):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    AdoProject.objects.create(
        name="gone", organization_url=f"http://127.0.0.1:{closed}/org", project="p"
    )
    started = time.monotonic()
    with pytest.raises(CommandError, match="could not be read"):
        register(
            "--project", "gone", "--url", "https://portal.example.com/pipelines/hooks/ado/gone/"
        )
    assert time.monotonic() - started < 10


def test_a_bad_url_is_refused_and_an_odd_path_warned(configured, project, sim, receiver):
    with pytest.raises(CommandError, match="absolute http"):
        register("--project", "mlops", "--url", "portal.example.com/hooks")
    _, err = register("--project", "mlops", "--url", receiver.url)
    assert "does not end with /hooks/ado/mlops/" in err


def test_the_secret_is_not_logged_even_at_debug(configured, project, sim, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    register("--project", "mlops", "--url", hook_url(receiver))
    assert len(sim.subscriptions) == 5
    assert SECRET not in caplog.text and PAT not in caplog.text


def test_the_simulator_answers_the_two_calls_the_command_needs(configured, project, sim):
    """GET {org}/_apis/projects/{name} and PUT .../hooks/subscriptions/{id}, as ADO has them."""
    import requests

    session = requests.Session()
    session.auth = ("", PAT)
    got = session.get(f"{sim.org_url}/_apis/projects/MLOps?api-version=7.1", timeout=5)
    assert got.status_code == 200
    assert got.json()["id"] == sim.default_project.id and got.json()["name"] == "MLOps"
    by_id = session.get(f"{sim.org_url}/_apis/projects/{sim.default_project.id}?api-version=7.1")
    assert by_id.json()["name"] == "MLOps"
    missing = session.get(f"{sim.org_url}/_apis/projects/Nope?api-version=7.1", timeout=5)
    assert missing.status_code == 404 and missing.json()["message"].startswith("TF200016")

    sub = sim.add_subscription("https://a.example.com/", username="u", password="p")
    body = {
        "publisherId": "tfs",
        "eventType": "build.complete",
        "resourceVersion": "1.0",
        "consumerId": "webHooks",
        "consumerActionId": "httpRequest",
        "publisherInputs": {"projectId": sim.default_project.id},
        "consumerInputs": {
            "url": "https://b.example.com/",
            "basicAuthUsername": "u2",
            "basicAuthPassword": "********",
        },
    }
    url = f"{sim.org_url}/_apis/hooks/subscriptions/{sub.id}?api-version=7.1"
    replaced = session.put(url, json=body, timeout=5)
    assert replaced.status_code == 200 and replaced.json()["id"] == sub.id
    assert (sub.url, sub.username, sub.password) == ("https://b.example.com/", "u2", "p")
    assert sub.event_types == ("build.complete",) and sub.publisher_id == "tfs"
    assert len(sim.subscriptions) == 1
