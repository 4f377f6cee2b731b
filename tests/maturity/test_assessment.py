"""The assessment: the cumulative level rule, ``models_assess`` on rows built with the
factories (records written only on change), the derived ``ModelMaturity`` row, append-only
records and the criteria catalogue."""

import datetime as dt

import pytest
from django.db import DatabaseError, connection, transaction

from maturity import selectors, services
from maturity.criteria import CRITERIA, Assessment, level_of
from maturity.models import Criterion, MaturityRecord, ModelMaturity, Result, Source
from pipelines.models import PipelineKind
from tests.maturity.factories import AssessedRecordFactory

pytestmark = pytest.mark.django_db

P, F, NM, NA = Result.PASSED, Result.FAILED, Result.NOT_MEASURED, Result.NOT_APPLICABLE


def results(**by_level):
    """One result per criterion of the catalogue: ``l2=F`` sets every L2 criterion;
    ``code_name=X`` (underscores for dashes) one criterion; the rest pass."""
    out = []
    for c in CRITERIA:
        result = by_level.get(c.code.replace("-", "_"), by_level.get(f"l{c.level}", P))
        out.append(
            {"code": c.code, "level": c.level, "result": result, "summary": "", "evidence": []}
        )
    return out


# --- level_of ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, (5, None)),
        ({"registered": NA, "promoted": NA}, (5, None)),
        ({"l1": F}, (0, None)),
        ({"ci_build": NM}, (0, 1)),
        ({"reproducible": F}, (1, None)),
        ({"l2": F, "l3": P}, (1, None)),  # a failing L2 keeps the model at 1 though L3 passes
        ({"reproducible": NM}, (1, 2)),  # not measured: unconfirmed, not failed
        ({"reproducible": NM, "automatic_trigger": F}, (1, None)),
        ({"l3": NM, "l4": F}, (2, 3)),
        ({"data_lag": F, "l5": P}, (3, None)),
        ({"promoted": NM}, (4, 5)),
    ],
)
def test_a_level_holds_only_when_it_and_every_lower_level_pass(given, expected):
    assert level_of(results(**given)) == expected


def test_the_next_blocker_is_the_first_criterion_of_the_next_level_that_does_not_pass():
    assessment = Assessment(1, 2, results(pipeline_training=P, reproducible=NM, l3=F))
    assert assessment.next_blocker()["code"] == "reproducible"
    assert assessment.next_blocker()["result"] == NM
    assert Assessment(5, None, results()).next_blocker() is None


# --- models_assess on built rows -----------------------------------------------------------------


def level_2(build, model):
    version = build.version(model)
    build.ci(model)
    build.training(model, model_version=version, reason="schedule")
    return version


def test_models_assess_gives_each_realistic_model_its_level(build):
    top, mid, rules, bare = (
        build.ml_model(),
        build.ml_model(),
        build.rule_model(),
        build.ml_model(),
    )
    build.level_5(top)
    level_2(build, mid)
    build.ci(rules, reason="pullRequest")
    build.training(rules, reason="schedule")  # a scoring run, pinned to a commit
    build.release(rules, approvers={"QA": "Alice", "PROD": "Bob"})
    build.version(bare, reproducible=False)  # registered, nothing runs
    stats = services.models_assess(catalog_model_ids=[top.pk, mid.pk, rules.pk, bare.pk])

    assert (stats.assessed, stats.written, stats.unchanged) == (4, 4, 0)
    levels = dict(ModelMaturity.objects.values_list("pk", "assessed_level"))
    assert levels == {top.pk: 5, mid.pk: 2, rules.pk: 3, bare.pk: 0}
    assert stats.levels == {0: 1, 2: 1, 3: 1, 5: 1}
    record = MaturityRecord.objects.get(catalog_model=top)
    assert (record.source, record.level, record.made_by) == (Source.ASSESSED, 5, services.NIGHTLY)
    assert [r["code"] for r in record.results] == [c.code for c in CRITERIA]
    assert all(r["evidence"] for r in record.results)
    mid_status = ModelMaturity.objects.get(pk=mid.pk)
    assert (mid_status.next_criterion, mid_status.next_result) == ("pipeline-deployment", F)
    assert mid_status.level == 2 and mid_status.declared_level is None
    assert not mid_status.disagreement


