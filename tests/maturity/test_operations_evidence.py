"""Levels 4 and 5 from what operations saw (issue 15, "Maturity from what was seen"): the
episodes data-arrival and monitoring signals started, the lag from the arrival signal to the
run, monitoring's heartbeat, episodes that reached PROD, and run parameters as the weaker
evidence they are, on rows built with the apps' factories and loaded as an assessment does."""

import csv
import datetime as dt
import io

import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from core.roles import Role
from maturity import criteria, evidence, services
from maturity.criteria import Strength
from maturity.models import MaturityRecord, ModelMaturity, Result
from operations.models import EpisodeOutcome, EpisodeState, ModelOperations, SignalKind
from pipelines.models import PipelineKind
from tests.maturity.conftest import load

pytestmark = pytest.mark.django_db

DECLARED = "declared by a run parameter, not seen by the portal"


def run_url(run):
    return reverse("pipelines:run-detail", kwargs={"pk": run.pk})


def signal_url(signal):
    return reverse("operations:signal", kwargs={"pk": signal.pk})


def episode_url(episode):
    return reverse("operations:episode", kwargs={"pk": episode.pk})


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


def seen_level_5(build, model):
    """Levels 1 to 3 as usual; 4 and 5 only from operations' episodes (no run declares
    anything an episode does not stand behind)."""
    v1 = build.version(model, version=1)
    v2 = build.version(model, version=2)
    build.ci(model)
    build.training(model, model_version=v1, reason="schedule", ago=dt.timedelta(days=20))
    build.release(model, version=v1, approvers={"QA": "Alice", "PROD": "Bob"})
    build.data_arrival(model, hours=2, model_version=v1)
    build.monitoring_episode(model, version=v2)
    build.release(
        model, version=v2, approvers={"QA": "Alice", "PROD": "Bob"}, ago=dt.timedelta(hours=2)
    )
    return v1, v2


# --- L4 data-triggered: seen vs declared ---------------------------------------------------------


def test_data_triggered_passes_as_seen_on_an_episode_a_data_arrival_signal_started(build, evaluate):
    model = build.ml_model()
    signal, run, _ = build.data_arrival(model, hours=1)
    outcome = evaluate("data-triggered", model)
    assert outcome.result == Result.PASSED
    assert outcome.strength == Strength.SEEN
    assert "1 training run started by a data-arrival signal" in outcome.summary
    assert "seen by the portal" in outcome.summary and "Weaker" not in outcome.summary
    assert urls(outcome) == [signal_url(signal), run_url(run)]
    assert outcome.as_dict()["evidence_strength"] == "seen"


@pytest.mark.parametrize(
    ("reason", "trigger", "label"),
    [
        ("manual", "new-data", DECLARED),
        ("resourceTrigger", "", "declared by ADO's build reason, not seen by the portal"),
    ],
)
def test_a_run_that_only_declares_new_data_still_passes_labelled_as_weaker_evidence(
    reason, trigger, label, build, evaluate
):
    model = build.rule_model()
    run = build.training(model, reason=reason, trigger=trigger)
    outcome = evaluate("data-triggered", model)
    assert outcome.result == Result.PASSED
    assert outcome.strength == Strength.DECLARED
    assert f"Weaker evidence: {label}." in outcome.summary
    assert urls(outcome) == [run_url(run)]
    assert outcome.as_dict()["evidence_strength"] == "declared"


def test_an_episode_whose_run_failed_is_no_evidence_even_with_the_new_data_parameter(
    build, evaluate
):
    model = build.ml_model()
    _, _, episode = build.data_arrival(
        model, hours=1, result="failed", state="completed", finished_at=None
    )
    outcome = evaluate("data-triggered", model)
    assert outcome.result == Result.FAILED
    assert "1 episode started by a data-arrival signal, none with a succeeded run" in (
        outcome.summary
    )
    assert urls(outcome) == [episode_url(episode)]


# --- L4 data-lag from the arrival signal -----------------------------------------------------


