"""The ADO project admin: "Sync now" and "Test connection", against the ADO simulator."""

import socket
import time

import pytest
from django.urls import reverse

from core.roles import Role
from pipelines.models import AdoProject, Pipeline
from tests.ado_simulator.conftest import PAT

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:pipelines_adoproject_changelist")


@pytest.fixture
def admin_client(client, make_user, settings):
    settings.AZURE_DEVOPS_PAT = PAT
    client.force_login(make_user(Role.ADMIN, is_staff=True, is_superuser=True))
    return client


def _project(url, name="mlops", project="MLOps", **fields):
    return AdoProject.objects.create(name=name, organization_url=url, project=project, **fields)


def _act(client, action, *projects):
    response = client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [p.pk for p in projects]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(m) for m in response.context["messages"]]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_test_connection_reads_the_project(admin_client, sim):
    project = _project(sim.org_url)
    [message] = _act(admin_client, "test_connection", project)
    assert message.startswith("mlops: connected (project MLOps answered in ")
    # and whom the credentials are in ADO, recorded for the approval pages
    assert message.endswith(", as portal-service@example.com).")
    project.refresh_from_db()
    assert project.service_identity == "portal-service@example.com"


def test_test_connection_still_connects_when_the_identity_cannot_be_read(admin_client, sim):
    project = _project(sim.org_url, service_identity="Known Service")
    sim.fail_next(1, 403, path="connectionData")
    [message] = _act(admin_client, "test_connection", project)
    assert message.startswith("mlops: connected (") and " as " not in message
    project.refresh_from_db()
    assert project.service_identity == "Known Service"


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("wrong PAT", "(HTTP 401)"),
        ("unknown project", "(HTTP 404)"),
        ("no credentials", "No Azure DevOps credentials: set AZURE_DEVOPS_PAT"),
        ("down", "the connection was refused (is the server running on that port?)"),
    ],
)
def test_test_connection_gives_the_short_reason_never_a_500(
    admin_client, sim, settings, how, reason
):
    url, project = sim.org_url, "MLOps"
    if how == "wrong PAT":
        settings.AZURE_DEVOPS_PAT = "not-the-pat"
    elif how == "unknown project":
        project = "Nope"
    elif how == "no credentials":
        settings.AZURE_DEVOPS_PAT = ""
        settings.ENTRA_TENANT_ID = settings.ENTRA_CLIENT_ID = settings.ENTRA_CLIENT_SECRET = ""
    else:
        url = f"http://127.0.0.1:{_closed_port()}/contoso"
    [message] = _act(admin_client, "test_connection", _project(url, project=project))
    assert message.startswith("mlops: cannot connect: ")
    assert reason in message
    assert len(message) < 400  # a line, not a traceback


def test_sync_now_on_a_disabled_project_says_why_not(admin_client, sim):
    project = _project(sim.org_url, enabled=False)
    assert _act(admin_client, "sync_now", project) == ["mlops is disabled: enable it to sync it."]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_sync_now_queues_the_sync_and_a_worker_runs_it(celery_worker_process, sim, admin_client):
    sim.add_pat("simulator-pat", "portal-worker@example.com")  # the worker's settings' PAT
    sim.create_pipeline("risk-fraud-detector-train", "training", folder="\\risk\\fraud-detector")
    project = _project(sim.org_url, name="queued")
    [message] = _act(admin_client, "sync_now", project)
    assert message.startswith("Sync queued for ADO project queued: a worker runs it")
    deadline = time.monotonic() + 90
    # Wait for the sync's end (its bookkeeping is written after the pipelines), not its start.
    while project.last_sync_succeeded_at is None and project.last_sync_error_at is None:
        assert time.monotonic() < deadline, "the queued sync never finished"
        time.sleep(0.5)
        project.refresh_from_db()
    assert project.last_sync_error == ""
    assert project.last_sync_succeeded_at is not None
    assert Pipeline.objects.filter(project=project).exists()
