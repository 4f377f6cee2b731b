"""The pipelines sync over real HTTP against the ADO simulator."""

import base64
import json
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ado_simulator import AdoSimulator
from pipelines import services
from pipelines.client import AdoClient, AdoCredentials
from pipelines.models import AdoProject, Pipeline, PipelineKind, PipelineRun, RunRequest, RunStage
from tests.ado_simulator.conftest import PAT, PAT_USER, START
from tests.registry.factories import (
    ModelVersionFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db

HOOK_SECRET = "hook-secret-for-tests"


@pytest.fixture
def sim():
    simulator = AdoSimulator(start=START, pats={PAT: PAT_USER}).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def project(sim, settings):
    settings.AZURE_DEVOPS_PAT = PAT
    settings.ADO_HOOK_SECRET = HOOK_SECRET
    return AdoProject.objects.create(name="mlops", organization_url=sim.org_url, project="MLOps")


@pytest.fixture
def ado_client(sim):
    return AdoClient(sim.org_url, "MLOps", AdoCredentials(pat=PAT), sleep=lambda s: None)


@pytest.fixture
def fraud():
    """The catalog entry and two central versions the pipelines deploy."""
    registered = RegisteredModelFactory(name="fraud-detector")
    return {
        "catalog": registered.catalog_model,
        "v1": ModelVersionFactory(registered_model=registered, version=1),
        "v2": ModelVersionFactory(registered_model=registered, version=2),
    }


def sync(project, ado_client, full=False):
    project.refresh_from_db()
    result = services.project_sync(project=project, client=ado_client, full=full)
    assert result.ok, result.as_dict()
    return result


def make_pipelines(sim):
    return {
        kind: sim.create_pipeline(
            f"risk-fraud-detector-{suffix}",
            kind,
            folder="\\risk\\fraud-detector",
            model="fraud-detector",
        )
        for kind, suffix in (("ci", "ci"), ("training", "train"), ("release", "release"))
    }


def test_pipelines_are_recognised_by_the_naming_convention(project, ado_client, sim, fraud):
    make_pipelines(sim)
    sim.create_pipeline("shared-tooling", "ci", folder="\\platform")
    sync(project, ado_client)
    pipelines = {p.name: p for p in Pipeline.objects.filter(project=project)}
    assert pipelines["risk-fraud-detector-train"].kind == PipelineKind.TRAINING
    assert pipelines["risk-fraud-detector-release"].kind == PipelineKind.RELEASE
    assert pipelines["risk-fraud-detector-ci"].kind == PipelineKind.CI
    assert {p.catalog_model for p in pipelines.values() if p.name.startswith("risk-")} == {
        fraud["catalog"]
    }
    assert pipelines["shared-tooling"].catalog_model is None
    assert pipelines["risk-fraud-detector-train"].web_url.startswith(sim.url)


@pytest.mark.parametrize(
    ("name", "folder", "expected"),
    [
        ("risk-fraud-detector-train", "\\risk\\fraud-detector", ("training", "fraud-detector")),
        ("risk-fraud-detector-data-cleansing", "", ("data_cleansing", "fraud-detector")),
        ("fraud-detector_scoring", "", ("scoring", "fraud-detector")),
        ("nightly-report", "\\misc", ("other", None)),
    ],
)
def test_kind_and_model_from_names(name, folder, expected):
    assert services.pipeline_kind_and_model(name, folder, {"fraud-detector"}) == expected


def test_a_release_run_is_mirrored_with_its_stages_and_version(project, ado_client, sim, fraud):
    pipes = make_pipelines(sim)
    run = sim.queue_run(
        pipes["release"],
        template_parameters={
            "modelName": "fraud-detector",
            "modelVersion": "2",
            "deployTarget": "aks",
        },
    )
    sim.advance(600)  # build done; QA waits at its approval
    sync(project, ado_client)

    mirrored = PipelineRun.objects.get(ado_id=run.id)
    assert mirrored.state == "inProgress" and mirrored.model_version == fraud["v2"]
    assert mirrored.parameters["deployTarget"] == "aks" and mirrored.trigger == "manual"
    stages = {s.environment or s.name: s for s in mirrored.stages.all()}
    assert stages["QA"].waiting_for_approval and stages["QA"].target == "aks"
    assert stages["QA"].approval_ids == [a.id for a in sim.pending_approvals(run)]
    assert stages["PROD"].state == "pending"

    [approval] = sim.pending_approvals(run)
    sim.decide(approval.id, "approved", "alice@example.com", "QA fine")
    sim.advance(600)
    sync(project, ado_client)
    stages = {s.environment or s.name: s for s in RunStage.objects.filter(run=mirrored)}
    assert stages["QA"].result == "succeeded" and not stages["QA"].waiting_for_approval
    assert stages["PROD"].waiting_for_approval


def test_a_run_completes_and_then_its_timeline_is_cached(project, ado_client, sim, fraud):
    pipes = make_pipelines(sim)
    run = sim.queue_run(pipes["training"], template_parameters={"modelVersion": "1"})
    sync(project, ado_client)
    sim.advance(7200)
    sync(project, ado_client)
    mirrored = PipelineRun.objects.get(ado_id=run.id)
    assert mirrored.state == "completed" and mirrored.result == "succeeded"
    assert mirrored.model_version == fraud["v1"]  # modelName defaults to the pipeline's model
    quiet = sync(project, ado_client)
    assert quiet.timelines_read == 0 and quiet.runs.created == quiet.runs.updated == 0


def test_a_training_run_is_linked_by_the_mlflow_run_tag(project, ado_client, sim, fraud):
    pipes = make_pipelines(sim)
    run = sim.queue_run(pipes["training"])
    fraud["v2"].run_tags = {"ado.build_id": str(run.id)}
    fraud["v2"].save()
    sync(project, ado_client)
    assert PipelineRun.objects.get(ado_id=run.id).model_version == fraud["v2"]


def test_the_run_tag_links_only_a_version_of_the_pipelines_model(project, ado_client, sim, fraud):
    """Another model's version carrying the same ``ado.build_id`` (its training ran in another
    ADO organisation or project, whose build ids overlap) is not this run's version."""
    pipes = make_pipelines(sim)
    run = sim.queue_run(pipes["training"])
    churn = RegisteredModelFactory(name="churn-predictor")
    ModelVersionFactory(registered_model=churn, version=5, run_tags={"ado.build_id": str(run.id)})
    sync(project, ado_client)
    assert PipelineRun.objects.get(ado_id=run.id).model_version is None

    fraud["v2"].run_tags = {"ado.build_id": str(run.id)}
    fraud["v2"].save()
    ModelVersionFactory(registered_model=churn, version=6, run_tags={"ado.build_id": str(run.id)})
    sim.advance(7200)  # the run changes, so the sync rewrites its link
    sync(project, ado_client)
    assert PipelineRun.objects.get(ado_id=run.id).model_version == fraud["v2"]


def test_nothing_new_means_nothing_written_and_few_requests(project, ado_client, sim, fraud):
    pipes = make_pipelines(sim)
    sim.queue_run(pipes["ci"])
    sim.advance(7200)
    sync(project, ado_client, full=True)
    sync(project, ado_client)  # reads the completed timeline once more
    quiet = sync(project, ado_client)
    assert quiet.mode == "incremental"
    assert (quiet.runs.created, quiet.runs.updated, quiet.stages.created, quiet.stages.updated) == (
        0,
        0,
        0,
        0,
    )
    assert quiet.requests <= 3  # pipelines list, builds queued since, builds finished since
    again = sync(project, ado_client, full=True)
    assert (again.runs.created, again.runs.updated, again.pipelines.updated) == (0, 0, 0)


def _identity_reads(sim, since: int = 0) -> list[dict]:
    return [r for r in sim.request_log(since) if r["path"].endswith("/_apis/connectionData")]


def test_the_first_and_every_full_sync_record_whom_the_pat_belongs_to(
    project, ado_client, sim, fraud
):
    """The portal's ADO identity is known from the first sync, before any approval is sent;
    a quiet incremental sync does not ask again, a full one does (the PAT may have changed)."""
    sim.add_pat(PAT, PAT_USER, "MLOps Portal Service")
    sim.queue_run(make_pipelines(sim)["ci"])
    sync(project, ado_client)
    project.refresh_from_db()
    assert project.service_identity == "MLOps Portal Service"
    assert len(_identity_reads(sim)) == 1

    before = sim.request_count
    assert sync(project, ado_client).mode == "incremental"
    assert _identity_reads(sim, before) == []

    sim.add_pat(PAT, "svc-rotated@example.com", "Rotated Service")
    sync(project, ado_client, full=True)
    project.refresh_from_db()
    assert project.service_identity == "Rotated Service"


@pytest.mark.parametrize("status", [403, 500])
def test_failing_to_read_the_identity_keeps_the_old_one_and_the_sync_succeeds(
    project, ado_client, sim, caplog, status
):
    AdoProject.objects.filter(pk=project.pk).update(service_identity="Known Service")
    sim.fail_next(10, status, path="connectionData")
    result = sync(project, ado_client, full=True)
    assert result.ok and not result.error
    project.refresh_from_db()
    assert project.service_identity == "Known Service"
    assert project.last_sync_error == "" and project.last_sync_succeeded_at is not None
    assert "could not read the portal's ADO identity for mlops" in caplog.text


def test_a_kind_set_by_hand_survives_the_sync(project, ado_client, sim, fraud):
    make_pipelines(sim)
    sync(project, ado_client)
    ci = Pipeline.objects.get(name="risk-fraud-detector-ci")
    ci.kind, ci.kind_set_by_hand, ci.catalog_model = PipelineKind.DATA_CLEANSING, True, None
    ci.save()
    sync(project, ado_client, full=True)
    ci.refresh_from_db()
    assert ci.kind == PipelineKind.DATA_CLEANSING and ci.catalog_model is None


def test_after_ado_was_down_the_sync_catches_up_without_duplicates(project, ado_client, sim, fraud):
    pipes = make_pipelines(sim)
    sim.queue_run(pipes["ci"])
    sync(project, ado_client)
    sim.go_down("refuse")
    failed = services.project_sync(project=project, client=ado_client)
    assert not failed.ok and failed.error
    project.refresh_from_db()
    assert project.last_sync_error and project.last_sync_error_at > project.last_sync_succeeded_at
    sim.come_up()
    for _ in range(3):
        sim.queue_run(pipes["training"])
    sim.advance(300)
    sync(project, ado_client)
    sync(project, ado_client)
    ado_ids = list(
        PipelineRun.objects.filter(pipeline__project=project).values_list("ado_id", flat=True)
    )
    assert len(ado_ids) == len(set(ado_ids)) == 4


def test_throttling_and_server_errors_are_ridden_out(project, ado_client, sim, fraud):
    make_pipelines(sim)
    sim.throttle_next(2, retry_after=3)
    sim.fail_next(2, 500)
    result = sync(project, ado_client)
    assert result.pipelines.created == 3


def test_a_targeted_refresh_reads_one_run(project, ado_client, sim, fraud):
    pipes = make_pipelines(sim)
    run = sim.queue_run(pipes["training"])
    sync(project, ado_client)
    sim.advance(7200)
    result = services.run_refresh(project=project, build_id=run.id, client=ado_client)
    assert result.ok and result.runs.updated == 1
    assert PipelineRun.objects.get(ado_id=run.id).result == "succeeded"


# Service hooks ---------------------------------------------------------------------------


def _auth(password: str, user: str = "ado-hook") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _envelope(build_id=41, event_type="ms.vss-pipelines.run-state-changed-event", event_id=None):
    return {
        "id": event_id or str(uuid.uuid4()),
        "eventType": event_type,
        "publisherId": "pipelines",
        "resource": {"run": {"id": build_id}, "pipeline": {"id": 3}},
    }


def _post(client, envelope, password=HOOK_SECRET, project="mlops"):
    return client.post(
        f"/pipelines/hooks/ado/{project}/",
        data=json.dumps(envelope),
        content_type="application/json",
        HTTP_AUTHORIZATION=_auth(password),
    )


def test_a_hook_queues_a_refresh_of_its_run(client, project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(client, _envelope(build_id=41))
    assert response.status_code == 202 and response.json() == {"status": "queued", "build_id": 41}
    assert len(callbacks) == 2  # the run's refresh, and the hook_received signal for other apps


def test_a_replayed_hook_changes_nothing(client, project, django_capture_on_commit_callbacks):
    envelope = _envelope()
    _post(client, envelope)
    with django_capture_on_commit_callbacks() as callbacks:
        again = _post(client, envelope)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert callbacks == []


@pytest.mark.parametrize("password", ["wrong", ""])
def test_a_hook_with_a_wrong_secret_gets_401(client, project, password):
    response = _post(client, _envelope(), password=password)
    assert response.status_code == 401 and "Basic" in response["WWW-Authenticate"]


def test_a_hook_without_auth_gets_401(client, project):
    response = client.post(
        "/pipelines/hooks/ado/mlops/", data="{}", content_type="application/json"
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("not json", 400),
        ("[1, 2]", 400),
        ('{"id": "x"}', 400),
        ('{"id": "x", "eventType": "e", "resource": 3}', 400),
    ],
)
def test_bad_hook_bodies_are_4xx(client, project, body, status):
    response = client.post(
        "/pipelines/hooks/ado/mlops/", data=body, content_type="application/json",
        HTTP_AUTHORIZATION=_auth(HOOK_SECRET),
    )  # fmt: skip
    assert response.status_code == status and response.json()["detail"]


def test_hooks_for_an_unknown_project_or_without_a_secret(client, project, settings):
    assert _post(client, _envelope(), project="nope").status_code == 404
    settings.ADO_HOOK_SECRET = ""
    assert _post(client, _envelope()).status_code == 503


def test_an_approval_hook_without_a_run_refreshes_the_project(
    client, project, django_capture_on_commit_callbacks
):
    envelope = _envelope(event_type="ms.vss-pipelinechecks-events.approval-pending")
    envelope["resource"] = {"approval": {"id": "a1"}, "run": None, "stage": None}
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(client, envelope)
    assert response.json() == {"status": "queued", "build_id": None}
    assert len(callbacks) == 2  # the project sync, and the hook_received signal (approvals)


def test_hook_deliveries_from_the_simulator_are_accepted(
    project, sim, live_server, settings, django_capture_on_commit_callbacks
):
    """ADO's own envelope shape (from the simulator's deliveries), end to end over HTTP."""
    import requests

    pipes = make_pipelines(sim)
    sim.add_subscription(
        f"{live_server.url}/pipelines/hooks/ado/mlops/", username="ado-hook", password=HOOK_SECRET
    )
    sim.queue_run(pipes["ci"])
    sim.advance(600)
    assert sim.wait_for_deliveries(timeout=10)
    deliveries = sim.deliveries()
    assert deliveries and {d.status for d in deliveries} == {"succeeded"}
    assert {a.get("statusCode") for d in deliveries for a in d.attempts} == {202}
    assert requests.get(live_server.url + "/healthz", timeout=5).status_code == 200


# Run requests ----------------------------------------------------------------------------


def test_a_run_request_is_sent_once_and_linked_to_its_run(
    project, ado_client, sim, fraud, make_user, django_capture_on_commit_callbacks
):
    make_pipelines(sim)
    sync(project, ado_client)
    training = Pipeline.objects.get(kind=PipelineKind.TRAINING)
    dana = make_user("data_scientist")
    with django_capture_on_commit_callbacks() as callbacks:
        request = services.trigger_run(
            pipeline=training, parameters={}, reason="manual", note="new features", acting_user=dana
        )
    assert len(callbacks) == 1 and request.status == RunRequest.Status.QUEUED
    assert request.parameters == {
        "trigger": "manual",
        "modelName": "fraud-detector",
        "portalRequestId": request.key,
    }

    sent = services.run_request_send(request=request, client=ado_client)
    assert sent.status == RunRequest.Status.SENT and sent.run.triggered_by == dana
    assert sent.run.trigger_note == "new features"
    assert services.run_request_send(request=sent, client=ado_client).run == sent.run  # not resent
    assert len([r for r in sim.runs.values() if r.pipeline.id == training.ado_id]) == 1


def test_a_run_request_that_ado_refuses_is_failed_with_the_reason(project, ado_client, sim, fraud):
    make_pipelines(sim)
    sync(project, ado_client)
    training = Pipeline.objects.get(kind=PipelineKind.TRAINING)
    request = services.trigger_run(pipeline=training, parameters={}, reason="manual")
    sim.fail_next(1, 400)
    failed = services.run_request_send(request=request, client=ado_client)
    assert failed.status == RunRequest.Status.FAILED and "400" in failed.error
    assert not any(r.pipeline.id == training.ado_id for r in sim.runs.values())


def test_a_run_request_whose_answer_was_lost_is_retried_and_queued_once(
    project, ado_client, sim, fraud
):
    make_pipelines(sim)
    sync(project, ado_client)
    training = Pipeline.objects.get(kind=PipelineKind.TRAINING)
    request = services.trigger_run(pipeline=training, parameters={}, reason="manual")
    sim.fail_next(1, 500)
    held = services.run_request_send(request=request, client=ado_client)
    assert held.status == RunRequest.Status.QUEUED and "attempt 1 failed" in held.error
    # The lost answer had queued the run after all: the retry finds it by its key.
    sim.queue_run(training.ado_id, template_parameters=dict(request.parameters))
    RunRequest.objects.filter(pk=request.pk).update(next_attempt_at=None)
    sent = services.run_request_send(request=held, client=ado_client)
    assert sent.status == RunRequest.Status.SENT and sent.attempts == 2
    assert len([r for r in sim.runs.values() if r.pipeline.id == training.ado_id]) == 1


def test_release_pipelines_are_not_started_from_the_portal(project, ado_client, sim, fraud):
    from django.core.exceptions import ValidationError

    make_pipelines(sim)
    sync(project, ado_client)
    with pytest.raises(ValidationError, match="Release pipelines"):
        services.trigger_run(
            pipeline=Pipeline.objects.get(kind="release"), parameters={}, reason="manual"
        )


# Schedules and the command -------------------------------------------------------------


def test_each_project_gets_a_beat_schedule(sim):
    from django_celery_beat.models import PeriodicTask

    p = AdoProject.objects.create(
        name="sched", organization_url=sim.org_url, project="MLOps", sync_interval_seconds=90
    )
    task = PeriodicTask.objects.get(name="pipelines sync: sched")
    assert task.task == "pipelines.sync_project" and task.interval.every == 90 and task.enabled
    p.enabled = False
    p.save()
    task.refresh_from_db()
    assert not task.enabled
    p.delete()
    assert not PeriodicTask.objects.filter(name="pipelines sync: sched").exists()


def test_the_command_prints_a_summary(project, sim, fraud, capsys):
    make_pipelines(sim)
    call_command("sync_pipelines", "--project", "mlops")
    out = capsys.readouterr().out
    assert "pipelines  created 3" in out and "ADO requests" in out


def test_the_command_names_an_unknown_project(project):
    with pytest.raises(CommandError, match=r"No ADO project named .nope. .*mlops"):
        call_command("sync_pipelines", "--project", "nope")


def test_a_completed_run_gets_its_final_timeline_even_after_a_failed_read(
    project, ado_client, sim, fraud
):
    pipes = make_pipelines(sim)
    run = sim.queue_run(pipes["training"])
    sync(project, ado_client)
    sim.advance(7200)  # completed in ADO
    sim.fail_next(10, 500, path="timeline")
    failed = services.project_sync(project=project, client=ado_client)
    assert not failed.ok
    mirrored = PipelineRun.objects.get(ado_id=run.id)
    assert mirrored.state == "completed" and mirrored.timeline_synced_at is None
    sync(project, ado_client)
    stages = RunStage.objects.filter(run=mirrored)
    assert stages and all(s.state == "completed" for s in stages)


def test_a_run_naming_another_registry_links_to_that_registrys_version(
    project, ado_client, sim, fraud
):
    from tests.registry.factories import RegistrySourceFactory

    discovery = RegistrySourceFactory(name="data-discovery")
    other = ModelVersionFactory(
        registered_model=RegisteredModelFactory(
            source=discovery, name="fraud-detector", catalog_model=fraud["catalog"]
        ),
        version=2,
    )
    pipes = make_pipelines(sim)
    central_run = sim.queue_run(pipes["release"], template_parameters={"modelVersion": "2"})
    named_run = sim.queue_run(
        pipes["release"],
        template_parameters={"modelVersion": "2", "registrySource": "data-discovery"},
    )
    sync(project, ado_client)
    assert PipelineRun.objects.get(ado_id=central_run.id).model_version == fraud["v2"]
    assert PipelineRun.objects.get(ado_id=named_run.id).model_version == other