def test_data_lag_is_measured_from_the_arrival_signal_with_median_and_max(build, evaluate):
    model = build.ml_model()
    slow_signal, slow_run, slow = build.data_arrival(model, hours=6, ago=dt.timedelta(days=5))
    build.data_arrival(model, hours=4, ago=dt.timedelta(days=4))
    new_signal, new_run, _ = build.data_arrival(model, hours=1, ago=dt.timedelta(days=1))
    outcome = evaluate("data-lag", model)
    assert outcome.result == Result.PASSED
    assert outcome.strength == Strength.SEEN
    assert outcome.summary == (
        "Within 24 h: median 4.0 h, max 6.0 h from the data-arrival signal to the start of the "
        "run (3 runs, seen by the portal)."
    )
    # the slowest signal -> run first, then the newest
    assert urls(outcome) == [
        signal_url(slow_signal),
        run_url(slow_run),
        signal_url(new_signal),
        run_url(new_run),
    ]
    measure = outcome.as_dict()["measure"]
    assert measure["from"] == "data-arrival signal"
    assert (measure["runs"], measure["p50_hours"], measure["max_hours"]) == (3, 4.0, 6.0)
    slowest = next(p for p in measure["pairs"] if p["episode"] == slow.pk)
    assert (slowest["signal"], slowest["run"], slowest["hours"]) == (
        slow_signal.pk,
        slow_run.pk,
        6.0,
    )


def test_the_median_decides_and_one_slow_run_shows_as_the_max(build, evaluate):
    model = build.ml_model()
    for days, hours in ((9, 1), (8, 2), (7, 30)):
        build.data_arrival(model, hours=hours, ago=dt.timedelta(days=days))
    outcome = evaluate("data-lag", model)
    assert outcome.result == Result.PASSED
    assert "median 2.0 h, max 30.0 h" in outcome.summary


def test_data_lag_counts_from_the_signals_observed_time_not_its_arrival(build, evaluate):
    model = build.ml_model()
    signal = build.signal(
        model,
        SignalKind.DATA_ARRIVAL,
        ago=dt.timedelta(days=2),
        observed_at=build.now - dt.timedelta(days=2, hours=10),  # delivered 10 h late
    )
    run = build.training(
        model,
        trigger="new-data",
        queued_at=signal.received_at + dt.timedelta(hours=1),
        started_at=signal.received_at + dt.timedelta(hours=2),
    )
    build.episode(model, signal, run=run)
    outcome = evaluate("data-lag", model)
    assert "median 12.0 h, max 12.0 h" in outcome.summary


def test_a_run_not_started_yet_is_timed_to_its_request(build, evaluate):
    build.ado()
    model = build.ml_model()
    signal = build.signal(model, SignalKind.DATA_ARRIVAL, ago=dt.timedelta(hours=5))
    build.episode(
        model,
        signal,
        state=EpisodeState.REQUESTED,
        run_requested_at=signal.observed_at + dt.timedelta(hours=3),
    )
    outcome = evaluate("data-lag", model)
    assert outcome.result == Result.PASSED
    assert "median 3.0 h, max 3.0 h" in outcome.summary


def test_data_lag_over_the_limit_fails_with_the_measured_figures(build, evaluate, settings):
    model = build.ml_model()
    build.data_arrival(model, hours=30, ago=dt.timedelta(days=3))
    outcome = evaluate("data-lag", model)
    assert outcome.result == Result.FAILED
    assert outcome.summary.startswith("Over 24 h: median 30.0 h, max 30.0 h")
    assert outcome.as_dict()["measure"]["p50_hours"] == 30.0
    settings.MATURITY_DATA_LAG_HOURS = 48
    assert evaluate("data-lag", model).result == Result.PASSED


def test_data_lag_from_a_cleansing_run_is_weaker_evidence(build, evaluate):
    model = build.ml_model()
    cleansing = build.run(model, PipelineKind.DATA_CLEANSING, ago=dt.timedelta(days=3))
    began = cleansing.finished_at + dt.timedelta(hours=2)
    run = build.training(
        model, trigger="new-data", queued_at=began - dt.timedelta(minutes=1), started_at=began
    )
    outcome = evaluate("data-lag", model)
    assert outcome.result == Result.PASSED
    assert outcome.strength == Strength.DECLARED
    assert "from the end of the data-cleansing run" in outcome.summary
    assert f"Weaker evidence: {DECLARED}." in outcome.summary
    assert urls(outcome) == [run_url(cleansing), run_url(run)]


