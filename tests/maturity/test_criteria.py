"""Each of the 13 criteria on rows built with the apps' factories and loaded by
``evidence.evidence_load``, as an assessment reads them: data that passes, data that fails,
data the portal cannot see (not measured) and models the criterion does not apply to."""

import datetime as dt

import pytest
from django.urls import reverse

from maturity import criteria, evidence
from maturity.criteria import CRITERIA, CRITERIA_BY_CODE
from maturity.models import Result
from pipelines.models import PipelineKind, PipelineRun
from tests.maturity.conftest import REPRODUCIBLE_TAGS, load

pytestmark = pytest.mark.django_db

# Monitoring's heartbeat is what signal senders say, not ADO.
ADO_CRITERIA = [c.code for c in CRITERIA if c.code not in ("registered", "monitoring-heartbeat")]
ML_ONLY = ["promoted", "registered"]


def run_url(run):
    return reverse("pipelines:run-detail", kwargs={"pk": run.pk})


def version_url(version):
    registered = version.registered_model
    return reverse(
        "registry:version-detail",
        kwargs={
            "source": registered.source.name,
            "name": registered.name,
            "version": version.version,
        },
    )


def urls(outcome):
    return [link.url for link in outcome.evidence]


def test_the_catalogue_has_thirteen_criteria_two_to_three_per_level():
    assert len(CRITERIA) == 13
    assert len(CRITERIA_BY_CODE) == 13
    assert sorted({c.level for c in CRITERIA}) == [1, 2, 3, 4, 5]


# --- Not measured and not applicable, across criteria -------------------------------------------


@pytest.mark.parametrize("code", [c for c in ADO_CRITERIA if c != "reproducible"])
def test_without_a_synced_ado_project_every_ado_criterion_is_not_measured(code, build, evaluate):
    model = build.ml_model()
    build.level_5(model)
    assert evaluate(code, model).result == Result.PASSED  # the same rows, synced
    build.ado(synced=False)
    outcome = evaluate(code, model)
    assert outcome.result == Result.NOT_MEASURED
    assert "Azure DevOps" in outcome.summary
    assert outcome.evidence == []


@pytest.mark.parametrize("code", ["registered", "reproducible", "traceable"])
def test_without_a_synced_registry_the_version_criteria_are_not_measured(code, build, evaluate):
    model = build.ml_model()
    build.level_5(model)
    assert evaluate(code, model).result == Result.PASSED
    build.registry(synced=False)
    outcome = evaluate(code, model)
    assert outcome.result == Result.NOT_MEASURED
    assert "registry" in outcome.summary


@pytest.mark.parametrize("code", ML_ONLY)
def test_ml_only_criteria_do_not_apply_to_rule_based_models(code, build, evaluate):
    model = build.rule_model()
    build.ci(model)
    build.training(model)
    outcome = evaluate(code, model)
    assert outcome.result == Result.NOT_APPLICABLE
    assert outcome.summary == "Applies to ML models only."


def test_a_catalog_model_of_unknown_kind_is_checked_as_an_ml_model(build, evaluate):
    model = build.ml_model()
    model.registry_kind = ""
    model.save()
    assert load(model).is_rule_based is False
    assert evaluate("registered", model).result == Result.FAILED  # applies; no version yet


def test_every_criterion_applies_to_ml_models_and_all_but_two_to_rule_based_ones(build):
    ml, rules = build.ml_model(), build.rule_model()
    found = evidence.evidence_load([ml, rules])
    ml_results = {c.code: c.evaluate(found[ml.pk]).result for c in CRITERIA}
    rule_results = {c.code: c.evaluate(found[rules.pk]).result for c in CRITERIA}
    assert Result.NOT_APPLICABLE not in ml_results.values()
    assert sorted(k for k, v in rule_results.items() if v == Result.NOT_APPLICABLE) == ML_ONLY


# --- L1 ci-build --------------------------------------------------------------------------------


def test_ci_build_passes_on_a_successful_push_or_pull_request_run(build, evaluate):
    model = build.ml_model()
    push = build.ci(model, reason="individualCI")
    pull = build.ci(model, reason="pullRequest", ago=dt.timedelta(hours=2))
    outcome = evaluate("ci-build", model)
    assert outcome.result == Result.PASSED
    assert outcome.summary.startswith("2 successful CI runs")
    assert urls(outcome) == [run_url(push), run_url(pull)]


