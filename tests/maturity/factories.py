"""factory_boy factories of the maturity tables, and a helper that sets a model's current
maturity the way the services would (records first, the derived row from them)."""

import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from maturity import services
from maturity.criteria import CRITERIA
from maturity.models import MaturityRecord, MaturitySnapshot, Result, Source
from tests.registry.factories import CatalogModelFactory


def results_for(level: int, *, next_result: str = Result.FAILED) -> list[dict]:
    """Results of every criterion as an assessment at ``level`` would give them: all up to the
    level pass, the next level's criteria give ``next_result``, higher ones fail."""
    results = []
    for criterion in CRITERIA:
        if criterion.level <= level:
            result = Result.PASSED
        elif criterion.level == level + 1:
            result = next_result
        else:
            result = Result.FAILED
        results.append(
            {
                "code": criterion.code,
                "level": criterion.level,
                "result": str(result),
                "summary": f"{criterion.title}: {result}",
                "evidence": [],
            }
        )
    return results


class AssessedRecordFactory(DjangoModelFactory):
    class Meta:
        model = MaturityRecord

    catalog_model = factory.SubFactory(CatalogModelFactory)
    source = Source.ASSESSED
    level = 3
    unmeasured_level = None
    results = factory.LazyAttribute(lambda r: results_for(r.level))
    fingerprint = factory.LazyAttribute(
        lambda r: services.fingerprint(r.level, r.unmeasured_level, r.results)
    )
    created_at = factory.LazyFunction(timezone.now)
    made_by = services.NIGHTLY


class DeclaredRecordFactory(DjangoModelFactory):
    class Meta:
        model = MaturityRecord

    catalog_model = factory.SubFactory(CatalogModelFactory)
    source = Source.DECLARED
    level = 4
    results = factory.LazyFunction(list)
    created_at = factory.LazyFunction(timezone.now)
    made_by = "Maria Manager"
    reason = "Retraining on new data runs in Databricks workflows the portal cannot see."


class SnapshotFactory(DjangoModelFactory):
    class Meta:
        model = MaturitySnapshot

    week = factory.LazyFunction(lambda: services.week_of(timezone.localdate()))
    catalog_model = factory.SubFactory(CatalogModelFactory)
    team = "risk"
    kind = "ml"
    serving = "batch"
    assessed_level = 3
    declared_level = None
    level = factory.LazyAttribute(
        lambda s: s.declared_level if s.declared_level is not None else s.assessed_level
    )
    taken_at = factory.LazyFunction(timezone.now)


def set_maturity(catalog_model, *, assessed=None, declared=None, history=(), at=None):
    """Give ``catalog_model`` assessed records for each level of ``history`` (oldest first, a
    week apart) then ``assessed``, and a declaration, and derive its current row."""
    at = at or timezone.now()
    levels = [*history, *([assessed] if assessed is not None else [])]
    for index, level in enumerate(levels):
        AssessedRecordFactory(
            catalog_model=catalog_model,
            level=level,
            created_at=at - dt.timedelta(weeks=len(levels) - 1 - index),
        )
    if declared is not None:
        DeclaredRecordFactory(catalog_model=catalog_model, level=declared, created_at=at)
    services.model_maturity_rebuild(catalog_model_ids=[catalog_model.pk])
    return catalog_model.__class__.objects.select_related("maturity").get(pk=catalog_model.pk)
