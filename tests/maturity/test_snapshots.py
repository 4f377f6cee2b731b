"""Weekly snapshots (take, backfill, prune) and the read side built on them: the trend, the
distribution by team and kind, and models whose level dropped."""

import datetime as dt

import pytest
from django.utils import timezone

from maturity import receivers, selectors, services
from maturity.models import MaturitySnapshot
from maturity.selectors import PortfolioFilters
from maturity.services import week_of
from tests.maturity.factories import (
    AssessedRecordFactory,
    DeclaredRecordFactory,
    SnapshotFactory,
    set_maturity,
)
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db

ALL = PortfolioFilters()


def this_week() -> dt.date:
    return week_of(timezone.localdate())


def end_of(week: dt.date) -> dt.datetime:
    """Late on the Sunday of ``week``, in the current time zone."""
    return timezone.make_aware(dt.datetime.combine(week + dt.timedelta(days=6), dt.time(22)))


def catalog(name, **kwargs):
    return CatalogModelFactory(name=name, **kwargs)


# --- snapshot_take --------------------------------------------------------------------------------


def test_snapshot_take_writes_one_row_per_assessed_model_and_refreshes_it():
    fraud = set_maturity(
        catalog("fraud", team="risk", kind="ml", serving="batch"), assessed=2, declared=4
    )
    churn = set_maturity(catalog("churn", registry_team="growth", registry_kind="ml"), assessed=3)
    catalog("never-assessed")

    assert services.snapshot_take() == 2
    rows = {s.catalog_model_id: s for s in MaturitySnapshot.objects.all()}
    assert set(rows) == {fraud.pk, churn.pk}
    assert {s.week for s in rows.values()} == {this_week()}
    first = rows[fraud.pk]
    assert (first.team, first.kind, first.serving) == ("risk", "ml", "batch")
    assert (first.assessed_level, first.declared_level, first.level) == (2, 4, 4)
    assert (rows[churn.pk].team, rows[churn.pk].serving) == ("growth", "unknown")

    set_maturity(churn, assessed=4)
    assert services.snapshot_take() == 2
    assert MaturitySnapshot.objects.count() == 2
    refreshed = MaturitySnapshot.objects.get(catalog_model=churn)
    assert refreshed.level == 4 and refreshed.taken_at > rows[churn.pk].taken_at


def test_a_model_marked_for_assessment_but_never_assessed_has_no_snapshot():
    set_maturity(catalog("fraud"), assessed=1)
    receivers.mark_stale([catalog("churn").pk])  # a ModelMaturity row without levels
    assert services.snapshot_take() == 1
    assert MaturitySnapshot.objects.get().catalog_model.name == "fraud"


def test_snapshot_take_keys_on_the_monday_of_the_week_of_now():
    set_maturity(catalog("fraud"), assessed=1)
    sunday = timezone.make_aware(dt.datetime.combine(dt.date(2025, 3, 9), dt.time(23)))
    services.snapshot_take(now=sunday)
    services.snapshot_take(now=sunday + dt.timedelta(hours=2))  # Monday
    assert sorted(MaturitySnapshot.objects.values_list("week", flat=True)) == [
        dt.date(2025, 3, 3),
        dt.date(2025, 3, 10),
    ]


# --- snapshots_backfill ---------------------------------------------------------------------------


def test_backfill_builds_past_weeks_from_the_records_as_of_each_weeks_end():
    fraud, churn = catalog("fraud", team="risk"), catalog("churn", team="growth")
    weeks = [this_week() - dt.timedelta(weeks=n) for n in (3, 2, 1)]
    AssessedRecordFactory(catalog_model=fraud, level=1, created_at=end_of(weeks[0]))
    AssessedRecordFactory(catalog_model=fraud, level=2, created_at=end_of(weeks[1]))
    DeclaredRecordFactory(
        catalog_model=fraud, level=4, created_at=end_of(weeks[1]) + dt.timedelta(minutes=30)
    )
    AssessedRecordFactory(catalog_model=churn, level=3, created_at=end_of(weeks[2]))
    # After the last full week: not in any backfilled week.
    AssessedRecordFactory(catalog_model=churn, level=5, created_at=timezone.now())

    assert services.snapshots_backfill(weeks=3) == 4
    got = {
        (s.week, s.catalog_model_id): (s.assessed_level, s.declared_level, s.level, s.team)
        for s in MaturitySnapshot.objects.all()
    }
    assert got == {
        (weeks[0], fraud.pk): (1, None, 1, "risk"),
        (weeks[1], fraud.pk): (2, 4, 4, "risk"),  # declared beats assessed
        (weeks[2], fraud.pk): (2, 4, 4, "risk"),
        (weeks[2], churn.pk): (3, None, 3, "growth"),
    }


def test_backfill_leaves_existing_weeks_alone_and_writes_only_what_is_missing():
    fraud = catalog("fraud")
    last_week = this_week() - dt.timedelta(weeks=1)
    AssessedRecordFactory(
        catalog_model=fraud, level=2, created_at=end_of(last_week - dt.timedelta(weeks=1))
    )
    kept = SnapshotFactory(catalog_model=fraud, week=last_week, assessed_level=5)
    assert services.snapshots_backfill(weeks=2) == 1
    assert MaturitySnapshot.objects.get(pk=kept.pk).level == 5
    assert services.snapshots_backfill(weeks=2) == 0
    assert MaturitySnapshot.objects.count() == 2


