"""The demo's maturity history (maturity/demo_data.py): half a year in which every level
shows, a model whose level dropped lately, a manager's declaration the assessment does not
confirm, and no second seeding."""

import datetime as dt

import pytest
from django.utils import timezone

from core.roles import Role
from maturity import demo_data, selectors, services
from maturity.models import MaturityRecord, MaturitySnapshot, ModelMaturity, Result, Source
from registry.models import ModelKind
from tests.maturity.factories import AssessedRecordFactory
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db

RULE_BASED = {"transaction-screening-rules", "claims-triage-rules", "credit-limit-rules"}


@pytest.fixture
def catalog(make_user):
    make_user(Role.MANAGER, username="maya", first_name="Maya", last_name="Manager")
    return {
        name: CatalogModelFactory(
            name=name, kind=ModelKind.RULE_BASED if name in RULE_BASED else ModelKind.ML
        )
        for name in demo_data.PROGRESSIONS
    }


def test_history_covers_26_weeks_and_every_level(catalog):
    now = timezone.now()
    result = demo_data.seed_history(now=now)
    assert result["seeded"] and result["models"] == 10
    records = MaturityRecord.objects.filter(source=Source.ASSESSED)
    assert set(records.values_list("made_by", flat=True)) == {demo_data.MADE_BY}
    oldest = records.order_by("created_at").first().created_at
    assert dt.timedelta(weeks=25) < now - oldest <= dt.timedelta(weeks=26, days=1)
    snapshots = MaturitySnapshot.objects.all()
    assert snapshots.values("week").distinct().count() == demo_data.HISTORY_WEEKS
    assert set(snapshots.values_list("assessed_level", flat=True)) == {1, 2, 3, 4, 5}
    # the earliest week already shows the start of the progressions, the latest the end
    weeks = sorted(set(snapshots.values_list("week", flat=True)))
    fraud = catalog["fraud-detector"]
    assert snapshots.get(week=weeks[0], catalog_model=fraud).assessed_level == 2
    assert snapshots.get(week=weeks[-1], catalog_model=fraud).assessed_level == 5
    # the managers' trend: half a year of weeks in which the portfolio matured
    trend = selectors.trend(filters=selectors.PortfolioFilters(), weeks=27)
    assert len(trend.weeks) == demo_data.HISTORY_WEEKS
    assert trend.averages[0] == 2.0 and trend.averages[-1] > 3


def test_each_model_ends_at_its_live_level_with_consistent_results(catalog):
    demo_data.seed_history()
    expected = {
        "fraud-detector": 5,
        "churn-predictor": 4,
        "credit-scoring": 4,
        "transaction-screening-rules": 4,
        "demand-forecast": 3,
        "marketing-uplift": 3,
        "inventory-anomaly": 3,
        "credit-limit-rules": 3,
        "customer-lifetime-value": 2,
        "claims-triage-rules": 1,
    }
    statuses = ModelMaturity.objects.select_related("catalog_model", "assessed_record")
    assert {s.catalog_model.name: s.assessed_level for s in statuses} == expected
    for record in MaturityRecord.objects.filter(source=Source.ASSESSED):
        by_level = {}
        for r in record.results:
            by_level.setdefault(r["level"], set()).add(r["result"])
        for level, results in by_level.items():
            results -= {Result.NOT_APPLICABLE}
            if level <= record.level:
                assert results == {Result.PASSED}
            elif level == record.level + 1:
                assert Result.FAILED in results  # what keeps it from the next level
            elif record.catalog_model.name != "claims-triage-rules":
                assert results == {Result.FAILED}
        assert record.fingerprint == services.fingerprint(record.level, None, record.results)
        assert services.criteria.level_of(record.results) == (record.level, None)
    claims = ModelMaturity.objects.get(catalog_model=catalog["claims-triage-rules"])
    results = {r["code"]: r["result"] for r in claims.assessed_record.results}
    assert results["registered"] == Result.NOT_APPLICABLE
    assert results["pipeline-training"] == results["reproducible"] == Result.PASSED
    assert results["pipeline-deployment"] == results["traceable"] == Result.PASSED
    assert (claims.next_criterion, claims.next_result) == ("automatic-trigger", Result.FAILED)