@pytest.mark.parametrize(
    ("runs", "says"),
    [
        ([], "has no CI pipeline"),
        ([{"reason": "manual"}], "both succeeded"),
        ([{"reason": "individualCI", "result": "failed"}], "both succeeded"),
        ([{"reason": "batchedCI", "ago": dt.timedelta(days=91)}], "has not run in the last 90"),
    ],
    ids=["no-pipeline", "manual", "failed", "outside-window"],
)
def test_ci_build_fails_without_a_successful_push_run_in_the_window(runs, says, build, evaluate):
    model = build.ml_model()
    build.ado()
    for kwargs in runs:
        build.ci(model, **kwargs)
    outcome = evaluate("ci-build", model)
    assert outcome.result == Result.FAILED
    assert says in outcome.summary


def test_the_window_follows_the_setting(build, evaluate, settings):
    model = build.rule_model()
    build.ci(model, ago=dt.timedelta(days=10))
    assert evaluate("ci-build", model).result == Result.PASSED
    settings.MATURITY_WINDOW_DAYS = 7
    outcome = evaluate("ci-build", model)
    assert outcome.result == Result.FAILED
    assert "last 7 days" in outcome.summary


def test_a_run_queued_just_inside_the_window_counts_and_just_outside_does_not(build):
    model = build.ml_model()
    inside = build.ci(model, ago=dt.timedelta(days=90) - dt.timedelta(minutes=5))
    build.ci(model, ago=dt.timedelta(days=90, minutes=5))
    assert [r.pk for r in load(model, now=build.now).runs] == [inside.pk]


# --- L1 registered ------------------------------------------------------------------------------


def test_registered_passes_with_a_version_and_links_the_latest(build, evaluate):
    model = build.ml_model()
    build.version(model, version=1)
    latest = build.version(model, version=3)
    outcome = evaluate("registered", model)
    assert outcome.result == Result.PASSED
    assert "latest is v3" in outcome.summary
    assert urls(outcome) == [version_url(latest)]


def test_registered_fails_without_a_version_or_when_it_was_deleted_upstream(build, evaluate):
    model = build.ml_model()
    assert evaluate("registered", model).result == Result.FAILED
    version = build.version(model)
    version.deleted_upstream_at = build.now
    version.save()
    outcome = evaluate("registered", model)
    assert outcome.result == Result.FAILED
    assert "No version" in outcome.summary


def test_registered_ignores_versions_of_a_registered_model_deleted_upstream(build, evaluate):
    model = build.ml_model()
    version = build.version(model)
    version.registered_model.deleted_upstream_at = build.now
    version.registered_model.save()
    assert evaluate("registered", model).result == Result.FAILED


# --- L2 pipeline-training -----------------------------------------------------------------------


def test_pipeline_training_passes_on_a_training_run_that_registered_a_version(build, evaluate):
    model = build.ml_model()
    version = build.version(model)
    run = build.training(model, model_version=version)
    outcome = evaluate("pipeline-training", model)
    assert outcome.result == Result.PASSED
    assert urls(outcome) == [run_url(run), version_url(version)]


def test_pipeline_training_of_a_rule_based_model_is_its_scoring_run(build, evaluate):
    model = build.rule_model()
    build.run(model, PipelineKind.TRAINING)  # not its kind of pipeline
    assert evaluate("pipeline-training", model).result == Result.FAILED
    scoring = build.training(model)
    assert scoring.pipeline.kind == PipelineKind.SCORING
    outcome = evaluate("pipeline-training", model)
    assert outcome.result == Result.PASSED
    assert "scoring run" in outcome.summary


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("no-pipeline", "has no training pipeline"),
        ("failed-run", "No successful training pipeline run"),
        ("unlinked", "none is linked to a registered version"),
    ],
)
def test_pipeline_training_fails(case, says, build, evaluate):
    model = build.ml_model()
    build.version(model)
    build.ado()
    if case == "failed-run":
        build.training(model, result="failed")
    if case == "unlinked":
        build.training(model)
    outcome = evaluate("pipeline-training", model)
    assert outcome.result == Result.FAILED
    assert says in outcome.summary


def test_pipeline_training_unlinked_runs_are_not_measured_without_the_registry(build, evaluate):
    model = build.ml_model()
    build.training(model)
    build.registry(synced=False)
    assert evaluate("pipeline-training", model).result == Result.NOT_MEASURED


# --- L2 reproducible ----------------------------------------------------------------------------


