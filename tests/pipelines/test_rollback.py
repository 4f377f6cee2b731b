# ruff: noqa: F811 - the approvals fixtures, imported, are the arguments of the tests below
"""Rollback: a version that served before goes back through the release pipeline and its
QA / PROD approvals, marked as a rollback. Against the ADO simulator over real HTTP."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from pipelines import services
from pipelines.models import DeploymentRecord, Pipeline, PipelineKind, RunRequest
from tests.approvals.conftest import (  # noqa: F401 - pytest fixtures
    ado_client,
    fraud,
    mirror,
    project,
    release,
    sim,
    wait_at,
)
from tests.pipelines.factories import PipelineRunFactory, RunStageFactory

pytestmark = pytest.mark.django_db


def _served(catalog, version, environment="PROD", target="aks", hours_ago=48):
    """A DeploymentRecord: ``version`` started serving ``hours_ago``."""
    run = PipelineRunFactory(model_version=version)
    stage = RunStageFactory(run=run, environment=environment)
    return DeploymentRecord.objects.create(
        catalog_model=catalog,
        environment=environment,
        target=target,
        run=run,
        stage=stage,
        model_version=version,
        version_label=f"v{version.version}",
        requested_by="Dana",
        started_at=timezone.now() - dt.timedelta(hours=hours_ago),
        observed_at=timezone.now(),
    )


@pytest.fixture
def history(fraud):
    """v1 served PROD two days ago; v2 replaced it yesterday and serves now."""
    _served(fraud["catalog"], fraud["v1"], hours_ago=48)
    _served(fraud["catalog"], fraud["v2"], hours_ago=24)
    return fraud


@pytest.fixture
def synced(project, ado_client, release, history):
    """The simulator's release pipeline mirrored and linked to fraud-detector."""
    mirror(project, ado_client)
    assert Pipeline.objects.filter(
        catalog_model=history["catalog"], kind=PipelineKind.RELEASE
    ).exists()
    return history


def test_rollback_runs_in_the_simulator_and_its_qa_approval_is_marked(
    sim, project, ado_client, release, synced, role_client
):
    catalog, v1 = synced["catalog"], synced["v1"]
    client = role_client("data_scientist")
    url = reverse("pipelines:rollback-request", kwargs={"name": catalog.name})

    page = client.get(url, {"version": v1.pk})
    assert page.status_code == 200
    assert b"Roll back to" in page.content and b"What serves now" in page.content
    assert b"In the deployment history" in page.content

    response = client.post(url, {"version": v1.pk, "environment": "PROD", "reason": "v2 drifts"})
    assert response.status_code == 302
    request = RunRequest.objects.get(reason="rollback")
    assert request.rollback_to == v1 and request.rollback_of == synced["v2"]
    assert request.parameters["modelVersion"] == "1"
    assert request.parameters["deployTarget"] == "aks"
    assert request.note == "v2 drifts"

    # The outbox path the worker runs: queued in ADO exactly once.
    sent = services.run_request_send(request=request, client=ado_client)
    assert sent.status == RunRequest.Status.SENT and sent.run is not None
    run = next(r for r in sim.runs.values() if r.id == sent.run.ado_id)
    assert run.template_parameters["modelVersion"] == "1"

    approval_id = wait_at(sim, run, "QA")
    mirror(project, ado_client)
    approval = ApprovalRequest.objects.get(ado_id=approval_id)
    assert approval.environment == "QA" and approval.is_rollback

    approver = role_client("approver")
    inbox = approver.get(reverse("approvals:inbox"))
    assert b'data-testid="rollback-badge"' in inbox.content
    detail = approver.get(reverse("approvals:detail", kwargs={"pk": approval.pk}))
    text = detail.content.decode()
    assert 'data-testid="rollback-badge"' in text
    assert "replaces v2 with v1" in text and "because v2 drifts" in text

    api = approver.get(reverse("api:approvals:approval-detail", kwargs={"pk": approval.pk}))
    assert api.json()["rollback"]["replaces"] == 2
    assert api.json()["rollback"]["restores"] == 1


def test_rollback_refusals(synced, role_client, make_user):
    catalog, v1, v2 = synced["catalog"], synced["v1"], synced["v2"]
    client = role_client("data_scientist")
    url = reverse("pipelines:rollback-request", kwargs={"name": catalog.name})
    never = synced["v1"].__class__.objects.create(
        registered_model=v1.registered_model, version=3, status="READY"
    )

    page = client.get(url, {"version": never.pk})
    assert page.status_code == 400 and b"never served" in page.content
    assert client.get(url, {"version": 999999}).status_code == 404
    assert client.get(url).status_code == 400

    serving = client.post(url, {"version": v2.pk, "environment": "PROD", "reason": "x"})
    assert serving.status_code == 400 and b"what serves now in PROD" in serving.content

    no_reason = client.post(url, {"version": v1.pk, "environment": "PROD", "reason": " "})
    assert no_reason.status_code == 400 and b"a reason is required" in no_reason.content
    assert not RunRequest.objects.filter(reason="rollback").exists()

    api_url = reverse("api:pipelines:model-rollback", kwargs={"name": catalog.name})
    api = client.post(api_url, {"version": never.pk, "reason": "x"}, "application/json")
    assert api.status_code == 400 and "never served" in api.json()["detail"]

    approver = role_client("approver")  # the same client, signed in again
    assert approver.get(url, {"version": v1.pk}).status_code == 403
    api = approver.post(api_url, {"version": v1.pk, "reason": "x"}, "application/json")
    assert api.status_code == 403
    assert not RunRequest.objects.filter(reason="rollback").exists()


def test_rollback_api_and_no_release_pipeline(history, role_client):
    catalog, v1 = history["catalog"], history["v1"]
    client = role_client("data_scientist")
    url = reverse("api:pipelines:model-rollback", kwargs={"name": catalog.name})
    answer = client.post(url, {"version": v1.pk, "reason": "v2 drifts"}, "application/json")
    assert answer.status_code == 400
    assert "no release pipeline" in answer.json()["detail"]
