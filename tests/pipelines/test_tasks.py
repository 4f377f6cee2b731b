"""The pipelines tasks on a real Celery worker process, against the ADO simulator over HTTP."""

import pytest

from ado_simulator import AdoSimulator
from pipelines.models import AdoProject, PipelineRun, RunRequest
from pipelines.tasks import refresh_run, send_run_request, sync_project
from tests.ado_simulator.conftest import PAT, PAT_USER, START

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sim():
    simulator = AdoSimulator(start=START, pats={PAT: PAT_USER}).start()
    yield simulator
    simulator.stop()


def test_the_worker_syncs_a_project_and_sends_a_run_request(celery_worker_process, sim):
    # The worker process uses the test settings' PAT (the simulator's default one).
    sim.add_pat("simulator-pat", "portal-worker@example.com")
    project = AdoProject.objects.create(name="w", organization_url=sim.org_url, project="MLOps")
    pipe = sim.create_pipeline(
        "risk-fraud-detector-train", "training", folder="\\risk\\fraud-detector"
    )
    run = sim.queue_run(pipe)

    summary = sync_project.delay(project.pk, full=True).get(timeout=60)
    assert summary["error"] == "" and summary["runs"]["created"] == 1
    assert PipelineRun.objects.get(ado_id=run.id).state == "inProgress"

    sim.advance(7200)
    refreshed = refresh_run.delay(project.pk, run.id).get(timeout=60)
    assert refreshed["runs"]["updated"] == 1
    assert PipelineRun.objects.get(ado_id=run.id).result == "succeeded"

    from pipelines.models import Pipeline

    request = RunRequest.objects.create(
        pipeline=Pipeline.objects.get(ado_id=pipe.id),
        parameters={"trigger": "manual"},
        reason="manual",
    )
    outcome = send_run_request.delay(request.pk).get(timeout=60)
    assert outcome["status"] == "sent" and outcome["run"]
