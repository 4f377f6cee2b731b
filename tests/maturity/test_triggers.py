"""What starts an assessment: beat's nightly run, and changes to a model's runs, approvals or
versions, which mark it stale in the sender's own transaction for beat's
``maturity.assess_changed`` (no broker on the sync or decision path)."""

import datetime as dt
import socket

import pytest
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.utils import timezone

from ado_simulator import AdoSimulator
from maturity import services, tasks
from maturity.models import MaturityRecord, MaturitySnapshot, ModelMaturity
from pipelines import services as pipelines_services
from pipelines.client import AdoClient, AdoCredentials
from pipelines.models import AdoProject, PipelineRun
from pipelines.signals import runs_changed
from portal.celery import app
from registry.models import RegisteredModel
from registry.signals import registered_models_changed
from tests.ado_simulator.conftest import PAT, PAT_USER
from tests.approvals.faults import celery_app_on
from tests.maturity.factories import SnapshotFactory

pytestmark = pytest.mark.django_db


def stale(model) -> bool:
    return ModelMaturity.objects.filter(pk=model.pk, stale_since__isnull=False).exists()


def beat_entry(task: str) -> dict:
    found = [e for e in django_settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == task]
    assert len(found) == 1, task
    return found[0]


# --- beat ---------------------------------------------------------------------------------------


def test_beat_runs_the_nightly_assessment_once_a_night_and_changed_models_every_minute():
    nightly = beat_entry("maturity.nightly")
    assert isinstance(nightly["schedule"], crontab)
    assert nightly["schedule"].hour == {2} and nightly["schedule"].minute == {30}
    assert beat_entry("maturity.assess_changed")["schedule"] == 60
    assert {"maturity.nightly", "maturity.assess_changed"} <= set(app.tasks)


def test_the_nightly_task_assesses_snapshots_and_prunes(build):
    top, bare = build.ml_model(), build.ml_model()
    build.level_5(top)
    old = SnapshotFactory(
        catalog_model=bare, week=services.week_of(timezone.localdate()) - dt.timedelta(weeks=200)
    )

    summary = tasks.nightly()
    assert (summary["assessed"], summary["written"], summary["snapshot_rows"]) == (2, 2, 2)
    assert (
        summary["snapshots_pruned"] == 1 and not MaturitySnapshot.objects.filter(pk=old.pk).exists()
    )
    assert summary["levels"] == {0: 1, 5: 1}
    assert MaturitySnapshot.objects.get(catalog_model=top).level == 5
    assert set(MaturityRecord.objects.values_list("made_by", flat=True)) == {services.NIGHTLY}

    again = tasks.nightly()
    assert (again["written"], again["unchanged"], again["snapshot_rows"]) == (0, 2, 2)
    assert MaturitySnapshot.objects.count() == 2


def test_assess_changed_assesses_only_marked_models_and_clears_their_marks(build):
    marked, untouched = build.ml_model(), build.ml_model()
    build.ci(marked)
    runs_changed.send(
        sender=PipelineRun,
        project=AdoProject.objects.get(),
        run_ids=[marked.pipelines.get().runs.get().pk],
    )
    assert stale(marked) and not stale(untouched)

    summary = tasks.assess_changed()
    assert (summary["assessed"], summary["written"]) == (1, 1)
    record = MaturityRecord.objects.get()
    assert (record.catalog_model_id, record.made_by) == (marked.pk, services.ON_CHANGE)
    assert not stale(marked)
    assert tasks.assess_changed()["assessed"] == 0  # nothing marked any more


def test_a_mark_set_while_an_assessment_runs_stays_for_the_next_one(build):
    model = build.ml_model()
    ModelMaturity.objects.create(
        catalog_model=model, stale_since=timezone.now() + dt.timedelta(seconds=5)
    )
    # Marked after the assessment read the evidence: assessed now, and the mark stays for the
    # next run, which will see what changed.
    assert tasks.assess_changed()["assessed"] == 1
    assert stale(model)


def test_any_assessment_clears_the_marks_made_before_it_read_the_evidence(build):
    model = build.ml_model()
    ModelMaturity.objects.create(
        catalog_model=model, stale_since=timezone.now() - dt.timedelta(seconds=5)
    )
    services.models_assess()  # the nightly run, or assess_maturity
    assert not stale(model)
    assert tasks.assess_changed()["assessed"] == 0


