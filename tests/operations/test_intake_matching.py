"""Which model a signal is about: the payload's model field, then the rules in their order."""

from __future__ import annotations

import pytest

from operations.models import Signal
from operations.services.matching import match, rule_suggestions
from tests.registry.factories import CatalogModelFactory

from .factories import MatchRuleFactory

pytestmark = pytest.mark.django_db


def _signal(kind="drift", **attributes) -> Signal:
    return Signal(kind=kind, attributes=attributes)


def test_the_payload_model_field_wins_case_insensitively():
    fraud = CatalogModelFactory(name="fraud-detector")
    other = CatalogModelFactory(name="churn")
    MatchRuleFactory(field="alert_rule", value="auc-drop", catalog_model=other)
    signal = _signal(model="Fraud-Detector", alert_rule="auc-drop")
    match(signal)
    assert signal.catalog_model == fraud and signal.rule is None
    assert signal.matched_by == "model field 'Fraud-Detector'"


def test_rules_by_field_order_and_longest_prefix():
    a, b, c = (CatalogModelFactory(name=n) for n in ("a", "b", "c"))
    MatchRuleFactory(field="blob_prefix", value="landing/", catalog_model=a)
    MatchRuleFactory(field="blob_prefix", value="landing/fraud/", catalog_model=b)
    MatchRuleFactory(field="tag", value="team=risk", catalog_model=c)
    signal = _signal(blob_path="Landing/fraud/2025/x.parquet", tags={"team": "risk"})
    match(signal)
    assert signal.catalog_model == b  # blob prefix before tag; the longest prefix
    tagged = _signal(tags={"team": "RISK"})
    match(tagged)
    assert tagged.catalog_model == c


def test_alias_resource_and_job_rules_and_the_rule_kind():
    model = CatalogModelFactory(name="fraud-detector")
    MatchRuleFactory(field="model_field", value="fraud_v2", catalog_model=model)
    MatchRuleFactory(field="resource_id", value="/subscriptions/S/ws", catalog_model=model)
    MatchRuleFactory(field="job_id", value="42", catalog_model=model, kind="drift")
    for attributes in ({"model": "FRAUD_V2"}, {"resource_ids": ["/SUBSCRIPTIONS/s/WS"]}):
        signal = _signal(**attributes)
        match(signal)
        assert signal.catalog_model == model, attributes
    job = _signal(kind="threshold_breach", job_id="42")
    match(job)
    assert job.kind == "drift"
    resolved = _signal(kind="resolved", job_id="42")
    match(resolved)
    assert resolved.kind == "resolved"  # a rule's kind never turns a Resolved into a trigger


def test_disabled_rules_do_not_match_and_existing_rules_are_not_suggested():
    model = CatalogModelFactory(name="m")
    MatchRuleFactory(field="alert_rule", value="cpu", catalog_model=model, enabled=False)
    signal = _signal(alert_rule="cpu", job_id="7", tags={"k": "v"})
    match(signal)
    assert signal.catalog_model is None
    assert rule_suggestions(signal) == [
        ("job_id", "7", "Databricks job 7"),
        ("tag", "k=v", "Tag k = 'v'"),
    ]