def test_the_arrival_signal_wins_over_the_cleansing_run(build, evaluate):
    model = build.ml_model()
    cleansing = build.run(model, PipelineKind.DATA_CLEANSING, ago=dt.timedelta(days=3))
    build.training(model, trigger="new-data", queued_at=cleansing.finished_at)  # declared only
    build.data_arrival(model, hours=5)
    outcome = evaluate("data-lag", model)
    assert outcome.strength == Strength.SEEN
    assert "median 5.0 h" in outcome.summary


# --- L5 monitoring-heartbeat ------------------------------------------------------------------


def test_heartbeat_passes_with_the_count_and_last_heard_in_the_window(build, evaluate):
    model, other = build.ml_model(), build.ml_model()
    build.signal(model, SignalKind.DRIFT, ago=dt.timedelta(days=30))
    build.signal(model, SignalKind.RESOLVED, ago=dt.timedelta(days=2))
    build.signal(model, SignalKind.DATA_ARRIVAL, ago=dt.timedelta(hours=1))  # not monitoring
    build.signal(model, SignalKind.DRIFT, ago=dt.timedelta(days=120))  # before the window
    build.signal(other, SignalKind.DRIFT, ago=dt.timedelta(hours=1))
    outcome = evaluate("monitoring-heartbeat", model)
    assert outcome.result == Result.PASSED
    assert outcome.strength == Strength.SEEN
    assert "2 monitoring signals received in the last 90 days" in outcome.summary
    measure = outcome.as_dict()["measure"]
    assert measure["signals"] == 2
    assert measure["last_heard_at"] == (build.now - dt.timedelta(days=2)).isoformat()


def test_a_clean_report_alone_is_a_heartbeat(build, evaluate):
    model = build.ml_model()
    build.signal(build.ml_model(), SignalKind.DRIFT)  # a sender reached the portal
    ModelOperations.objects.create(
        catalog_model=model, last_monitoring_signal_at=build.now - dt.timedelta(hours=3)
    )
    outcome = evaluate("monitoring-heartbeat", model)
    assert outcome.result == Result.PASSED
    assert "0 monitoring signals" in outcome.summary


def test_a_heartbeat_outside_the_window_fails(build, evaluate):
    model = build.ml_model()
    build.signal(model, SignalKind.DRIFT, ago=dt.timedelta(days=91))
    outcome = evaluate("monitoring-heartbeat", model)
    assert outcome.result == Result.FAILED
    assert "more than 90 days ago" in outcome.summary
    assert outcome.as_dict()["measure"]["signals"] == 0


def test_only_data_arrival_signals_are_no_heartbeat(build, evaluate):
    model = build.ml_model()
    build.signal(model, SignalKind.DATA_ARRIVAL)
    outcome = evaluate("monitoring-heartbeat", model)
    assert outcome.result == Result.FAILED
    assert "never been heard from" in outcome.summary


def test_the_heartbeat_is_not_measured_before_any_sender_reached_the_portal(build, evaluate):
    model = build.ml_model()
    outcome = evaluate("monitoring-heartbeat", model)
    assert outcome.result == Result.NOT_MEASURED
    assert "No signal sender" in outcome.summary


# --- L5 closed-loop and promoted --------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", [SignalKind.DRIFT, SignalKind.THRESHOLD_BREACH, SignalKind.PERFORMANCE_DROP]
)
def test_closed_loop_passes_as_seen_on_an_episode_a_monitoring_signal_started(
    kind, build, evaluate
):
    model = build.ml_model()
    signal, run, _ = build.monitoring_episode(
        model, kind=kind, state=EpisodeState.EVALUATING, outcome=""
    )
    outcome = evaluate("closed-loop", model)
    assert (outcome.result, outcome.strength) == (Result.PASSED, Strength.SEEN)
    assert "started by a monitoring signal" in outcome.summary
    assert urls(outcome) == [signal_url(signal), run_url(run)]


def test_closed_loop_on_a_drift_parameter_alone_is_weaker_evidence(build, evaluate):
    model = build.ml_model()
    build.training(model, reason="manual", trigger="drift")
    outcome = evaluate("closed-loop", model)
    assert (outcome.result, outcome.strength) == (Result.PASSED, Strength.DECLARED)
    assert f"Weaker evidence: {DECLARED}." in outcome.summary


