"""Following an episode on the mirror, step by step: which time the run-queued step takes, and
which version is the episode's challenger (the whole chain is in test_chain.py)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from approvals.models import PromotionPolicy
from operations.models import EpisodeOutcome, EpisodeState, EpisodeStep
from operations.services.following import episode_follow
from pipelines.models import PipelineKind, RunRequest, RunState
from tests.pipelines.factories import PipelineFactory, PipelineRunFactory
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)

from .factories_pages import EpisodeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fraud():
    catalog = CatalogModelFactory(name="fraud-detector", kind="ml", team="risk")
    registered = RegisteredModelFactory(
        name="fraud-detector", catalog_model=catalog, aliases={"champion": 1}
    )
    PromotionPolicy.objects.create(catalog_model=catalog, metric="auc", min_absolute_change=0.01)
    return {
        "catalog": catalog,
        "registered": registered,
        "v1": ModelVersionFactory(registered_model=registered, version=1, metrics={"auc": 0.80}),
        "train": PipelineFactory(catalog_model=catalog, kind=PipelineKind.TRAINING),
    }


@pytest.fixture
def churn_version():
    """A version of another model (its own registered model and catalog entry)."""
    other = RegisteredModelFactory(name="churn-predictor")
    return ModelVersionFactory(registered_model=other, version=7, metrics={"auc": 0.99})


def test_the_run_queued_step_is_at_adoss_queue_time_not_when_the_portal_heard(fraud):
    queued = timezone.now() - dt.timedelta(minutes=40)
    run = PipelineRunFactory(
        pipeline=fraud["train"],
        state=RunState.IN_PROGRESS,
        result="",
        queued_at=queued,
        started_at=None,
        finished_at=None,
    )
    request = RunRequest.objects.create(
        pipeline=fraud["train"],
        parameters={"trigger": "drift"},
        reason="drift",
        key="k-1",
        status=RunRequest.Status.SENT,
        sent_at=timezone.now() - dt.timedelta(minutes=5),  # the answer came late
        run=run,
    )
    episode = EpisodeFactory(
        catalog_model=fraud["catalog"],
        state=EpisodeState.REQUESTED,
        pipeline=fraud["train"],
        run_request=request,
    )

    assert episode_follow(episode.pk)

    episode.refresh_from_db()
    assert episode.state == EpisodeState.RUNNING and episode.run == run
    assert episode.events.get(step=EpisodeStep.RUN_QUEUED).at == queued


def _evaluating(fraud, run):
    return EpisodeFactory(
        catalog_model=fraud["catalog"],
        state=EpisodeState.EVALUATING,
        pipeline=fraud["train"],
        run=run,
        run_finished_at=run.finished_at,
        parameters={"trigger": "drift"},
        policy={"release_on_promote": False},
    )


def test_the_challenger_is_a_version_of_the_episodes_own_model(fraud, churn_version):
    """A run linked to another model's version (a hand-set link, or an old sync's) does not
    make that version this episode's challenger: the own model's version tagged with the
    run's build is."""
    run = PipelineRunFactory(pipeline=fraud["train"], model_version=churn_version)
    own = ModelVersionFactory(
        registered_model=fraud["registered"],
        version=2,
        metrics={"auc": 0.86},
        run_tags={"ado.build_id": str(run.ado_id)},
    )
    episode = _evaluating(fraud, run)

    episode_follow(episode.pk)

    episode.refresh_from_db()
    assert episode.challenger == own
    assert episode.champion == fraud["v1"]
    assert episode.evaluation["challenger_version"] == 2
    assert episode.evaluation["challenger"] == pytest.approx(0.86)
    assert episode.evaluation["verdict"] == "promote"


def test_another_models_version_alone_is_no_challenger(fraud, churn_version):
    run = PipelineRunFactory(pipeline=fraud["train"], model_version=churn_version)
    churn_version.run_tags = {"ado.build_id": str(run.ado_id)}
    churn_version.save()
    episode = _evaluating(fraud, run)

    episode_follow(episode.pk)

    episode.refresh_from_db()
    assert episode.state == EpisodeState.EVALUATING  # still waiting for its own version
    assert episode.challenger is None and episode.evaluation in (None, {})
    assert episode.outcome != EpisodeOutcome.HELD
