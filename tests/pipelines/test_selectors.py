"""The pipelines read queries: run filters, latest run per kind, deployments now, version runs."""

import datetime as dt

import pytest
from django.utils import timezone

from pipelines import selectors
from pipelines.models import PipelineKind, RunResult, RunState
from pipelines.selectors import RunFilters
from tests.pipelines.factories import (
    AdoProjectFactory,
    PipelineFactory,
    PipelineRunFactory,
    RunStageFactory,
)
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def ago(**kwargs):
    return NOW - dt.timedelta(**kwargs)


@pytest.fixture
def fraud():
    """A registered model with versions 1-4 and its training and release pipelines."""
    rm = RegisteredModelFactory(name="fraud-detector")
    versions = {n: ModelVersionFactory(registered_model=rm, version=n) for n in range(1, 5)}
    model = rm.catalog_model
    training = PipelineFactory(catalog_model=model, kind=PipelineKind.TRAINING)
    release = PipelineFactory(catalog_model=model, kind=PipelineKind.RELEASE)
    return model, versions, training, release


def deploy(
    release, version, environment, *, when, target="", param_target=None, result="succeeded"
):
    """A release run of ``version`` whose ``environment`` stage ended at ``when``."""
    parameters = {"modelVersion": str(version.version)} if version else {}
    if param_target:
        parameters["deployTarget"] = param_target
    run = PipelineRunFactory(
        pipeline=release,
        model_version=version,
        parameters=parameters,
        queued_at=when - dt.timedelta(minutes=30),
    )
    RunStageFactory(run=run, name="Build", order=0, finished_at=when - dt.timedelta(minutes=20))
    stage = RunStageFactory(
        run=run,
        environment=environment,
        target=target,
        result=result,
        order=1,
        started_at=when - dt.timedelta(minutes=5),
        finished_at=when,
    )
    return run, stage


# --- deployments now -------------------------------------------------------------------------


def _summary(deployments):
    return {
        env: sorted((d.target, d.version.version if d.version else None) for d in items)
        for env, items in deployments.items()
    }


@pytest.mark.sqlite
def test_two_targets_in_prod_show_two_versions(fraud):
    model, v, _, release = fraud
    deploy(release, v[2], "PROD", when=ago(days=5), param_target="aks")
    deploy(release, v[3], "PROD", when=ago(days=2), param_target="databricks-job")
    deploy(release, v[3], "QA", when=ago(days=3), target="AKS")
    now = selectors.deployments_now(model)
    assert _summary(now) == {
        "QA": [("aks", 3)],  # the stage's target, case-folded
        "PROD": [("aks", 2), ("databricks-job", 3)],
    }
    prod_aks = now["PROD"][0]
    assert prod_aks.environment == "PROD"
    assert prod_aks.deployed_at == prod_aks.stage.finished_at
    assert prod_aks.run.model_version == v[2]


@pytest.mark.sqlite
def test_a_later_deployment_replaces_an_earlier_one_on_the_same_target(fraud):
    model, v, _, release = fraud
    deploy(release, v[1], "PROD", when=ago(days=9), param_target="aks")
    deploy(release, v[2], "PROD", when=ago(days=4), param_target="aks")
    assert _summary(selectors.deployments_now(model))["PROD"] == [("aks", 2)]
    # a later failed or canceled deployment changes nothing
    deploy(release, v[3], "PROD", when=ago(days=1), param_target="aks", result="failed")
    deploy(release, v[4], "PROD", when=ago(hours=1), param_target="aks", result="canceled")
    assert _summary(selectors.deployments_now(model))["PROD"] == [("aks", 2)]
    # a later success does
    deploy(release, v[3], "PROD", when=ago(minutes=5), param_target="aks")
    assert _summary(selectors.deployments_now(model))["PROD"] == [("aks", 3)]


@pytest.mark.sqlite
def test_a_stage_still_running_or_waiting_does_not_deploy(fraud):
    model, v, _, release = fraud
    deploy(release, v[1], "QA", when=ago(days=3))
    run = PipelineRunFactory(pipeline=release, model_version=v[2], running=True)
    RunStageFactory(run=run, environment="QA", running=True)
    RunStageFactory(run=run, environment="PROD", waiting=True)
    assert _summary(selectors.deployments_now(model)) == {"QA": [("default", 1)], "PROD": []}


@pytest.mark.sqlite
def test_the_parameter_target_wins_over_the_stage_target(fraud):
    model, v, _, release = fraud
    deploy(release, v[1], "QA", when=ago(days=2), target="AKS", param_target="databricks-job")
    assert _summary(selectors.deployments_now(model))["QA"] == [("databricks-job", 1)]


def test_a_run_naming_no_known_version_is_shown_as_unknown(fraud):
    model, _, _, release = fraud
    deploy(release, None, "PROD", when=ago(days=1))
    (deployment,) = selectors.deployments_now(model)["PROD"]
    assert deployment.version is None and deployment.target == "default"