def test_a_data_arrival_episode_does_not_close_the_monitoring_loop(build, evaluate):
    model = build.ml_model()
    build.data_arrival(model, hours=1)
    assert evaluate("closed-loop", model).result == Result.FAILED


def test_promoted_passes_as_seen_on_a_closed_episode_that_reached_prod(build, evaluate):
    model = build.ml_model()
    retrained = build.version(model)
    _, _, episode = build.monitoring_episode(model, version=retrained)
    outcome = evaluate("promoted", model)
    assert (outcome.result, outcome.strength) == (Result.PASSED, Strength.SEEN)
    assert urls(outcome) == [episode_url(episode), version_url(retrained)]
    assert "promoted to PROD" in outcome.summary and "Weaker" not in outcome.summary


@pytest.mark.parametrize(
    ("state", "outcome", "says"),
    [
        (EpisodeState.IN_QA, "", "Waiting for the QA approval"),
        (EpisodeState.CLOSED, EpisodeOutcome.REJECTED, "Rejected at an approval"),
        (EpisodeState.CLOSED, EpisodeOutcome.HELD, "Held: not better than the champion"),
    ],
    ids=["waiting-at-qa", "rejected-at-qa", "held"],
)
def test_an_episode_that_stopped_short_of_prod_does_not_count_for_level_5(
    state, outcome, says, build, evaluate
):
    model = build.ml_model()
    retrained = build.version(model)
    _, _, episode = build.monitoring_episode(model, version=retrained, state=state, outcome=outcome)
    result = evaluate("promoted", model)
    assert result.result == Result.FAILED
    assert f"1 episode started by a monitoring signal did not reach PROD ({says})" in (
        result.summary
    )
    assert episode_url(episode) in urls(result)
    # its run carries trigger=drift (operations sets it): judged by the episode, not that
    assert evaluate("closed-loop", model).strength == Strength.SEEN


def test_an_episode_waiting_at_qa_is_not_a_declared_promotion_because_its_run_says_drift(
    build, evaluate
):
    """The episode's run carries trigger=drift and its version has a PROD release: a run
    parameter counts only where no episode stands behind the run."""
    model = build.ml_model()
    retrained = build.version(model)
    build.monitoring_episode(model, version=retrained, state=EpisodeState.IN_QA, outcome="")
    build.release(model, version=retrained)
    result = evaluate("promoted", model)
    assert result.result == Result.FAILED
    assert "did not reach PROD (Waiting for the QA approval)" in result.summary


def test_a_promotion_closed_before_the_window_does_not_count(build, evaluate):
    model = build.ml_model()
    build.monitoring_episode(model, version=build.version(model), ago=dt.timedelta(days=100))
    assert evaluate("promoted", model).result == Result.FAILED


def test_promoted_on_a_drift_parameter_and_a_release_is_weaker_evidence(build, evaluate):
    model = build.ml_model()
    retrained = build.version(model)
    build.training(model, trigger="drift", model_version=retrained, ago=dt.timedelta(days=1))
    release = build.release(model, version=retrained)
    outcome = evaluate("promoted", model)
    assert (outcome.result, outcome.strength) == (Result.PASSED, Strength.DECLARED)
    assert f"Weaker evidence: {DECLARED}." in outcome.summary
    assert urls(outcome) == [version_url(retrained), run_url(release)]


# --- Levels --------------------------------------------------------------------------------------


def test_a_model_seen_through_operations_holds_level_5_on_strong_evidence(build, role_client):
    model = build.ml_model()
    seen_level_5(build, model)
    assessment = criteria.assess(load(model))
    assert assessment.level == 5
    upper = {r["code"]: r for r in assessment.results if r["level"] >= 4}
    assert {code: r["result"] for code, r in upper.items()} == dict.fromkeys(upper, Result.PASSED)
    assert {r["evidence_strength"] for r in upper.values()} == {"seen"}
    client = role_client(Role.MANAGER)
    for link in {link["url"] for r in upper.values() for link in r["evidence"]}:
        assert client.get(link).status_code == 200, link


def test_level_5_on_run_parameters_is_held_but_labelled_declared(build):
    model = build.ml_model()
    build.level_5(model)
    assessment = criteria.assess(load(model))
    assert assessment.level == 5
    strengths = {r["code"]: r.get("evidence_strength") for r in assessment.results}
    assert strengths["data-triggered"] == strengths["closed-loop"] == "declared"
    assert strengths["promoted"] == "declared"
    assert strengths["monitoring-heartbeat"] == "seen"
    assert strengths["ci-build"] is None  # lower levels do not weigh their evidence