def test_reproducible_passes_when_the_version_records_run_commit_and_data(build, evaluate):
    model = build.ml_model()
    version = build.version(model)
    outcome = evaluate("reproducible", model)
    assert outcome.result == Result.PASSED
    assert "commit 0123456789ab and data 2025-03-01" in outcome.summary
    assert urls(outcome) == [version_url(version)]


def test_reproducible_reads_the_tags_of_the_mlflow_run_too(build, evaluate):
    model = build.ml_model()
    build.version(
        model,
        reproducible=False,
        run_tags={"git_commit": "abc123", "dataset_version": "7"},
        run_fetched_at=build.now,
    )
    assert evaluate("reproducible", model).result == Result.PASSED


def test_reproducible_checks_the_version_the_latest_training_run_made(build, evaluate):
    model = build.ml_model()
    trained = build.version(model, version=1, reproducible=False, run_fetched_at=build.now)
    build.version(model, version=2)  # registered by hand, tagged: not what the pipeline made
    build.training(model, model_version=trained)
    outcome = evaluate("reproducible", model)
    assert outcome.result == Result.FAILED
    assert outcome.summary.startswith("v1 lacks")


@pytest.mark.parametrize(
    ("kwargs", "lacks"),
    [
        ({"tags": {"mlflow.source.git.commit": "abc"}}, "a data version tag"),
        ({"tags": {"data_snapshot": "d1"}}, "a code commit tag"),
        ({"tags": dict(REPRODUCIBLE_TAGS), "run_id": ""}, "an MLflow run"),
    ],
    ids=["no-data-tag", "no-commit-tag", "no-run"],
)
def test_reproducible_fails_when_a_part_is_missing(kwargs, lacks, build, evaluate):
    model = build.ml_model()
    build.version(model, reproducible=False, run_fetched_at=build.now, **kwargs)
    outcome = evaluate("reproducible", model)
    assert outcome.result == Result.FAILED
    assert lacks in outcome.summary


def test_reproducible_fails_without_a_version(build, evaluate):
    model = build.ml_model()
    assert evaluate("reproducible", model).result == Result.FAILED


@pytest.mark.parametrize("error", ["", "RESOURCE_DOES_NOT_EXIST"], ids=["never-read", "error"])
def test_reproducible_is_not_measured_while_the_run_tags_are_unread(error, build, evaluate):
    model = build.ml_model()
    build.version(
        model,
        reproducible=False,
        run_fetched_at=build.now if error else None,
        run_fetch_error=error,
    )
    outcome = evaluate("reproducible", model)
    assert outcome.result == Result.NOT_MEASURED
    assert "could not be read" in outcome.summary


def test_reproducible_of_a_rule_based_model_is_a_commit_on_its_latest_scoring_run(build, evaluate):
    model = build.rule_model()
    assert evaluate("reproducible", model).result == Result.NOT_MEASURED  # no ADO yet
    build.ado()
    assert evaluate("reproducible", model).result == Result.FAILED  # no run
    build.training(model, source_version="", ago=dt.timedelta(hours=3))
    pinned = build.training(model, ago=dt.timedelta(hours=2))
    outcome = evaluate("reproducible", model)
    assert outcome.result == Result.PASSED
    assert urls(outcome) == [run_url(pinned)]
    unpinned = build.training(model, source_version="")
    outcome = evaluate("reproducible", model)
    assert outcome.result == Result.FAILED
    assert urls(outcome) == [run_url(unpinned)]


# --- L2 automatic-trigger -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "trigger"),
    [("schedule", ""), ("resourceTrigger", ""), ("manual", "new-data"), ("manual", "drift")],
)
def test_automatic_trigger_passes_on_a_run_no_person_started(reason, trigger, build, evaluate):
    model = build.ml_model()
    run = build.training(model, reason=reason, trigger=trigger)
    outcome = evaluate("automatic-trigger", model)
    assert outcome.result == Result.PASSED
    assert urls(outcome) == [run_url(run)]


def test_automatic_trigger_fails_when_every_run_was_started_by_hand(build, evaluate):
    model = build.ml_model()
    build.ado()
    outcome = evaluate("automatic-trigger", model)
    assert (outcome.result, outcome.summary) == (
        Result.FAILED,
        "No training run in the last 90 days.",
    )
    build.training(model, reason="manual", trigger="manual")
    outcome = evaluate("automatic-trigger", model)
    assert outcome.result == Result.FAILED
    assert "started by hand" in outcome.summary


# --- L3 pipeline-deployment ---------------------------------------------------------------------