def test_nothing_deployed_is_two_empty_lists():
    model = CatalogModelFactory(name="lonely")
    assert selectors.deployments_now(model) == {"QA": [], "PROD": []}


def test_deployments_for_a_page_of_models_is_one_query(django_assert_num_queries):
    models = []
    for i in range(6):
        rm = RegisteredModelFactory(name=f"m{i}")
        version = ModelVersionFactory(registered_model=rm, version=1)
        release = PipelineFactory(catalog_model=rm.catalog_model, kind=PipelineKind.RELEASE)
        deploy(release, version, "QA", when=ago(days=2), param_target="aks")
        deploy(release, version, "PROD", when=ago(days=1), param_target="aks")
        models.append(rm.catalog_model)
    with django_assert_num_queries(1):
        found = selectors.deployments_for_catalog([m.pk for m in models])
        # everything the list shows is loaded with it
        for per_env in found.values():
            for deployments in per_env.values():
                for d in deployments:
                    assert d.version.registered_model.source.name == "central"
    assert set(found) == {m.pk for m in models}
    assert all(len(found[m.pk]["PROD"]) == 1 for m in models)


@pytest.mark.sqlite
def test_another_models_deployments_stay_apart(fraud):
    model, v, _, release = fraud
    other = RegisteredModelFactory(name="churn")
    other_version = ModelVersionFactory(registered_model=other, version=7)
    other_release = PipelineFactory(catalog_model=other.catalog_model, kind=PipelineKind.RELEASE)
    deploy(release, v[1], "PROD", when=ago(days=3))
    deploy(other_release, other_version, "PROD", when=ago(days=1))
    assert _summary(selectors.deployments_now(model))["PROD"] == [("default", 1)]
    assert _summary(selectors.deployments_now(other.catalog_model))["PROD"] == [("default", 7)]


# --- version runs ----------------------------------------------------------------------------


@pytest.mark.sqlite
def test_runs_for_version_finds_its_training_run_and_its_release_runs(fraud):
    _, v, training, release = fraud
    trained = PipelineRunFactory(pipeline=training, model_version=v[3], queued_at=ago(days=4))
    PipelineRunFactory(pipeline=training, model_version=v[2], queued_at=ago(days=8))
    qa_run, _ = deploy(release, v[3], "QA", when=ago(days=3))
    prod_run, _ = deploy(release, v[3], "PROD", when=ago(days=1), param_target="aks")
    deploy(release, v[2], "PROD", when=ago(days=6))
    ci = PipelineFactory(catalog_model=training.catalog_model, kind=PipelineKind.CI)
    PipelineRunFactory(pipeline=ci, model_version=v[3])  # not a training or release run

    runs = selectors.runs_for_version(v[3])
    assert runs.produced_by == [trained]
    assert runs.deployed_by == [prod_run, qa_run]  # newest first
    assert [s.environment for s in runs.deployed_by[0].stages.all()] == ["", "PROD"]
    assert selectors.run_deploy_target(prod_run, prod_run.stages.all()[1]) == "aks"
    assert not runs.empty
    assert selectors.runs_for_version(v[4]).empty


def test_a_scoring_run_produces_a_rule_based_version():
    rm = RegisteredModelFactory(name="rules", catalog_model__kind="rule_based")
    version = ModelVersionFactory(registered_model=rm, version=1)
    scoring = PipelineFactory(catalog_model=rm.catalog_model, kind=PipelineKind.SCORING)
    run = PipelineRunFactory(pipeline=scoring, model_version=version)
    assert selectors.runs_for_version(version).produced_by == [run]


# --- latest run per kind ---------------------------------------------------------------------


@pytest.mark.sqlite
def test_latest_run_per_kind_in_workflow_order(fraud):
    model, _, training, release = fraud
    cleanse = PipelineFactory(catalog_model=model, kind=PipelineKind.DATA_CLEANSING)
    PipelineFactory(catalog_model=model, kind=PipelineKind.CI)  # never ran
    PipelineRunFactory(pipeline=training, queued_at=ago(days=3))
    latest_training = PipelineRunFactory(pipeline=training, queued_at=ago(hours=2), running=True)
    PipelineRunFactory(pipeline=release, queued_at=ago(days=5))
    latest_release = PipelineRunFactory(pipeline=release, queued_at=ago(days=1))
    latest_cleanse = PipelineRunFactory(pipeline=cleanse, queued_at=ago(days=2))
    # a second training pipeline: the latest run over both wins
    other_training = PipelineFactory(catalog_model=model, kind=PipelineKind.TRAINING, name="z")
    PipelineRunFactory(pipeline=other_training, queued_at=ago(days=4))
    # another model's runs are not counted
    PipelineRunFactory(pipeline__kind=PipelineKind.TRAINING, queued_at=ago(minutes=1))

    kinds = selectors.latest_run_per_kind(model)
    assert [(k.kind, k.run) for k in kinds] == [
        ("ci", None),
        ("data_cleansing", latest_cleanse),
        ("training", latest_training),
        ("release", latest_release),
    ]
    assert [p.name for p in kinds[2].pipelines] == [training.name, "z"]
    assert kinds[2].label == "Training"


