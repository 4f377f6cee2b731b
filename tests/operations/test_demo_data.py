"""The demo's operations history (operations/demo_data.py): every episode state and outcome,
a held challenger with its numbers, an unmatched signal and a proposal, written once, and a
loop model a signal can still start a run for."""

from __future__ import annotations

import pytest
from django.utils import timezone

from ado_simulator.seed import DEMO_MODELS
from approvals.models import PromotionPolicy
from operations import demo_data
from operations.models import (
    OPEN_STATES,
    Disposition,
    Episode,
    EpisodeEvent,
    EpisodeOutcome,
    EpisodeState,
    EpisodeStep,
    RawSignal,
    Signal,
    TriggerMode,
    TriggerPolicy,
)
from operations.services import proposal_confirm
from operations.services.intake import signal_send
from operations.services.matching import rule_suggestions
from pipelines.models import PipelineKind, RunRequest
from registry.models import CatalogModel
from tests.pipelines.factories import PipelineFactory
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db


def _catalog(with_pipelines: bool = True) -> None:
    for name, team, kind in DEMO_MODELS:
        model = CatalogModelFactory(name=name, team=team, kind=kind)
        if not with_pipelines:
            continue
        run_kind = PipelineKind.SCORING if kind == "rule_based" else PipelineKind.TRAINING
        for pipeline_kind in (run_kind, PipelineKind.RELEASE):
            PipelineFactory(
                catalog_model=model, kind=pipeline_kind, name=f"{team}-{name}-{pipeline_kind}"
            )


@pytest.fixture
def seeded():
    _catalog()
    return demo_data.seed_history()


def test_the_seed_writes_an_episode_in_every_state_and_with_every_outcome(seeded):
    states = set(Episode.objects.values_list("state", flat=True))
    assert states == {*OPEN_STATES, EpisodeState.CLOSED}
    outcomes = set(
        Episode.objects.filter(state=EpisodeState.CLOSED).values_list("outcome", flat=True)
    )
    assert outcomes == {o.value for o in EpisodeOutcome if o.value}
    # one open episode per model at most: a signal joins it rather than open another
    open_models = list(
        Episode.objects.filter(state__in=OPEN_STATES).values_list("catalog_model", flat=True)
    )
    assert len(open_models) == len(set(open_models)) == len(OPEN_STATES)
    now = timezone.now()
    for episode in Episode.objects.all():
        steps = list(episode.events.order_by("at", "pk").values_list("step", "at"))
        assert steps[0][0] == EpisodeStep.SIGNAL, episode
        assert all(at <= now for _, at in steps), episode
        assert [at for _, at in steps] == sorted(at for _, at in steps), episode
        assert (steps[-1][0] == EpisodeStep.CLOSED) == (episode.state == EpisodeState.CLOSED)
        assert episode.first_signal.episode_id == episode.pk
    assert seeded["episodes"] == Episode.objects.count() == len(OPEN_STATES) + 11


def test_the_held_challenger_keeps_its_numbers_against_the_champion(seeded):
    held = Episode.objects.get(outcome=EpisodeOutcome.HELD)
    evaluation = held.evaluation
    assert held.catalog_model.name == "marketing-uplift"
    assert evaluation["verdict"] == "hold" and evaluation["metric"] == "auc"
    assert (evaluation["challenger_version"], evaluation["champion_version"]) == (3, 2)
    assert evaluation["challenger"] > evaluation["champion"]  # better, but not by enough
    assert evaluation["absolute_change"] < evaluation["min_absolute_change"] == 0.01
    assert "less than the minimum 0.01" in held.outcome_note
    evaluated = held.events.get(step=EpisodeStep.EVALUATED)
    assert f"{evaluation['challenger']:.4g}" in evaluated.message and "hold" in evaluated.message


def test_the_unmatched_signal_has_rule_suggestions_and_the_proposal_can_be_confirmed(
    seeded, make_user
):
    unmatched = Signal.objects.get(disposition=Disposition.UNMATCHED)
    assert unmatched.catalog_model is None and unmatched.episode is None
    assert any(field == "alert_rule" for field, _, _ in rule_suggestions(unmatched))
    dispositions = set(Signal.objects.values_list("disposition", flat=True))
    assert dispositions >= {
        Disposition.STARTED, Disposition.PROPOSED, Disposition.JOINED, Disposition.SUPPRESSED,
        Disposition.DEFERRED, Disposition.DRY_RUN, Disposition.IGNORED, Disposition.RESOLVES,
        Disposition.UNMATCHED,
    }  # fmt: skip
    assert RawSignal.objects.count() == Signal.objects.count()

    proposal = Episode.objects.get(state=EpisodeState.PROPOSED)
    assert proposal.mode == TriggerMode.CONFIRM
    confirmed = proposal_confirm(episode=proposal, user=make_user("data_scientist"))
    assert confirmed.state == EpisodeState.REQUESTED
    assert confirmed.run_request.status == RunRequest.Status.QUEUED


def test_the_seed_is_written_once(seeded):
    counts = (Episode.objects.count(), Signal.objects.count(), EpisodeEvent.objects.count())
    again = demo_data.seed_history()
    assert again["written"] == 0 and again["trigger_policies"] == 0
    assert (Episode.objects.count(), Signal.objects.count(), EpisodeEvent.objects.count()) == (
        counts
    )
    assert TriggerPolicy.objects.count() == PromotionPolicy.objects.count() == len(DEMO_MODELS)


def test_a_policy_someone_edited_is_left_alone(seeded):
    policy = TriggerPolicy.objects.get(catalog_model__name=demo_data.LOOP_MODEL)
    policy.mode = TriggerMode.DRY_RUN
    policy.save()
    demo_data.seed_history()
    policy.refresh_from_db()
    assert policy.mode == TriggerMode.DRY_RUN


def test_a_model_added_later_gets_its_part_of_the_history_on_the_next_run():
    _catalog()
    CatalogModel.objects.filter(name="claims-triage-rules").delete()
    demo_data.seed_history()
    assert not Episode.objects.filter(outcome=EpisodeOutcome.DRY_RUN).exists()
    CatalogModelFactory(name="claims-triage-rules", team="operations", kind="rule_based")
    again = demo_data.seed_history()
    assert again["written"] == 1 and again["trigger_policies"] == 1
    assert Episode.objects.get(outcome=EpisodeOutcome.DRY_RUN).catalog_model.name == (
        "claims-triage-rules"
    )


def test_a_signal_for_the_loop_model_starts_its_training(seeded):
    result = signal_send(
        model=demo_data.LOOP_MODEL, kind="drift", severity="warning", sender="test"
    )
    (signal,) = result.signals
    signal.refresh_from_db()
    assert signal.disposition == Disposition.STARTED, signal.disposition_note
    episode = signal.episode
    assert episode.state == EpisodeState.REQUESTED
    assert episode.run_request.pipeline.kind == PipelineKind.TRAINING
    assert episode.run_request.parameters["trigger"] == "drift"


def test_without_a_mirror_the_seed_still_writes_every_state():
    _catalog(with_pipelines=False)
    demo_data.seed_history()
    states = set(Episode.objects.values_list("state", flat=True))
    assert states == {*OPEN_STATES, EpisodeState.CLOSED}
    held = Episode.objects.get(outcome=EpisodeOutcome.HELD)
    assert held.challenger is None and held.evaluation["challenger"] is not None