def test_demand_forecast_dropped_lately(catalog):
    demo_data.seed_history()
    dropped = list(selectors.dropped_models())
    assert [s.catalog_model.name for s in dropped] == ["demand-forecast"]
    [status] = dropped
    assert (status.previous_assessed_level, status.assessed_level) == (4, 3)
    assert timezone.now() - status.assessed_changed_at < dt.timedelta(days=11)


def test_the_manager_declared_a_level_the_assessment_does_not_confirm(catalog):
    demo_data.seed_history()
    status = ModelMaturity.objects.get(catalog_model=catalog["marketing-uplift"])
    assert (status.declared_level, status.assessed_level, status.level) == (4, 3, 4)
    assert status.disagreement
    declared = status.declared_record
    assert declared.created_by.username == "maya" and declared.made_by == "Maya Manager"
    assert len(declared.reason) >= services.MIN_REASON_LENGTH
    assert ModelMaturity.objects.filter(disagreement=True).count() == 1


def test_not_seeded_again_when_records_exist(catalog):
    assert demo_data.seed_history()["seeded"]
    count = MaturityRecord.objects.count()
    assert demo_data.seed_history() == {"seeded": False, "records": 0, "models": 0, "snapshots": 0}
    assert MaturityRecord.objects.count() == count


def test_not_seeded_over_real_records(catalog):
    AssessedRecordFactory(catalog_model=catalog["fraud-detector"], level=2)
    assert not demo_data.seed_history()["seeded"]
    assert MaturityRecord.objects.count() == 1
    assert not MaturitySnapshot.objects.exists()


def test_only_the_demo_models_that_exist_get_history(make_user):
    CatalogModelFactory(name="credit-limit-rules", kind=ModelKind.RULE_BASED)
    CatalogModelFactory(name="someone-elses-model")
    result = demo_data.seed_history()
    assert result["models"] == 1
    names = set(MaturityRecord.objects.values_list("catalog_model__name", flat=True))
    assert names == {"credit-limit-rules"}


def test_the_history_records_levels_4_and_5_as_declared_but_the_heartbeat_as_seen(catalog):
    demo_data.seed_history()
    fraud = ModelMaturity.objects.get(catalog_model=catalog["fraud-detector"]).assessed_record
    strengths = {r["code"]: r.get("evidence_strength") for r in fraud.results}
    assert strengths["monitoring-heartbeat"] == "seen"
    assert strengths["data-triggered"] == strengths["promoted"] == "declared"
    assert strengths["ci-build"] is None


def test_the_demo_monitoring_job_is_heard_through_the_operations_intake(catalog):
    from maturity import evidence
    from operations.models import IntakeOutcome, ModelOperations, RawSignal

    assert demo_data.monitoring_report()
    raw = RawSignal.objects.get()
    assert (raw.sender, raw.outcome) == (demo_data.HEARTBEAT_SENDER, IntakeOutcome.IGNORED)
    heard = ModelOperations.objects.get(catalog_model=catalog["fraud-detector"])
    assert timezone.now() - heard.last_monitoring_signal_at < dt.timedelta(minutes=1)
    fraud = catalog["fraud-detector"]
    outcome = services.criteria.CRITERIA_BY_CODE["monitoring-heartbeat"].evaluate(
        evidence.evidence_load([fraud])[fraud.pk]
    )
    assert outcome.result == Result.PASSED and outcome.strength == "seen"


def test_no_demo_report_without_the_demo_model(db):
    from operations.models import RawSignal

    assert demo_data.monitoring_report() is False
    assert not RawSignal.objects.exists()