def test_without_a_heartbeat_in_the_window_level_5_does_not_hold(build):
    model = build.ml_model()
    seen_level_5(build, model)
    ModelOperations.objects.filter(catalog_model=model).update(
        last_monitoring_signal_at=build.now - dt.timedelta(days=95)
    )
    model.signals.update(received_at=build.now - dt.timedelta(days=95))
    assessment = criteria.assess(load(model))
    assert assessment.level == 4
    assert assessment.next_blocker()["code"] == "monitoring-heartbeat"


def test_from_declared_to_seen_appends_a_record(build):
    model = build.ml_model()
    build.level_5(model)
    services.model_assess(catalog_model=model)
    services.model_assess(catalog_model=model)
    assert MaturityRecord.objects.filter(catalog_model=model).count() == 1  # nothing changed
    build.data_arrival(model, hours=1)
    services.model_assess(catalog_model=model)
    records = list(MaturityRecord.objects.filter(catalog_model=model).order_by("pk"))
    assert len(records) == 2 and records[0].level == records[1].level == 5
    latest = {r["code"]: r for r in records[1].results}
    assert latest["data-triggered"]["evidence_strength"] == "seen"


def test_an_episode_that_closes_marks_its_model_for_re_assessment(build):
    from operations.services.triggering import episode_close

    model = build.ml_model()
    retrained = build.version(model)
    _, _, episode = build.monitoring_episode(
        model, version=retrained, state=EpisodeState.IN_PROD, outcome=""
    )
    services.model_assess(catalog_model=model)
    assert not ModelMaturity.objects.filter(pk=model.pk, stale_since__isnull=False).exists()
    episode.stalled_reason = "waiting"
    episode.save(update_fields=["stalled_reason"])  # still open: nothing to re-assess
    assert not ModelMaturity.objects.filter(pk=model.pk, stale_since__isnull=False).exists()
    episode_close(episode, EpisodeOutcome.REACHED_PROD, "Approved for PROD.")
    assert ModelMaturity.objects.filter(pk=model.pk, stale_since__isnull=False).exists()
    services.changed_models_assess()
    latest = MaturityRecord.objects.filter(catalog_model=model).latest("pk")
    promoted = next(r for r in latest.results if r["code"] == "promoted")
    assert (promoted["result"], promoted["evidence_strength"]) == ("passed", "seen")


# --- Pages and API --------------------------------------------------------------------------


def test_the_model_page_labels_declared_and_seen_evidence(build, role_client):
    declared, seen = build.ml_model("declared-model"), build.ml_model("seen-model")
    build.level_5(declared)
    seen_level_5(build, seen)
    services.models_assess(catalog_model_ids=[declared.pk, seen.pk])
    client = role_client(Role.MANAGER)

    def criterion(name, code):
        response = client.get(reverse("registry:model-detail", kwargs={"name": name}))
        assert response.status_code == 200
        soup = BeautifulSoup(response.content, "html.parser")
        return soup.select_one(f"[data-testid=maturity-section] [data-criterion={code}]")

    weak = criterion("declared-model", "closed-loop")
    assert weak.select_one("[data-testid=criterion-declared]") is not None
    assert "Weaker evidence: declared, not seen" in weak.get_text()
    assert DECLARED in weak.select_one("[data-testid=criterion-summary]").get_text()
    assert weak.select_one("[data-testid=criterion-seen]") is None
    strong = criterion("seen-model", "closed-loop")
    assert strong.select_one("[data-testid=criterion-seen]") is not None
    assert strong.select_one("[data-testid=criterion-declared]") is None
    lag = criterion("seen-model", "data-lag").select_one("[data-testid=criterion-summary]")
    assert "median 2.0 h, max 2.0 h from the data-arrival signal" in lag.get_text()
    ci = criterion("seen-model", "ci-build")
    assert not ci.select("[data-testid=criterion-seen], [data-testid=criterion-declared]")