def test_pipeline_deployment_passes_when_a_release_reached_prod(build, evaluate):
    model = build.ml_model()
    release = build.release(model)
    outcome = evaluate("pipeline-deployment", model)
    assert outcome.result == Result.PASSED
    assert urls(outcome) == [run_url(release)]


def test_pipeline_deployment_fails_without_a_prod_stage_that_succeeded(build, evaluate):
    model = build.ml_model()
    build.ado()
    assert "no release pipeline" in evaluate("pipeline-deployment", model).summary
    build.release(model, prod="failed")
    outcome = evaluate("pipeline-deployment", model)
    assert outcome.result == Result.FAILED
    assert "No release run reached PROD" in outcome.summary


def test_pipeline_deployment_is_not_measured_while_release_stages_are_unread(build, evaluate):
    model = build.ml_model()
    build.release(model, timeline_synced_at=None)
    outcome = evaluate("pipeline-deployment", model)
    assert outcome.result == Result.NOT_MEASURED
    assert "have not been read" in outcome.summary


# --- L3 gated-promotion -------------------------------------------------------------------------


def test_gated_promotion_passes_with_qa_and_prod_approved_by_two_people(build, evaluate):
    model = build.ml_model()
    release = build.release(model, approvers={"QA": "Alice", "PROD": "Bob"})
    outcome = evaluate("gated-promotion", model)
    assert outcome.result == Result.PASSED
    approvals = release.approval_requests.order_by("environment")  # PROD, QA
    assert sorted(urls(outcome)) == sorted(
        reverse("approvals:detail", kwargs={"pk": a.pk}) for a in approvals
    )


def test_gated_promotion_passes_on_approval_checks_alone_when_the_portal_has_no_requests(
    build, evaluate
):
    model = build.rule_model()
    release = build.release(model)
    outcome = evaluate("gated-promotion", model)
    assert outcome.result == Result.PASSED
    assert urls(outcome) == [run_url(release)]


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"gated": ("QA",)}, "skipped a QA or PROD approval"),
        ({"gated": ()}, "skipped a QA or PROD approval"),
        ({"approvers": {"QA": "Alice", "PROD": "alice"}}, "by the same person"),
        ({"prod": "failed"}, "No PROD deployment to check"),
    ],
    ids=["prod-ungated", "ungated", "one-person", "not-deployed"],
)
def test_gated_promotion_fails(kwargs, says, build, evaluate):
    model = build.ml_model()
    build.release(model, **kwargs)
    outcome = evaluate("gated-promotion", model)
    assert outcome.result == Result.FAILED
    assert says in outcome.summary


def test_one_ungated_deployment_fails_gated_promotion_beside_gated_ones(build, evaluate):
    model = build.ml_model()
    build.release(model, approvers={"QA": "Alice", "PROD": "Bob"}, ago=dt.timedelta(days=2))
    ungated = build.release(model, gated=("QA",))
    outcome = evaluate("gated-promotion", model)
    assert outcome.result == Result.FAILED
    assert urls(outcome) == [run_url(ungated)]


@pytest.mark.parametrize("code", ["gated-promotion", "traceable"])
def test_l3_criteria_are_not_measured_while_release_stages_are_unread(code, build, evaluate):
    model = build.ml_model()
    version = build.version(model)
    build.release(model, version=version, timeline_synced_at=None)
    outcome = evaluate(code, model)
    assert outcome.result == Result.NOT_MEASURED
    assert "have not been read" in outcome.summary


# --- L3 traceable -------------------------------------------------------------------------------


def test_traceable_passes_when_the_deployed_version_has_its_run_and_data(build, evaluate):
    model = build.ml_model()
    version = build.version(model)
    release = build.release(model, version=version)
    outcome = evaluate("traceable", model)
    assert outcome.result == Result.PASSED
    assert urls(outcome) == [run_url(release), version_url(version)]


@pytest.mark.parametrize(
    "case", ["no-version", "version-without-data-tag", "version-without-run", "not-deployed"]
)
def test_traceable_fails(case, build, evaluate):
    model = build.ml_model()
    version = None
    if case == "version-without-data-tag":
        version = build.version(model, reproducible=False, tags={"git_commit": "abc"})
    if case == "version-without-run":
        version = build.version(model, run_id="")
    build.release(model, version=version, prod="failed" if case == "not-deployed" else "succeeded")
    assert evaluate("traceable", model).result == Result.FAILED