def test_a_level_kept_only_by_unread_data_is_unmeasured_never_failed(build):
    model = build.ml_model()
    version = level_2(build, model)
    build.release(model, version=version, timeline_synced_at=None)  # stages not read yet
    services.models_assess(catalog_model_ids=[model.pk])
    status = ModelMaturity.objects.get(pk=model.pk)
    assert (status.assessed_level, status.unmeasured_level) == (2, 3)
    assert (status.next_criterion, status.next_result) == ("pipeline-deployment", NM)
    step = selectors.next_step(status, selectors.criteria_by_code())
    assert step.not_measured and step.level == 3 and step.fix


def test_a_model_whose_sources_never_synced_is_not_measured_at_level_1(build):
    model = build.ml_model()
    build.version(model)
    build.registry(synced=False)
    services.models_assess(catalog_model_ids=[model.pk])
    record = MaturityRecord.objects.get(catalog_model=model)
    assert (record.level, record.unmeasured_level) == (0, 1)
    assert {r["code"]: r["result"] for r in record.results if r["level"] == 1} == {
        "ci-build": NM,
        "registered": NM,
    }


def test_a_second_run_on_the_same_data_writes_nothing(build):
    models = [build.ml_model() for _ in range(3)]
    build.level_5(models[0])
    level_2(build, models[1])
    first = services.models_assess()
    records = MaturityRecord.objects.count()
    checked = dict(ModelMaturity.objects.values_list("pk", "checked_at"))

    second = services.models_assess()
    assert (first.written, second.written, second.unchanged) == (3, 0, 3)
    assert second.written_ids == []
    assert MaturityRecord.objects.count() == records
    for status in ModelMaturity.objects.all():
        assert status.checked_at > checked[status.pk]  # checked again, all the same


def test_a_change_in_the_data_writes_exactly_one_record(build):
    changing, steady = build.ml_model(), build.ml_model()
    version = level_2(build, changing)
    level_2(build, steady)
    services.models_assess()
    first = ModelMaturity.objects.get(pk=changing.pk)

    build.release(changing, version=version, approvers={"QA": "Alice", "PROD": "Bob"})
    stats = services.models_assess()
    assert (stats.written, stats.written_ids, stats.unchanged) == (1, [changing.pk], 1)
    assert MaturityRecord.objects.filter(catalog_model=changing).count() == 2
    assert MaturityRecord.objects.filter(catalog_model=steady).count() == 1
    status = ModelMaturity.objects.get(pk=changing.pk)
    assert (status.assessed_level, status.previous_assessed_level) == (3, 2)
    assert status.assessed_record_id != first.assessed_record_id
    assert status.assessed_changed_at > first.assessed_changed_at
    assert status.next_criterion == "data-triggered"


def test_a_result_change_that_keeps_the_level_is_written_too(build):
    model = build.ml_model()
    level_2(build, model)
    services.models_assess()
    build.training(model, reason="manual", trigger="drift")  # closed-loop passes, still L2
    stats = services.models_assess()
    assert stats.written == 1
    status = ModelMaturity.objects.get(pk=model.pk)
    assert status.assessed_level == 2 and status.previous_assessed_level is None
    latest = status.assessed_record.results
    assert next(r for r in latest if r["code"] == "closed-loop")["result"] == P


def test_new_evidence_for_the_same_results_writes_nothing(build):
    model = build.ml_model()
    level_2(build, model)
    services.models_assess()
    record = MaturityRecord.objects.get()
    build.ci(model, reason="batchedCI")  # another successful CI run: more evidence, same result
    build.version(model)  # a newer tagged version: same results again
    stats = services.models_assess()
    assert (stats.written, stats.unchanged) == (0, 1)
    assert list(MaturityRecord.objects.all()) == [record]


def test_a_drop_keeps_the_previous_level_and_shows_among_dropped_models(build):
    model = build.ml_model()
    build.level_5(model)
    services.models_assess()
    # 100 days later nothing ran: every run is outside the window.
    services.models_assess(now=build.now + dt.timedelta(days=100))
    status = ModelMaturity.objects.get(pk=model.pk)
    assert (status.assessed_level, status.previous_assessed_level, status.level) == (0, 5, 0)
    assert status.next_criterion == "ci-build"
    assert list(selectors.dropped_models()) == [status]