# --- what marks a model -------------------------------------------------------------------------


@pytest.fixture
def sim():
    now = dt.datetime.now(tz=dt.UTC).replace(microsecond=0)
    simulator = AdoSimulator(start=now - dt.timedelta(minutes=5), pats={PAT: PAT_USER}).start()
    yield simulator
    simulator.stop()


def test_a_pipelines_sync_that_changes_runs_gets_the_model_reassessed(
    build, sim, settings, django_capture_on_commit_callbacks
):
    settings.AZURE_DEVOPS_PAT = PAT
    model = build.ml_model("fraud-detector")
    other = build.ml_model("churn-predictor")
    project = AdoProject.objects.create(
        name="ado-sim", organization_url=sim.org_url, project="MLOps"
    )
    pipe = sim.create_pipeline(
        "risk-fraud-detector-ci", "ci", folder="\\risk\\fraud-detector", model="fraud-detector"
    )
    sim.queue_run(pipe, reason="individualCI")
    sim.advance(3600)
    client = AdoClient(sim.org_url, "MLOps", AdoCredentials(pat=PAT), sleep=lambda s: None)

    # runs_changed is sent by the sync (in its transaction or after its commit: both run here)
    with django_capture_on_commit_callbacks(execute=True):
        result = pipelines_services.project_sync(project=project, client=client, full=True)
    assert result.ok, result.as_dict()
    assert stale(model) and not stale(other)

    tasks.assess_changed()
    record = MaturityRecord.objects.get(catalog_model=model)
    assert record.made_by == services.ON_CHANGE
    ci = next(r for r in record.results if r["code"] == "ci-build")
    assert ci["result"] == "passed"

    with django_capture_on_commit_callbacks(execute=True):
        project.refresh_from_db()
        pipelines_services.project_sync(project=project, client=client, full=True)
    assert not stale(model)  # nothing changed: no signal, no mark


def test_saving_an_approval_request_marks_its_model(build):
    model = build.ml_model()
    release = build.release(model, approvers={"QA": "Alice"})
    assert stale(model)
    ModelMaturity.objects.update(stale_since=None)
    approval = release.approval_requests.get()
    approval.status = "rejected"
    approval.save()
    assert stale(model)
    tasks.assess_changed()
    assert (
        MaturityRecord.objects.filter(catalog_model=model, made_by=services.ON_CHANGE).count() == 1
    )


def test_a_registry_change_marks_the_models_of_the_changed_names(build):
    changed, unchanged = build.ml_model("fraud-detector"), build.ml_model("churn")
    source = RegisteredModel.objects.get(name="fraud-detector").source
    registered_models_changed.send(
        sender=RegisteredModel, source=source, names=["fraud-detector", "gone"]
    )
    assert stale(changed) and not stale(unchanged)
    tasks.assess_changed()
    assert list(MaturityRecord.objects.values_list("catalog_model", flat=True)) == [changed.pk]


def test_marks_roll_back_with_the_senders_transaction(build):
    from django.db import transaction

    model = build.ml_model()
    with pytest.raises(RuntimeError), transaction.atomic():
        build.release(model, approvers={"QA": "Alice"})
        raise RuntimeError("the sync failed")
    assert not stale(model)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is


def test_a_broker_that_is_down_does_not_reach_the_senders(
    build, django_capture_on_commit_callbacks
):
    model = build.ml_model("fraud-detector")
    build.ci(model)
    run = PipelineRun.objects.get()
    source = RegisteredModel.objects.get().source
    down = f"redis://127.0.0.1:{closed_port()}/0"
    with (
        celery_app_on(
            down, "maturity-down", broker_connection_timeout=1, broker_connection_retry=False
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        runs_changed.send(sender=PipelineRun, project=run.pipeline.project, run_ids=[run.pk])
        registered_models_changed.send(
            sender=RegisteredModel, source=source, names=["fraud-detector"]
        )
        build.release(model, approvers={"QA": "Alice"})
    assert stale(model)
    tasks.assess_changed()  # beat, once the broker is back
    assert MaturityRecord.objects.filter(catalog_model=model).exists()
