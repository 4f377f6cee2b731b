"""Approvals against the real ADO simulator over HTTP: a project mirrored from it, a release
run of fraud-detector waiting at its QA approval, and a synced ApprovalRequest for it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ado_simulator import AdoSimulator
from approvals import services
from approvals.models import ApprovalRequest
from pipelines import services as pipelines_services
from pipelines.client import AdoClient, AdoCredentials
from pipelines.models import AdoProject
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

PAT = "approvals-test-pat"
PAT_USER = "portal-service@example.com"


@pytest.fixture
def sim(request):
    # The simulated clock starts an hour ago, so approvals are not past their expiry (a test
    # may start it further back: parametrize ``sim`` indirectly with a timedelta).
    start = datetime.now(UTC).replace(microsecond=0) - getattr(request, "param", timedelta(hours=1))
    simulator = AdoSimulator(start=start, pats={PAT: PAT_USER}).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def project(sim, settings, db):
    settings.AZURE_DEVOPS_PAT = PAT
    settings.ADO_HOOK_SECRET = "approvals-hook-secret"
    settings.APPROVALS_DELIVERY_BACKOFF_SECONDS = 0.05
    settings.APPROVALS_DELIVERY_BACKOFF_MAX_SECONDS = 0.2
    return AdoProject.objects.create(name="mlops", organization_url=sim.org_url, project="MLOps")


@pytest.fixture
def ado_client(sim):
    return AdoClient(sim.org_url, "MLOps", AdoCredentials(pat=PAT), sleep=lambda s: None)


@pytest.fixture
def fraud(db):
    registered = RegisteredModelFactory(name="fraud-detector")
    return {
        "catalog": registered.catalog_model,
        "v1": ModelVersionFactory(
            registered_model=registered, version=1, metrics={"auc": 0.90, "log_loss": 0.30}
        ),
        "v2": ModelVersionFactory(
            registered_model=registered, version=2, metrics={"auc": 0.93, "log_loss": 0.25}
        ),
    }


@pytest.fixture
def release(sim):
    """fraud-detector's release pipeline in the simulator (QA then PROD, each approved by
    the group the scaffold names)."""
    return sim.create_pipeline(
        "risk-fraud-detector-release",
        "release",
        folder="\\risk\\fraud-detector",
        model="fraud-detector",
        stage_seconds={"Build": 60, "Deploy_QA": 60, "Deploy_PROD": 60},
    )


def mirror(project, client) -> None:
    """The pipelines sync, then the approvals poll, as beat runs them."""
    project.refresh_from_db()
    result = pipelines_services.project_sync(project=project, client=client)
    assert result.ok, result.as_dict()
    approvals = services.project_approvals_sync(project=project, client=client)
    assert approvals.ok, approvals.as_dict()


def wait_at(sim, run, stage: str) -> str:
    """Advance the simulated clock until ``run`` waits at ``stage``'s approval; its id."""
    for _ in range(100):
        pending = [a for a in sim.pending_approvals(run.id) if a.stage.name == stage]
        if pending:
            return pending[0].id
        sim.advance(30)
    raise AssertionError(f"run {run.id} never waited at {stage}")


@pytest.fixture
def waiting_qa(sim, project, ado_client, fraud, release):
    """A release of fraud-detector v2 waiting at QA, mirrored: the ApprovalRequest."""
    run = sim.queue_run(
        release,
        template_parameters={
            "modelName": "fraud-detector",
            "modelVersion": "2",
            "deployTarget": "aks",
        },
    )
    approval_id = wait_at(sim, run, "QA")
    mirror(project, ado_client)
    return ApprovalRequest.objects.get(ado_id=approval_id)