def test_latest_run_per_kind_of_a_model_without_pipelines():
    assert selectors.latest_run_per_kind(CatalogModelFactory(name="none")) == []


# --- run list --------------------------------------------------------------------------------


@pytest.fixture
def runs():
    other_project = AdoProjectFactory(name="data-discovery")
    fraud = CatalogModelFactory(name="fraud")
    churn = CatalogModelFactory(name="churn")
    fraud_train = PipelineFactory(catalog_model=fraud, kind=PipelineKind.TRAINING)
    fraud_release = PipelineFactory(catalog_model=fraud, kind=PipelineKind.RELEASE)
    churn_train = PipelineFactory(
        catalog_model=churn, kind=PipelineKind.TRAINING, project=other_project
    )
    made = {
        "old-failed": PipelineRunFactory(
            pipeline=fraud_train,
            result=RunResult.FAILED,
            queued_at=ago(days=10),
            trigger="drift",
        ),
        "new-data": PipelineRunFactory(
            pipeline=fraud_train, queued_at=ago(days=3), trigger="", reason="resourceTrigger"
        ),
        "waiting": PipelineRunFactory(
            pipeline=fraud_release, running=True, queued_at=ago(hours=5), reason="manual"
        ),
        "running": PipelineRunFactory(
            pipeline=churn_train, running=True, queued_at=ago(minutes=10), trigger="new-data"
        ),
        "schedule": PipelineRunFactory(
            pipeline=churn_train, queued_at=ago(days=1), reason="schedule"
        ),
    }
    RunStageFactory(run=made["waiting"], environment="QA")
    RunStageFactory(run=made["waiting"], environment="PROD", waiting=True)
    return made


def _names(qs, made):
    by_pk = {run.pk: name for name, run in made.items()}
    return [by_pk[r.pk] for r in qs]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (RunFilters(), ["running", "waiting", "schedule", "new-data", "old-failed"]),
        (RunFilters(model="fraud"), ["waiting", "new-data", "old-failed"]),
        (RunFilters(kind="release"), ["waiting"]),
        (RunFilters(state="running"), ["running", "waiting"]),
        (RunFilters(state="waiting"), ["waiting"]),
        (RunFilters(state="completed"), ["schedule", "new-data", "old-failed"]),
        (RunFilters(result="failed"), ["old-failed"]),
        (RunFilters(trigger="drift"), ["old-failed"]),
        (RunFilters(trigger="schedule"), ["schedule"]),
        # the workflow's "new data" and ADO's resourceTrigger on a run naming no trigger
        (RunFilters(trigger="new-data"), ["running"]),
        (RunFilters(trigger="resourceTrigger"), ["new-data"]),
        (RunFilters(project="data-discovery"), ["running", "schedule"]),
        (RunFilters(date_from=ago(days=4).date()), ["running", "waiting", "schedule", "new-data"]),
        (RunFilters(date_to=ago(days=2).date()), ["new-data", "old-failed"]),
        (RunFilters(date_from=ago(days=4).date(), date_to=ago(days=2).date()), ["new-data"]),
        (RunFilters(sort="started"), ["old-failed", "new-data", "schedule", "waiting", "running"]),
        (RunFilters(sort="model"), ["running", "schedule", "waiting", "new-data", "old-failed"]),
        (RunFilters(model="fraud", state="completed", result="succeeded"), ["new-data"]),
    ],
)
@pytest.mark.sqlite
def test_run_list_filters(runs, filters, expected):
    assert _names(selectors.run_list(filters=filters), runs) == expected


def test_run_list_loads_what_a_row_shows_in_a_fixed_number_of_queries(
    runs, django_assert_num_queries
):
    with django_assert_num_queries(2):  # runs, then their stages
        rows = list(selectors.run_list(filters=RunFilters()))
        for run in rows:
            _ = (run.pipeline.project.name, run.pipeline.catalog_model.name, run.model_version)
            _ = [s.name for s in run.stages.all()]
    waiting = next(r for r in rows if r.pk == runs["waiting"].pk)
    assert waiting.is_waiting and waiting.is_running


@pytest.mark.sqlite
def test_trigger_choices_name_each_reason_once(runs):
    choices = dict(selectors.trigger_choices())
    labels = list(choices.values())
    assert len(labels) == len(set(labels))
    assert {"manual", "schedule", "new data", "drift", "threshold", "resource trigger"} <= set(
        labels
    )


def test_sync_status_list_has_one_entry_per_enabled_project():
    AdoProjectFactory(name="mlops", last_sync_error_at=timezone.now(), last_sync_error="boom")
    AdoProjectFactory(name="off", enabled=False)
    (status,) = selectors.sync_status_list()
    assert status.name == "pipelines:mlops" and status.failing
    assert [p.state for p in selectors.project_freshness()] == ["failing"]


def test_run_states_are_the_ado_values():
    assert RunState.IN_PROGRESS == "inProgress"