def test_the_dashboard_the_csv_and_the_model_page_flag_a_level_held_on_declared_evidence(
    build, role_client
):
    declared, seen = build.ml_model("declared-model"), build.ml_model("seen-model")
    build.level_5(declared)
    seen_level_5(build, seen)
    services.models_assess(catalog_model_ids=[declared.pk, seen.pk])
    assert ModelMaturity.objects.get(pk=declared.pk).declared_evidence is True
    assert ModelMaturity.objects.get(pk=seen.pk).declared_evidence is False
    client = role_client(Role.MANAGER)
    soup = BeautifulSoup(client.get(reverse("maturity:dashboard")).content, "html.parser")
    flagged = {
        row["data-model"]
        for row in soup.select("tr[data-model]")
        if row.select_one("[data-testid=declared-evidence]")
    }
    assert flagged == {"declared-model"}
    response = client.get(reverse("maturity:dashboard-csv"))
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    by_name = {r["model"]: r["assessed_on_declared_evidence"] for r in rows}
    assert by_name == {"declared-model": "yes", "seen-model": "no"}
    for name, shown in (("declared-model", True), ("seen-model", False)):
        page = client.get(reverse("registry:model-detail", kwargs={"name": name}))
        note = BeautifulSoup(page.content, "html.parser").select_one(
            "[data-testid=assessed-declared-evidence]"
        )
        assert (note is not None) == shown, name
    # the flag is derived from the records: a rebuild gives it back
    ModelMaturity.objects.update(declared_evidence=False)
    services.model_maturity_rebuild()
    assert ModelMaturity.objects.get(pk=declared.pk).declared_evidence is True


def test_the_api_gives_each_result_its_evidence_strength_and_measure(build, make_user):
    model = build.ml_model("seen-model")
    seen_level_5(build, model)
    services.model_assess(catalog_model=model)
    client = APIClient()
    client.force_login(make_user(Role.DATA_SCIENTIST))
    response = client.get(reverse("api:maturity:model-detail", kwargs={"name": model.name}))
    assert response.status_code == 200
    by_code = {c["code"]: c for c in response.json()["criteria"]}
    assert by_code["data-lag"]["evidence_strength"] == "seen"
    assert by_code["data-lag"]["measure"]["p50_hours"] == 2.0
    assert by_code["monitoring-heartbeat"]["measure"]["signals"] == 1
    assert by_code["ci-build"]["evidence_strength"] == ""
    assert by_code["ci-build"]["measure"] is None
    assert response.json()["assessed"]["declared_evidence"] is False
    listed = client.get(reverse("api:maturity:model-list")).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [r["declared_evidence"] for r in rows if r["name"] == model.name] == [False]


# --- Queries ---------------------------------------------------------------------------------


def _queries_of_load(models) -> int:
    with CaptureQueriesContext(connection) as captured:
        found = evidence.evidence_load(models)
    assert all(found[m.pk].episodes and found[m.pk].heartbeat for m in models)
    return len(captured)


def test_the_operations_evidence_of_a_batch_is_a_fixed_number_of_queries(
    build, django_assert_max_num_queries
):
    models = [build.ml_model() for _ in range(8)]
    for model in models:
        seen_level_5(build, model)
        build.data_arrival(model, hours=3, ago=dt.timedelta(days=6))
        build.signal(model, SignalKind.RESOLVED)
    few = _queries_of_load(models[:2])
    assert _queries_of_load(models) == few  # the dashboard's batch does not grow the count
    with django_assert_max_num_queries(12):
        found = evidence.evidence_load(models)
    assert all(len(found[m.pk].episodes) == 3 for m in models)
    assert all(found[m.pk].heartbeat.signals == 2 for m in models)
    # an assessment of the batch that changes nothing reads and writes as much for 8 as for 2
    ids = [m.pk for m in models]
    services.models_assess(catalog_model_ids=ids)
    with CaptureQueriesContext(connection) as two:
        services.models_assess(catalog_model_ids=ids[:2])
    with CaptureQueriesContext(connection) as eight:
        stats = services.models_assess(catalog_model_ids=ids)
    assert stats.unchanged == 8 and stats.levels == {5: 8}
    assert len(eight) == len(two)


def test_the_criteria_page_explains_seen_and_declared_evidence(role_client):
    response = role_client(Role.APPROVER).get(reverse("maturity:criteria"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-code="monitoring-heartbeat"' in html and "Monitoring is heard from" in html
    assert f"labelled as weaker evidence: {DECLARED}" in html
