"""factory_boy factories of the operations tables (signals, rules, policies, episodes)."""

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from operations.models import (
    Episode,
    EpisodeKind,
    EpisodeState,
    IntakeOutcome,
    MatchField,
    MatchRule,
    RawSignal,
    Severity,
    Signal,
    SignalFormat,
    SignalKind,
    TriggerMode,
    TriggerPolicy,
)
from tests.registry.factories import CatalogModelFactory


class RawSignalFactory(DjangoModelFactory):
    class Meta:
        model = RawSignal

    received_at = factory.LazyFunction(timezone.now)
    format = SignalFormat.GENERIC
    sender = "generic (shared secret)"
    content_type = "application/json"
    body = '{"model": "fraud-detector", "kind": "drift"}'
    outcome = IntakeOutcome.ACCEPTED
    signal_count = 1


class MatchRuleFactory(DjangoModelFactory):
    class Meta:
        model = MatchRule

    field = MatchField.ALERT_RULE
    value = factory.Sequence(lambda n: f"alert-rule-{n}")
    catalog_model = factory.SubFactory(CatalogModelFactory)
    kind = ""
    enabled = True


class SignalFactory(DjangoModelFactory):
    class Meta:
        model = Signal

    raw = factory.SubFactory(RawSignalFactory)
    format = SignalFormat.GENERIC
    kind = SignalKind.DRIFT
    severity = Severity.WARNING
    observed_at = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)
    dedupe_key = factory.Sequence(lambda n: f"generic:test:{n}")
    title = "Drift on amount"
    source_ref = "test"
    attributes = factory.Dict({})
    details = factory.Dict({})
    catalog_model = factory.SubFactory(CatalogModelFactory)
    matched_by = factory.LazyAttribute(
        lambda s: f"model field {s.catalog_model.name!r}" if s.catalog_model else ""
    )


class TriggerPolicyFactory(DjangoModelFactory):
    class Meta:
        model = TriggerPolicy

    catalog_model = factory.SubFactory(CatalogModelFactory)
    mode = TriggerMode.AUTOMATIC


class EpisodeFactory(DjangoModelFactory):
    class Meta:
        model = Episode

    catalog_model = factory.SubFactory(CatalogModelFactory)
    kind = EpisodeKind.RETRAIN
    trigger_kind = SignalKind.DRIFT
    mode = TriggerMode.AUTOMATIC
    state = EpisodeState.REQUESTED
    signal_at = factory.LazyFunction(timezone.now)
    opened_at = factory.LazyFunction(timezone.now)
