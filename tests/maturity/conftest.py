"""Fixtures of the maturity tests: a builder that makes the rows the criteria read (catalog
models, versions, pipelines, runs, release stages, approvals, and operations' signals and
episodes) with the apps' own factories, and ``evaluate``, which loads a model's evidence the
way an assessment does."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from maturity import evidence
from maturity.criteria import CRITERIA_BY_CODE
from operations.models import (
    EpisodeKind,
    EpisodeOutcome,
    EpisodeState,
    ModelOperations,
    SignalKind,
)
from pipelines.models import Pipeline, PipelineKind
from registry.models import ModelKind
from tests.approvals.factories import ApprovalRequestFactory
from tests.operations.factories import EpisodeFactory, SignalFactory
from tests.pipelines.factories import (
    AdoProjectFactory,
    PipelineFactory,
    PipelineRunFactory,
    RunStageFactory,
)
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPRODUCIBLE_TAGS = {"mlflow.source.git.commit": COMMIT, "data_snapshot": "2025-03-01"}


class Build:
    """Rows for one test. Every run is queued ``ago`` before now (an hour by default)."""

    def __init__(self):
        self.now = timezone.now()
        self._names = 0

    # Sources --------------------------------------------------------------------------------

    def ado(self, *, synced: bool = True):
        """The ADO project (synced, unless told); the runs' pipelines belong to it."""
        project = AdoProjectFactory(name="mlops")
        project.last_sync_succeeded_at = self.now - dt.timedelta(minutes=2) if synced else None
        project.save(update_fields=["last_sync_succeeded_at"])
        return project

    def registry(self, *, synced: bool = True):
        source = RegistrySourceFactory(name="central", is_central=True)
        source.last_sync_succeeded_at = self.now - dt.timedelta(minutes=3) if synced else None
        source.save(update_fields=["last_sync_succeeded_at"])
        return source

    # Models ---------------------------------------------------------------------------------

    def _name(self, prefix: str) -> str:
        self._names += 1
        return f"{prefix}-{self._names:03d}"

    def ml_model(self, name: str = "", *, team: str = "risk"):
        """A catalog model with a registered model in the central registry (no version yet)."""
        registered = RegisteredModelFactory(
            name=name or self._name("ml"),
            source=RegistrySourceFactory(name="central", is_central=True),
            catalog_model__registry_team=team,
        )
        return registered.catalog_model

    def rule_model(self, name: str = "", *, team: str = "ops"):
        return CatalogModelFactory(
            name=name or self._name("rules"), kind=ModelKind.RULE_BASED, team=team
        )

    def version(self, model, *, reproducible: bool = True, **kwargs):
        registered = model.registered_models.get()
        if reproducible:
            kwargs.setdefault("tags", dict(REPRODUCIBLE_TAGS))
        return ModelVersionFactory(registered_model=registered, **kwargs)

    # Runs -----------------------------------------------------------------------------------

    def pipeline(self, model, kind: str):
        found = Pipeline.objects.filter(catalog_model=model, kind=kind).first()
        return found or PipelineFactory(
            project=AdoProjectFactory(name="mlops"), catalog_model=model, kind=kind
        )

    def run(self, model, kind: str, *, ago=dt.timedelta(hours=1), **kwargs):
        kwargs.setdefault("queued_at", self.now - ago)
        return PipelineRunFactory(pipeline=self.pipeline(model, kind), **kwargs)

    def ci(self, model, **kwargs):
        kwargs.setdefault("reason", "individualCI")
        return self.run(model, PipelineKind.CI, **kwargs)

    def training(self, model, **kwargs):
        kind = PipelineKind.SCORING if model.kind == ModelKind.RULE_BASED else PipelineKind.TRAINING
        kwargs.setdefault("reason", "schedule")
        return self.run(model, kind, **kwargs)

    def release(
        self,
        model,
        *,
        version=None,
        prod: str = "succeeded",
        gated=("QA", "PROD"),
        approvers: dict | None = None,
        **kwargs,
    ):
        """A release run with QA and PROD stages (read: ``timeline_synced_at`` set, unless
        passed None, then no stages). ``gated``:
        the stages with an approval check; ``approvers``: environment -> who approved it in
        the portal (an ApprovalRequest each)."""
        kwargs.setdefault("timeline_synced_at", self.now)
        run = self.run(model, PipelineKind.RELEASE, model_version=version, **kwargs)
        if run.timeline_synced_at is None:
            return run  # its stages have not been read
        for order, (environment, result) in enumerate((("QA", "succeeded"), ("PROD", prod))):
            stage = RunStageFactory(
                run=run,
                environment=environment,
                result=result,
                order=order,
                approval_ids=[f"{environment}-{run.pk}"] if environment in gated else [],
            )
            who = (approvers or {}).get(environment)
            if who:
                ApprovalRequestFactory(
                    model_version=version,
                    catalog_model=model,
                    run=run,
                    stage=stage,
                    environment=environment,
                    status="approved",
                    ado_status="approved",
                    decided_by=who,
                    decided_at=self.now,
                )
        return run

    # Operations -----------------------------------------------------------------------------

    def signal(self, model, kind=SignalKind.DRIFT, *, ago=dt.timedelta(hours=1), observed_at=None):
        """A signal about ``model`` received ``ago`` before now (observed then, unless told)."""
        at = self.now - ago
        signal = SignalFactory(
            catalog_model=model, kind=kind, received_at=at, observed_at=observed_at or at
        )
        heard, _ = ModelOperations.objects.get_or_create(catalog_model=model)
        if kind != SignalKind.DATA_ARRIVAL and (
            heard.last_monitoring_signal_at is None or heard.last_monitoring_signal_at < at
        ):
            heard.last_monitoring_signal_at = at
            heard.save(update_fields=["last_monitoring_signal_at"])
        return signal

    def episode(self, model, signal, *, run=None, **kwargs):
        """The episode ``signal`` started, with its run (requested when the run was queued,
        started when it started)."""
        kwargs.setdefault(
            "kind",
            EpisodeKind.RESCORE if model.kind == ModelKind.RULE_BASED else EpisodeKind.RETRAIN,
        )
        kwargs.setdefault("state", EpisodeState.EVALUATING)
        kwargs.setdefault("run_requested_at", run.queued_at if run else None)
        kwargs.setdefault("run_started_at", run.started_at if run else None)
        kwargs.setdefault("run_finished_at", run.finished_at if run else None)
        episode = EpisodeFactory(
            catalog_model=model,
            trigger_kind=signal.kind,
            first_signal=signal,
            signal_at=signal.observed_at,
            opened_at=signal.received_at,
            run=run,
            **kwargs,
        )
        signal.episode = episode
        signal.save(update_fields=["episode"])
        return episode

    def data_arrival(self, model, *, hours: float, ago=dt.timedelta(days=2), **run_kwargs):
        """New data observed ``ago`` before now, and the training (scoring) run its episode
        started ``hours`` later (with the parameter operations gives it)."""
        signal = self.signal(model, SignalKind.DATA_ARRIVAL, ago=ago)
        began = signal.observed_at + dt.timedelta(hours=hours)
        run_kwargs.setdefault("queued_at", began - dt.timedelta(minutes=1))
        run_kwargs.setdefault("started_at", began)
        run_kwargs.setdefault("finished_at", began + dt.timedelta(minutes=30))
        run = self.training(model, reason="manual", trigger="new-data", **run_kwargs)
        return signal, run, self.episode(model, signal, run=run)

    def monitoring_episode(
        self,
        model,
        *,
        kind=SignalKind.DRIFT,
        version=None,
        state=EpisodeState.CLOSED,
        outcome=EpisodeOutcome.REACHED_PROD,
        ago=dt.timedelta(days=3),
        result="succeeded",
    ):
        """A monitoring signal, the retraining its episode started (the run carries the
        parameter operations gives it) and how far the episode went (to PROD, by default)."""
        signal = self.signal(model, kind, ago=ago)
        run = self.training(
            model,
            reason="manual",
            trigger="drift",
            model_version=version,
            queued_at=signal.received_at + dt.timedelta(minutes=1),
            result=result,
        )
        closed = self.now - ago + dt.timedelta(days=1) if state == EpisodeState.CLOSED else None
        episode = self.episode(
            model,
            signal,
            run=run,
            state=state,
            outcome=outcome,
            challenger=version,
            closed_at=closed,
        )
        return signal, run, episode

    def level_5(self, model):
        """Everything an ML model needs for level 5, in the window (levels 4 and 5 on the
        weaker evidence of run parameters; monitoring heard from a day ago)."""
        v1 = self.version(model, version=1)
        v2 = self.version(model, version=2)
        self.ci(model)
        self.training(model, model_version=v1, reason="schedule", ago=dt.timedelta(days=20))
        self.release(model, version=v1, approvers={"QA": "Alice", "PROD": "Bob"})
        cleansing = self.run(model, PipelineKind.DATA_CLEANSING, ago=dt.timedelta(days=3))
        self.training(
            model,
            model_version=v1,
            reason="resourceTrigger",
            queued_at=cleansing.finished_at + dt.timedelta(hours=1),
        )
        self.training(
            model, model_version=v2, reason="manual", trigger="drift", ago=dt.timedelta(days=1)
        )
        self.release(
            model, version=v2, approvers={"QA": "Alice", "PROD": "Bob"}, ago=dt.timedelta(hours=2)
        )
        self.signal(model, SignalKind.RESOLVED, ago=dt.timedelta(days=1))
        return v1, v2


@pytest.fixture
def build(db):
    return Build()


def load(model, *, now=None):
    return evidence.evidence_load([model], now=now)[model.pk]


@pytest.fixture
def evaluate(db):
    """``evaluate(code, model)``: the criterion's outcome on the model's evidence as loaded."""

    def run(code: str, model, *, now=None):
        return CRITERIA_BY_CODE[code].evaluate(load(model, now=now))

    return run