def test_a_withdrawn_declaration_falls_back_to_the_assessed_level_in_the_backfill():
    fraud = catalog("fraud")
    last_week = this_week() - dt.timedelta(weeks=1)
    at = end_of(last_week) - dt.timedelta(days=2)
    AssessedRecordFactory(catalog_model=fraud, level=2, created_at=at)
    DeclaredRecordFactory(catalog_model=fraud, level=4, created_at=at + dt.timedelta(hours=1))
    DeclaredRecordFactory(catalog_model=fraud, level=None, created_at=at + dt.timedelta(hours=2))
    services.snapshots_backfill(weeks=1)
    snapshot = MaturitySnapshot.objects.get()
    assert (snapshot.declared_level, snapshot.level) == (None, 2)


# --- snapshots_prune ------------------------------------------------------------------------------


def test_prune_keeps_at_least_53_weeks_whatever_the_setting(settings):
    settings.MATURITY_SNAPSHOT_RETENTION_WEEKS = 4
    fraud = catalog("fraud")
    for weeks_back in (0, 10, 53, 54, 80):
        SnapshotFactory(catalog_model=fraud, week=this_week() - dt.timedelta(weeks=weeks_back))
    assert services.snapshots_prune() == 2
    left = sorted(
        (this_week() - w).days // 7 for w in MaturitySnapshot.objects.values_list("week", flat=True)
    )
    assert left == [0, 10, 53]


def test_prune_follows_a_longer_setting(settings):
    settings.MATURITY_SNAPSHOT_RETENTION_WEEKS = 104
    fraud = catalog("fraud")
    for weeks_back in (60, 104, 105):
        SnapshotFactory(catalog_model=fraud, week=this_week() - dt.timedelta(weeks=weeks_back))
    assert services.snapshots_prune() == 1
    assert MaturitySnapshot.objects.count() == 2


# --- trend ----------------------------------------------------------------------------------------


def test_trend_counts_levels_per_week_in_order_with_averages_and_change():
    models = [catalog(f"m{i}", team="risk" if i < 3 else "growth") for i in range(4)]
    plan = {3: [1, 1, 2, None], 1: [2, 1, 3, 3], 0: [3, 2, 3, 4]}  # weeks back -> levels
    for weeks_back, levels in plan.items():
        for model, level in zip(models, levels, strict=True):
            if level is not None:
                SnapshotFactory(
                    catalog_model=model,
                    week=this_week() - dt.timedelta(weeks=weeks_back),
                    team=model.team,
                    assessed_level=level,
                )
    trend = selectors.trend(filters=ALL)
    assert trend.weeks == [this_week() - dt.timedelta(weeks=n) for n in (3, 1, 0)]
    assert trend.counts == [{1: 2, 2: 1}, {1: 1, 2: 1, 3: 2}, {2: 1, 3: 2, 4: 1}]
    assert trend.averages == [1.33, 2.25, 3.0]
    assert trend.change_since(1) == 0.75
    assert trend.change_since(2) == 1.67
    assert trend.change_since(12) is None
    assert [row["total"] for row in trend.rows()] == [3, 4, 4]
    assert trend.chart()["labels"][0] == trend.weeks[0].isoformat()

    risk = selectors.trend(filters=PortfolioFilters(team="risk"))
    assert risk.counts[-1] == {2: 1, 3: 2}


def test_trend_leaves_out_weeks_before_the_range_and_unassessed_rows():
    fraud = catalog("fraud")
    SnapshotFactory(catalog_model=fraud, week=this_week() - dt.timedelta(weeks=60))
    SnapshotFactory(catalog_model=fraud, assessed_level=None)
    trend = selectors.trend(filters=ALL, weeks=52)
    assert (trend.weeks, trend.change_since(1)) == ([], None)


# --- distribution ---------------------------------------------------------------------------------


def test_distribution_by_team_and_by_kind_counts_unassessed_apart():
    set_maturity(catalog("a", team="risk", kind="ml"), assessed=2)
    set_maturity(catalog("b", registry_team="risk", registry_kind="rule_based"), assessed=3)
    set_maturity(catalog("c", team="growth", kind="ml"), assessed=1, declared=3)
    set_maturity(catalog("d", kind="ml"), assessed=0)
    catalog("e", team="growth")  # never assessed

    by_team = selectors.distribution(filters=ALL, by="team")
    assert by_team.groups == ["(no team)", "growth", "risk"]
    assert by_team.counts == {"risk": {2: 1, 3: 1}, "growth": {3: 1}, "(no team)": {0: 1}}
    assert by_team.unassessed == 1
    assert by_team.total == 4
    assert by_team.levels == (0, 1, 2, 3, 4, 5)
    assert [row["total"] for row in by_team.rows()] == [1, 0, 1, 2, 0, 0]

    by_kind = selectors.distribution(filters=ALL, by="kind")
    assert by_kind.counts == {"ML model": {2: 1, 3: 1, 0: 1}, "Rule-based model": {3: 1}}
    assert by_kind.unassessed == 1

    assert selectors.distribution(filters=ALL, by="nonsense").by == "team"
    ml_only = selectors.distribution(filters=PortfolioFilters(kind="ml"), by="team")
    assert ml_only.total == 3


# --- dropped models -------------------------------------------------------------------------------


def test_dropped_models_lists_recent_drops_only():
    dropped = set_maturity(catalog("dropped"), assessed=2, history=[4])
    set_maturity(catalog("rose"), assessed=4, history=[2])
    set_maturity(catalog("steady"), assessed=3, history=[3])
    set_maturity(
        catalog("long-ago"), assessed=1, history=[3], at=timezone.now() - dt.timedelta(days=45)
    )
    got = list(selectors.dropped_models())
    assert [m.pk for m in got] == [dropped.pk]
    assert (got[0].previous_assessed_level, got[0].assessed_level) == (4, 2)
