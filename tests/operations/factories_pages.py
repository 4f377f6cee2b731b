"""Factories for the operations pages and API tests: raw and normalised signals, episodes
and their timeline rows (append-only: created once, never saved again)."""

from __future__ import annotations

import datetime as dt
import json

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from operations.models import (
    Disposition,
    Episode,
    EpisodeEvent,
    EpisodeKind,
    EpisodeState,
    EpisodeStep,
    RawSignal,
    Signal,
    SignalKind,
    TriggerMode,
)
from tests.registry.factories import CatalogModelFactory


class RawSignalFactory(DjangoModelFactory):
    class Meta:
        model = RawSignal
        skip_postgeneration_save = True

    received_at = factory.LazyFunction(timezone.now)
    format = "generic"
    sender = "monitoring-job"
    content_type = "application/json"
    body = factory.LazyFunction(lambda: json.dumps({"model": "x", "kind": "drift"}))
    outcome = "accepted"
    signal_count = 1


class SignalFactory(DjangoModelFactory):
    class Meta:
        model = Signal

    raw = factory.SubFactory(RawSignalFactory)
    format = "generic"
    kind = SignalKind.DRIFT
    severity = "warning"
    observed_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=5))
    received_at = factory.LazyFunction(timezone.now)
    dedupe_key = factory.Sequence(lambda n: f"pages-test:{n}")
    title = "Feature drift on amount"
    source_ref = "monitor/fraud-drift"
    catalog_model = factory.SubFactory(CatalogModelFactory)
    disposition = Disposition.STARTED


class EpisodeFactory(DjangoModelFactory):
    class Meta:
        model = Episode

    catalog_model = factory.SubFactory(CatalogModelFactory)
    kind = EpisodeKind.RETRAIN
    trigger_kind = SignalKind.DRIFT
    mode = TriggerMode.AUTOMATIC
    state = EpisodeState.RUNNING
    signal_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=3))
    opened_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=3))


def event(episode, step=EpisodeStep.SIGNAL, message="Drift signal received.", **kwargs):
    row = EpisodeEvent(
        episode=episode, step=step, message=message, at=kwargs.pop("at", timezone.now()), **kwargs
    )
    row.save()
    return row


PROMOTE_EVALUATION = {
    "metric": "auc",
    "greater_is_better": True,
    "challenger_version": 4,
    "champion_version": 3,
    "challenger": 0.912,
    "champion": 0.897,
    "absolute_change": 0.015,
    "relative_change": 0.015 / 0.897,
    "threshold": None,
    "min_absolute_change": 0.005,
    "min_relative_change": 0.01,
    "verdict": "promote",
    "reasons": ["auc 0.912 against 0.897: better by 0.015 (1.67%), within the policy."],
}