def test_traceable_of_a_rule_based_model_is_a_commit_on_each_deployment(build, evaluate):
    model = build.rule_model()
    release = build.release(model)
    assert urls(evaluate("traceable", model)) == [run_url(release)]
    unpinned = build.release(model, source_version="")
    outcome = evaluate("traceable", model)
    assert outcome.result == Result.FAILED
    assert urls(outcome) == [run_url(unpinned)]


# --- L4 data-triggered --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "trigger"),
    [("resourceTrigger", ""), ("buildCompletion", ""), ("manual", "new-data")],
)
def test_data_triggered_passes_on_a_run_new_data_started(reason, trigger, build, evaluate):
    model = build.rule_model()
    run = build.training(model, reason=reason, trigger=trigger)
    outcome = evaluate("data-triggered", model)
    assert outcome.result == Result.PASSED
    assert "scoring run started by new data" in outcome.summary
    assert urls(outcome) == [run_url(run)]


@pytest.mark.parametrize(
    "kwargs",
    [{"reason": "schedule"}, {"reason": "resourceTrigger", "result": "failed"}],
    ids=["on-a-clock", "failed"],
)
def test_data_triggered_fails_without_a_successful_data_run(kwargs, build, evaluate):
    model = build.ml_model()
    build.training(model, **kwargs)
    assert evaluate("data-triggered", model).result == Result.FAILED


# --- L4 data-lag --------------------------------------------------------------------------------


def data_run_after_cleansing(build, model, hours: float, **kwargs):
    cleansing = build.run(model, PipelineKind.DATA_CLEANSING, ago=dt.timedelta(days=3))
    began = cleansing.finished_at + dt.timedelta(hours=hours)
    run = build.training(
        model, reason="resourceTrigger", queued_at=began - dt.timedelta(minutes=1), started_at=began
    )
    return cleansing, run


def test_data_lag_passes_within_a_day_of_the_data_arriving(build, evaluate):
    model = build.ml_model()
    cleansing, run = data_run_after_cleansing(build, model, hours=2)
    outcome = evaluate("data-lag", model)
    assert outcome.result == Result.PASSED
    assert "median 2.0 h" in outcome.summary
    assert urls(outcome) == [run_url(cleansing), run_url(run)]


def test_data_lag_fails_over_the_limit(build, evaluate, settings):
    model = build.ml_model()
    data_run_after_cleansing(build, model, hours=30)
    outcome = evaluate("data-lag", model)
    assert outcome.result == Result.FAILED
    assert outcome.summary.startswith("Over 24 h: median 30.0 h")


def test_data_lag_limit_is_a_setting(build, evaluate, settings):
    model = build.ml_model()
    data_run_after_cleansing(build, model, hours=2)
    settings.MATURITY_DATA_LAG_HOURS = 1
    assert evaluate("data-lag", model).result == Result.FAILED


def test_data_lag_fails_without_a_data_triggered_run(build, evaluate):
    model = build.ml_model()
    build.run(model, PipelineKind.DATA_CLEANSING)
    build.training(model, reason="schedule")
    outcome = evaluate("data-lag", model)
    assert (outcome.result, outcome.summary) == (Result.FAILED, "No data-triggered run to time.")


@pytest.mark.parametrize("case", ["no-cleansing", "cleansing-after", "cleansing-8-days-before"])
def test_data_lag_is_not_measured_without_a_cleansing_run_before(case, build, evaluate):
    model = build.ml_model()
    run = build.training(model, reason="resourceTrigger", ago=dt.timedelta(days=10))
    if case == "cleansing-after":
        build.run(model, PipelineKind.DATA_CLEANSING, ago=dt.timedelta(days=9))
    if case == "cleansing-8-days-before":
        build.run(
            model,
            PipelineKind.DATA_CLEANSING,
            queued_at=run.started_at - dt.timedelta(days=8, minutes=30),
        )
    outcome = evaluate("data-lag", model)
    assert outcome.result == Result.NOT_MEASURED
    assert "data-cleansing" in outcome.summary


def test_data_lag_copes_with_cleansing_runs_that_finished_at_the_same_time(build, evaluate):
    model = build.ml_model()
    cleansing, _ = data_run_after_cleansing(build, model, hours=2)
    build.run(
        model,
        PipelineKind.DATA_CLEANSING,
        queued_at=cleansing.queued_at,
        started_at=cleansing.started_at,
        finished_at=cleansing.finished_at,
    )
    assert evaluate("data-lag", model).result == Result.PASSED


