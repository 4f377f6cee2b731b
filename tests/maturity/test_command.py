"""manage.py assess_maturity: assesses all or the named models, writes only changes, prints a
summary, refreshes and backfills snapshots, and refuses unknown names clearly."""

import datetime as dt

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from maturity import services
from maturity.management.commands.assess_maturity import MADE_BY
from maturity.models import MaturityRecord, MaturitySnapshot, ModelMaturity
from tests.maturity.factories import AssessedRecordFactory
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio(build):
    """An ML model at level 5 and a rule set scored by hand (level 1), both sources synced."""
    build.ado()
    build.registry()
    top = build.ml_model("fraud-detector")
    build.level_5(top)
    rules = build.rule_model("claims-triage-rules")
    build.ci(rules)
    build.training(rules, reason="manual")
    return top, rules


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("assess_maturity", *args, stdout=out)
    return out.getvalue()


def test_assesses_every_model_and_prints_the_levels(portfolio):
    top, rules = portfolio
    out = run()
    assert "Assessed 2 models: 2 written (level or a result changed), 0 unchanged." in out
    assert "models per level: L1 1, L2 0, L3 0, L4 0, L5 1" in out
    assert "written: claims-triage-rules at L1" in out
    assert "written: fraud-detector at L5" in out
    assert ModelMaturity.objects.get(pk=top.pk).assessed_level == 5
    assert ModelMaturity.objects.get(pk=rules.pk).assessed_level == 1
    assert set(MaturityRecord.objects.values_list("made_by", flat=True)) == {MADE_BY}


def test_a_second_run_writes_nothing_new(portfolio):
    run()
    records = MaturityRecord.objects.count()
    out = run()
    assert "Assessed 2 models: 0 written (level or a result changed), 2 unchanged." in out
    assert "written:" not in out
    assert MaturityRecord.objects.count() == records


def test_assesses_only_the_named_models(portfolio):
    _top, rules = portfolio
    out = run("--model", "claims-triage-rules")
    assert "Assessed 1 model: 1 written" in out
    assert list(MaturityRecord.objects.values_list("catalog_model", flat=True)) == [rules.pk]
    out = run("--model", "claims-triage-rules", "fraud-detector")
    assert "Assessed 2 models: 1 written" in out
    run("--model", "fraud-detector", "--model", "claims-triage-rules")
    assert MaturityRecord.objects.count() == 2


def test_an_unknown_model_name_is_a_clear_error_and_assesses_nothing(portfolio):
    with pytest.raises(CommandError, match=r"No catalog model named 'nope', 'gone'") as error:
        run("--model", "fraud-detector", "nope", "--model", "gone")
    assert error.value.returncode == 1
    assert not MaturityRecord.objects.exists()


def test_snapshot_refreshes_this_week_and_prunes_old_rows(portfolio, settings):
    top, _rules = portfolio
    settings.MATURITY_SNAPSHOT_RETENTION_WEEKS = 60
    this_week = services.week_of(timezone.localdate())
    MaturitySnapshot.objects.create(
        week=this_week - dt.timedelta(weeks=80), catalog_model=top, level=2, taken_at=timezone.now()
    )
    out = run("--snapshot")
    assert "Snapshot of this week refreshed: 2 models (1 old rows pruned)." in out
    rows = MaturitySnapshot.objects.order_by("catalog_model__name")
    assert [(s.week, s.catalog_model.name, s.level) for s in rows] == [
        (this_week, "claims-triage-rules", 1),
        (this_week, "fraud-detector", 5),
    ]


def test_backfill_weeks_fills_missing_weeks_from_the_records(portfolio):
    top, _rules = portfolio
    AssessedRecordFactory(
        catalog_model=top, level=3, created_at=timezone.now() - dt.timedelta(weeks=5)
    )
    out = run("--model", "fraud-detector", "--backfill-weeks", "8")
    # the record of five weeks ago holds for the five complete weeks since (this week's
    # snapshot is not a backfill)
    assert "Backfilled 5 missing snapshot rows of the last 8 weeks." in out
    assert set(MaturitySnapshot.objects.values_list("level", flat=True)) == {3}
    assert "Backfilled 0 missing" in run("--backfill-weeks", "8")


def test_backfill_weeks_must_be_positive(portfolio):
    with pytest.raises(CommandError, match="--backfill-weeks must be 1 or more"):
        run("--backfill-weeks", "0")


def test_a_model_below_level_1_is_counted_and_named(portfolio):
    CatalogModelFactory(name="notebook-only")
    out = run()
    assert "models per level: L1 1, L2 0, L3 0, L4 0, L5 1, below L1 1" in out
    assert "written: notebook-only at below L1" in out