def test_made_by_and_on_request_assessment(build):
    model = build.ml_model()
    stats = services.model_assess(catalog_model=model)
    assert stats.assessed == 1
    assert MaturityRecord.objects.get().made_by == services.ON_REQUEST


def test_batches_smaller_than_the_portfolio_still_assess_every_model(build):
    models = [build.ml_model() for _ in range(5)]
    for model in models[:2]:
        level_2(build, model)
    stats = services.models_assess(batch_size=2)
    assert stats.assessed == 5
    assert set(ModelMaturity.objects.values_list("pk", flat=True)) == {m.pk for m in models}
    assert ModelMaturity.objects.filter(assessed_level=2).count() == 2


def test_only_the_models_asked_for_are_assessed(build):
    one, other = build.ml_model(), build.ml_model()
    services.models_assess(catalog_model_ids=[one.pk])
    assert list(ModelMaturity.objects.values_list("pk", flat=True)) == [one.pk]
    assert other.pk not in set(MaturityRecord.objects.values_list("catalog_model", flat=True))


def test_model_maturity_rebuild_derives_the_same_row_from_the_records(build):
    model = build.ml_model()
    level_2(build, model)
    services.models_assess()
    build.release(model, version=build.version(model, version=9))
    services.models_assess()
    fields = ["assessed_level", "previous_assessed_level", "next_criterion", "level"]
    before = ModelMaturity.objects.values(*fields).get(pk=model.pk)
    ModelMaturity.objects.all().delete()
    services.model_maturity_rebuild()
    assert ModelMaturity.objects.values(*fields).get(pk=model.pk) == before


# --- append-only records -------------------------------------------------------------------------


def test_records_cannot_be_changed_or_deleted_through_the_orm(build):
    record = AssessedRecordFactory()
    record.level = 1
    with pytest.raises(TypeError):
        record.save()
    with pytest.raises(TypeError):
        record.delete()
    with pytest.raises(TypeError):
        MaturityRecord.objects.filter(pk=record.pk).update(level=1)
    with pytest.raises(TypeError):
        MaturityRecord.objects.filter(pk=record.pk).delete()
    with pytest.raises(TypeError):
        MaturityRecord.objects.bulk_update([record], ["level"])
    assert MaturityRecord.objects.get().level == 3


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE maturity_maturityrecord SET level = 1 WHERE id = %s",
        "DELETE FROM maturity_maturityrecord WHERE id = %s",
    ],
    ids=["update", "delete"],
)
def test_postgresql_refuses_raw_updates_and_deletes_of_records(sql):
    record = AssessedRecordFactory()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [record.pk])
    assert MaturityRecord.objects.get().level == 3


# --- the criteria catalogue ----------------------------------------------------------------------


def test_the_catalogue_table_matches_the_code_after_migrate():
    rows = list(Criterion.objects.filter(active=True).order_by("order"))
    assert [(r.code, r.level, r.title, r.applies_to) for r in rows] == [
        (c.code, c.level, c.title, c.applies_to) for c in CRITERIA
    ]


def test_criteria_sync_restores_edits_and_retires_codes_no_longer_defined():
    Criterion.objects.filter(code="ci-build").update(title="edited by hand", active=False)
    Criterion.objects.create(
        code="notebook-free",
        level=2,
        title="Old criterion",
        description="d",
        evaluation="e",
        fix="f",
        applies_to="both",
    )
    assert services.criteria_sync() == 13
    assert Criterion.objects.get(code="ci-build").title == "Code builds in CI"
    assert Criterion.objects.get(code="ci-build").active
    assert not Criterion.objects.get(code="notebook-free").active
    assert [c.code for c in selectors.criteria_list()] == [
        c.code for c in sorted(CRITERIA, key=lambda c: c.level)
    ]


def test_the_pipeline_kinds_the_criteria_read_exist():
    kinds = {k.value for k in PipelineKind}
    assert {"ci", "training", "scoring", "release", "data_cleansing"} <= kinds
