"""What the trigger policy makes of a signal: start, propose, defer, join, suppress, dry run.

The run request goes through pipelines' outbox (no HTTP here: sending is tested in the chain
tests against the ADO simulator); these tests check the decisions and what they record."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
from django.db import connection
from django.utils import timezone

from operations.models import (
    Disposition,
    Episode,
    EpisodeOutcome,
    EpisodeState,
    EpisodeStep,
    RawSignal,
    Signal,
    SignalKind,
    TriggerMode,
    TriggerPolicy,
)
from operations.services import (
    ProposalRefused,
    deferred_start_due,
    policy_for,
    proposal_confirm,
    proposal_decline,
    proposals_expire,
    signal_decide,
)
from pipelines.models import PipelineKind, RunRequest
from tests.pipelines.factories import PipelineFactory
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db
_ids = itertools.count(1)


def make_signal(model, kind=SignalKind.DRIFT, *, observed_at=None, severity="warning", key=None):
    now = timezone.now()
    raw = RawSignal(received_at=now, format="generic", outcome="accepted", sender="test")
    raw.save()
    return Signal.objects.create(
        raw=raw,
        format="generic",
        kind=kind,
        severity=severity,
        observed_at=observed_at or now,
        received_at=now,
        dedupe_key=key or f"test:{next(_ids)}",
        title="auc dropped",
        catalog_model=model,
    )


@pytest.fixture
def fraud():
    model = CatalogModelFactory(name="fraud-detector", kind="ml", team="risk")
    PipelineFactory(catalog_model=model, kind=PipelineKind.TRAINING, name="risk-fraud-train")
    PipelineFactory(catalog_model=model, kind=PipelineKind.RELEASE, name="risk-fraud-release")
    return model


def policy(model, **values):
    values.setdefault("mode", TriggerMode.AUTOMATIC)
    return TriggerPolicy.objects.create(catalog_model=model, **values)


def test_an_automatic_policy_requests_the_training_run_with_the_signal_in_its_parameters(fraud):
    policy(fraud)
    signal = make_signal(fraud)
    signal_decide(signal)
    signal.refresh_from_db()
    episode = signal.episode
    assert signal.disposition == Disposition.STARTED
    assert episode.state == EpisodeState.REQUESTED and episode.first_signal == signal
    request = episode.run_request
    assert request.pipeline.name == "risk-fraud-train"
    assert request.parameters["trigger"] == "drift"
    assert request.parameters["signalId"] == str(signal.pk)
    assert request.parameters["signalKind"] == "drift"
    assert request.parameters["episodeId"] == str(episode.pk)
    assert request.parameters["portalRequestId"] == request.key
    steps = list(episode.events.values_list("step", flat=True))
    assert steps == [EpisodeStep.SIGNAL, EpisodeStep.RUN_REQUESTED]


def test_a_burst_of_a_thousand_signals_starts_one_run(fraud):
    policy(fraud)
    for _ in range(1000):
        signal_decide(make_signal(fraud))
    assert Episode.objects.filter(catalog_model=fraud).count() == 1
    assert RunRequest.objects.count() == 1
    assert set(Signal.objects.values_list("disposition", flat=True)) == {
        Disposition.STARTED,
        Disposition.JOINED,
    }
    assert Signal.objects.filter(disposition=Disposition.JOINED).count() == 999


@pytest.mark.django_db(transaction=True)
def test_concurrent_signals_for_one_model_are_decided_one_after_another(fraud):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    policy(fraud)
    signals = [make_signal(fraud) for _ in range(16)]
    errors = []

    def decide(signal):
        try:
            signal_decide(signal)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(s,)) for s in signals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Episode.objects.count() == 1 and RunRequest.objects.count() == 1


def test_the_cooldown_suppresses_a_new_run_and_says_until_when(fraud):
    policy(fraud, cooldown_minutes=120, dedupe_window_minutes=5)
    first = make_signal(fraud)
    signal_decide(first)
    Episode.objects.update(state=EpisodeState.CLOSED, outcome=EpisodeOutcome.HELD)
    later = make_signal(fraud, observed_at=timezone.now() + dt.timedelta(minutes=30))
    signal_decide(later)
    later.refresh_from_db()
    assert later.disposition == Disposition.SUPPRESSED
    assert "Cooldown" in later.disposition_note and "UTC" in later.disposition_note
    assert RunRequest.objects.count() == 1


def test_a_signal_in_the_dedupe_window_of_a_closed_episode_joins_it(fraud):
    policy(fraud, cooldown_minutes=0, dedupe_window_minutes=30)
    signal_decide(make_signal(fraud))
    Episode.objects.update(state=EpisodeState.CLOSED, outcome=EpisodeOutcome.HELD)
    again = make_signal(fraud, observed_at=timezone.now() + dt.timedelta(minutes=10))
    signal_decide(again)
    again.refresh_from_db()
    assert again.disposition == Disposition.JOINED and "dedupe window" in again.disposition_note


def test_the_daily_limit_holds(fraud):
    policy(fraud, cooldown_minutes=0, dedupe_window_minutes=0, max_runs_per_day=2)
    for minutes in (0, 10, 20):
        signal = make_signal(fraud, observed_at=timezone.now() + dt.timedelta(minutes=minutes))
        signal_decide(signal)
        Episode.objects.update(state=EpisodeState.CLOSED, outcome=EpisodeOutcome.HELD)
    last = Signal.objects.order_by("-pk").first()
    assert last.disposition == Disposition.SUPPRESSED and "Daily limit: 2" in last.disposition_note
    assert RunRequest.objects.count() == 2


def test_kinds_and_severities_the_policy_does_not_act_on_are_recorded_only(fraud):
    policy(fraud, signal_kinds=["drift"], min_severity="error")
    arrival = make_signal(fraud, kind=SignalKind.DATA_ARRIVAL)
    signal_decide(arrival)
    low = make_signal(fraud, severity="warning")
    signal_decide(low)
    arrival.refresh_from_db()
    low.refresh_from_db()
    assert arrival.disposition == Disposition.IGNORED and "Data arrival" in arrival.disposition_note
    assert low.disposition == Disposition.IGNORED and "below" in low.disposition_note
    assert not Episode.objects.exists()


def test_dry_run_records_what_it_would_have_done_and_starts_nothing(fraud):
    policy(fraud, mode=TriggerMode.DRY_RUN)
    signal = make_signal(fraud)
    signal_decide(signal)
    episode = Episode.objects.get()
    assert episode.outcome == EpisodeOutcome.DRY_RUN and episode.state == EpisodeState.CLOSED
    assert "would have queued risk-fraud-train" in episode.outcome_note
    assert not RunRequest.objects.exists()
    # and the dry run counts for the cooldown, as the real run would
    later = make_signal(fraud, observed_at=timezone.now() + dt.timedelta(hours=1))
    signal_decide(later)
    later.refresh_from_db()
    assert later.disposition == Disposition.SUPPRESSED


def test_a_proposal_waits_for_a_person_who_confirms_it(fraud, make_user):
    policy(fraud, mode=TriggerMode.CONFIRM)
    signal_decide(make_signal(fraud))
    episode = Episode.objects.get()
    assert episode.state == EpisodeState.PROPOSED and not RunRequest.objects.exists()
    with pytest.raises(ProposalRefused) as refused:
        proposal_confirm(episode=episode, user=make_user("manager"))
    assert refused.value.http_status == 403
    dana = make_user("data_scientist")
    episode = proposal_confirm(episode=episode, user=dana)
    assert episode.state == EpisodeState.REQUESTED and episode.decided_by == dana
    assert episode.run_request.requested_by == dana
    with pytest.raises(ProposalRefused):
        proposal_confirm(episode=episode, user=dana)


def test_a_declined_proposal_needs_a_reason_and_closes(fraud, make_user):
    policy(fraud, mode=TriggerMode.CONFIRM)
    signal_decide(make_signal(fraud))
    episode = Episode.objects.get()
    alice = make_user("approver")
    with pytest.raises(ProposalRefused) as refused:
        proposal_decline(episode=episode, user=alice, reason="  ")
    assert refused.value.http_status == 400
    episode = proposal_decline(episode=episode, user=alice, reason="a data outage, not drift")
    assert episode.outcome == EpisodeOutcome.DECLINED and "data outage" in episode.outcome_note


def test_an_unconfirmed_proposal_expires(fraud):
    policy(fraud, mode=TriggerMode.CONFIRM, proposal_expiry_hours=2)
    signal_decide(make_signal(fraud))
    assert proposals_expire(timezone.now() + dt.timedelta(hours=1)) == 0
    assert proposals_expire(timezone.now() + dt.timedelta(hours=3)) == 1
    assert Episode.objects.get().outcome == EpisodeOutcome.EXPIRED


def test_outside_business_hours_the_run_waits_for_the_next_business_hour(fraud):
    now = timezone.now()
    closed_day = (now.weekday() + 1) % 7  # business only tomorrow
    policy(fraud, business_hours_only=True, business_days=[closed_day])
    signal_decide(make_signal(fraud))
    episode = Episode.objects.get()
    assert episode.state == EpisodeState.DEFERRED and episode.not_before > now
    assert episode.not_before.astimezone(dt.UTC).weekday() == closed_day
    assert deferred_start_due(now) == 0
    assert deferred_start_due(episode.not_before + dt.timedelta(minutes=1)) == 1
    episode.refresh_from_db()
    assert episode.state == EpisodeState.REQUESTED and RunRequest.objects.count() == 1


def test_unmatched_and_late_signals_start_nothing(fraud, settings):
    orphan = make_signal(None)
    signal_decide(orphan)
    orphan.refresh_from_db()
    assert orphan.disposition == Disposition.UNMATCHED
    policy(fraud)
    late = make_signal(fraud)
    Signal.objects.filter(pk=late.pk).update(received_at=timezone.now() - dt.timedelta(hours=3))
    late.refresh_from_db()
    signal_decide(late)
    late.refresh_from_db()
    assert late.disposition == Disposition.IGNORED and "not acted on" in late.disposition_note


def test_a_model_without_a_training_pipeline_closes_the_episode_with_the_reason():
    model = CatalogModelFactory(name="lonely", kind="ml")
    policy(model)
    signal_decide(make_signal(model))
    episode = Episode.objects.get()
    assert episode.outcome == EpisodeOutcome.REQUEST_FAILED
    assert "no training pipeline" in episode.outcome_note and episode.stalled_reason


def test_resolved_closes_the_fired_alert(fraud):
    policy(fraud, mode=TriggerMode.CONFIRM)
    fired = make_signal(fraud, key="azmon:abc:Fired")
    signal_decide(fired)
    resolved = make_signal(fraud, kind=SignalKind.RESOLVED, key="azmon:abc:Resolved")
    resolved.details = {"resolves_key": "azmon:abc:Fired"}
    resolved.save()
    signal_decide(resolved)
    fired.refresh_from_db()
    resolved.refresh_from_db()
    assert fired.resolved_at is not None and resolved.resolves == fired
    assert resolved.disposition == Disposition.RESOLVES
    assert "still waiting for a confirmation" in resolved.disposition_note


def test_defaults_apply_by_team_and_kind_and_the_built_in_default_asks_for_confirmation(fraud):
    assert policy_for(fraud).pk is None and policy_for(fraud).mode == TriggerMode.CONFIRM
    anyone = TriggerPolicy.objects.create(mode=TriggerMode.DRY_RUN)
    assert policy_for(fraud) == anyone
    risk = TriggerPolicy.objects.create(team="risk", mode=TriggerMode.AUTOMATIC)
    assert policy_for(fraud) == risk
    risk_ml = TriggerPolicy.objects.create(team="risk", model_kind="ml", mode=TriggerMode.CONFIRM)
    assert policy_for(fraud) == risk_ml
    own = policy(fraud)
    assert policy_for(fraud) == own