# --- L5 closed-loop -----------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", ["drift", "threshold"])
def test_closed_loop_passes_on_a_run_a_monitoring_signal_started(trigger, build, evaluate):
    model = build.ml_model()
    run = build.training(model, reason="manual", trigger=trigger)
    outcome = evaluate("closed-loop", model)
    assert outcome.result == Result.PASSED
    assert urls(outcome) == [run_url(run)]


def test_closed_loop_fails_without_a_successful_monitoring_run(build, evaluate):
    model = build.ml_model()
    build.training(model, reason="schedule")
    build.training(model, trigger="drift", result="failed")
    outcome = evaluate("closed-loop", model)
    assert outcome.result == Result.FAILED
    assert "drift or threshold" in outcome.summary


# --- L5 promoted --------------------------------------------------------------------------------


def test_promoted_passes_when_the_retrained_version_reached_prod(build, evaluate):
    model = build.ml_model()
    retrained = build.version(model)
    build.training(model, trigger="drift", model_version=retrained, ago=dt.timedelta(days=1))
    release = build.release(model, version=retrained)
    outcome = evaluate("promoted", model)
    assert outcome.result == Result.PASSED
    assert urls(outcome) == [version_url(retrained), run_url(release)]


def test_promoted_fails_when_only_an_older_version_reached_prod(build, evaluate):
    model = build.ml_model()
    old, retrained = build.version(model, version=1), build.version(model, version=2)
    build.training(model, trigger="drift", model_version=retrained)
    build.release(model, version=old)
    build.release(model, version=retrained, prod="failed")
    outcome = evaluate("promoted", model)
    assert outcome.result == Result.FAILED
    assert urls(outcome) == [version_url(retrained)]


def test_promoted_fails_without_a_monitoring_run(build, evaluate):
    model = build.ml_model()
    build.release(model, version=build.version(model))
    outcome = evaluate("promoted", model)
    assert outcome.result == Result.FAILED
    assert "No drift" in outcome.summary


def test_promoted_is_not_measured_when_drift_runs_are_not_linked_to_a_version(build, evaluate):
    model = build.ml_model()
    build.training(model, trigger="drift")
    build.release(model, version=build.version(model))
    outcome = evaluate("promoted", model)
    assert outcome.result == Result.NOT_MEASURED
    assert "not linked to a registered version" in outcome.summary


def test_promoted_is_not_measured_while_the_release_stages_are_unread(build, evaluate):
    model = build.ml_model()
    retrained = build.version(model)
    build.training(model, trigger="drift", model_version=retrained)
    build.release(model, version=retrained, timeline_synced_at=None)
    assert evaluate("promoted", model).result == Result.NOT_MEASURED


# --- Evidence ---------------------------------------------------------------------------------


def test_a_full_ml_model_passes_every_criterion_and_its_links_open(build, role_client):
    model = build.ml_model()
    build.level_5(model)
    assessment = criteria.assess(load(model))
    assert {r["code"]: r["result"] for r in assessment.results} == {
        c.code: Result.PASSED for c in CRITERIA
    }
    assert assessment.level == 5
    links = {link["url"] for r in assessment.results for link in r["evidence"]}
    assert len(links) >= 8
    client = role_client("manager", "approver")
    for url in links:
        assert client.get(url).status_code == 200, url


def test_evidence_is_capped_at_five_links_per_criterion(build):
    model = build.ml_model()
    for hours in range(1, 8):
        build.ci(model, ago=dt.timedelta(hours=hours))
    outcome = CRITERIA_BY_CODE["ci-build"].evaluate(load(model))
    assert len(outcome.evidence) == 7
    assert len(outcome.as_dict()["evidence"]) == criteria.MAX_EVIDENCE


def test_evidence_of_one_model_never_leaks_into_another(build):
    one, other = build.ml_model(), build.ml_model()
    build.level_5(one)
    found = evidence.evidence_load([one, other])
    assert found[other.pk].runs == [] and found[other.pk].versions == {}
    assert {r.pk for r in found[one.pk].runs} == set(
        PipelineRun.objects.filter(pipeline__catalog_model=one).values_list("pk", flat=True)
    )


def test_evidence_load_reads_a_batch_in_a_fixed_number_of_queries(
    build, django_assert_max_num_queries
):
    models = [build.ml_model() for _ in range(4)]
    for model in models:
        build.level_5(model)
    with django_assert_max_num_queries(12):  # 9, and operations' episodes and heartbeats
        found = evidence.evidence_load(models)
    assert all(len(found[m.pk].runs) == 7 for m in models)
