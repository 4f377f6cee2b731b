"""What the portal knows about a model, read in bulk for the criteria (maturity/criteria/).

One load reads a whole batch of catalog models in a fixed number of queries (runs of the
window, their stages, versions, approvals, and what operations saw: the episodes signals
started and monitoring's heartbeat), so assessing 5,000 models is a few dozen queries, not
tens of thousands. The criteria are pure functions of a ``ModelEvidence``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from operations import selectors as operations
from operations.selectors import EpisodeFact, Heartbeat
from pipelines.models import AdoProject, Pipeline, PipelineRun, RunStage
from registry.models import CatalogModel, ModelKind, ModelVersion, RegistrySource


@dataclass(frozen=True)
class Link:
    label: str
    url: str

    def as_dict(self) -> dict:
        return {"label": self.label, "url": self.url}


@dataclass
class RunFact:
    pk: int
    name: str
    pipeline_kind: str
    pipeline_name: str
    reason: str
    trigger: str
    state: str
    result: str
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    source_version: str
    model_version_id: int | None
    timeline_synced: bool

    @property
    def succeeded(self) -> bool:
        return self.result == "succeeded"

    @property
    def at(self) -> datetime | None:
        return self.queued_at or self.started_at or self.finished_at

    @property
    def link(self) -> Link:
        return Link(f"{self.pipeline_name} #{self.name or self.pk}", run_url(self.pk))


@dataclass
class StageFact:
    environment: str
    state: str
    result: str
    approval_ids: list
    finished_at: datetime | None

    @property
    def succeeded(self) -> bool:
        return self.result == "succeeded"


@dataclass
class VersionFact:
    pk: int
    source: str
    model_name: str
    version: int
    run_id: str
    tags: dict
    run_tags: dict
    run_read: bool  # the MLflow run behind it was fetched without error
    created_at: datetime | None

    @property
    def link(self) -> Link:
        return Link(
            f"{self.model_name} v{self.version}",
            version_url(self.source, self.model_name, self.version),
        )

    def tag(self, names) -> str:
        for name in names:
            value = self.tags.get(name) or self.run_tags.get(name)
            if value:
                return str(value)
        return ""


@dataclass
class ApprovalFact:
    pk: int
    environment: str
    status: str
    decided_by: str

    @property
    def link(self) -> Link:
        return Link(f"{self.environment} approval", approval_url(self.pk))


@dataclass
class Sources:
    """Whether each source of evidence has ever been read: if not, "not measured"."""

    ado: bool
    registry: bool
    signals: bool = False  # a signal sender ever reached the portal (operations)


@dataclass
class ModelEvidence:
    catalog_model_id: int
    name: str
    kind: str  # ModelKind.ML or ModelKind.RULE_BASED (unknown counts as ML)
    now: datetime
    window_start: datetime
    sources: Sources
    pipeline_kinds: set[str] = field(default_factory=set)
    runs: list[RunFact] = field(default_factory=list)  # newest first, within the window
    stages: dict[int, list[StageFact]] = field(default_factory=dict)  # by run pk
    versions: dict[int, VersionFact] = field(default_factory=dict)  # by pk, not deleted
    approvals: dict[int, list[ApprovalFact]] = field(default_factory=dict)  # by run pk
    episodes: list[EpisodeFact] = field(default_factory=list)  # newest first, in the window
    heartbeat: Heartbeat | None = None  # None: monitoring was never heard from

    @property
    def is_rule_based(self) -> bool:
        return self.kind == ModelKind.RULE_BASED

    @property
    def episode_run_ids(self) -> set[int]:
        """Runs an operations episode started: judged by the episode, not their parameter."""
        return {e.run_id for e in self.episodes if e.run_id is not None}

    def runs_of(self, *kinds: str) -> list[RunFact]:
        return [r for r in self.runs if r.pipeline_kind in kinds]

    def prod_deployments(self) -> list[RunFact]:
        """Release runs whose PROD stage succeeded: the model reached PROD through them."""
        return [
            run
            for run in self.runs_of("release")
            if any(s.environment == "PROD" and s.succeeded for s in self.stages.get(run.pk, []))
        ]


@lru_cache(maxsize=1)
def _run_url_pattern() -> str:
    return reverse("pipelines:run-detail", kwargs={"pk": 999999001}).replace("999999001", "{}")


@lru_cache(maxsize=1)
def _approval_url_pattern() -> str:
    return reverse("approvals:detail", kwargs={"pk": 999999001}).replace("999999001", "{}")


@lru_cache(maxsize=1)
def _episode_url_pattern() -> str:
    return reverse("operations:episode", kwargs={"pk": 999999001}).replace("999999001", "{}")


@lru_cache(maxsize=1)
def _signal_url_pattern() -> str:
    return reverse("operations:signal", kwargs={"pk": 999999001}).replace("999999001", "{}")


def run_url(pk: int) -> str:
    return _run_url_pattern().format(pk)


def episode_url(pk: int) -> str:
    return _episode_url_pattern().format(pk)


def signal_url(pk: int) -> str:
    return _signal_url_pattern().format(pk)


def approval_url(pk: int) -> str:
    return _approval_url_pattern().format(pk)


def version_url(source: str, model_name: str, version: int) -> str:
    return reverse(
        "registry:version-detail",
        kwargs={"source": source, "name": model_name, "version": version},
    )


def window_days() -> int:
    return int(getattr(settings, "MATURITY_WINDOW_DAYS", 90))


def sources_now() -> Sources:
    return Sources(
        ado=AdoProject.objects.filter(last_sync_succeeded_at__isnull=False).exists(),
        registry=RegistrySource.objects.filter(last_sync_succeeded_at__isnull=False).exists(),
        signals=operations.signals_ever_received(),
    )


RELEASE_CHUNK = 5000  # release runs per stage/approval query (an IN list of ids)
ROW_CHUNK = 2000  # rows per fetch when iterating runs and versions
RUN_COLUMNS = (
    "pk",
    "name",
    "pipeline__kind",
    "pipeline__name",
    "reason",
    "trigger",
    "state",
    "result",
    "queued_at",
    "started_at",
    "finished_at",
    "source_version",
    "model_version_id",
    "timeline_synced_at",
    "pipeline__catalog_model_id",
)
VERSION_COLUMNS = (
    "pk",
    "registered_model__source__name",
    "registered_model__name",
    "version",
    "run_id",
    "tags",
    "run_tags",
    "run_fetched_at",
    "run_fetch_error",
    "created_upstream_at",
    "registered_model__catalog_model_id",
)


def evidence_load(
    catalog_models: list[CatalogModel], *, now: datetime | None = None
) -> dict[int, ModelEvidence]:
    """The evidence of each model in ``catalog_models`` (a batch), keyed by catalog model pk.

    A fixed number of queries for the whole batch: pipeline kinds, the window's runs, the
    release runs' QA/PROD stages and approvals (in chunks), the live versions, and from
    operations the window's episodes and monitoring's heartbeat.
    """
    now = now or timezone.now()
    start = now - timedelta(days=window_days())
    found = _evidence_empty(catalog_models, now=now, start=start)
    if not found:
        return found
    ids = list(found)
    _pipeline_kinds_add(found, ids)
    model_of_run, release_runs = _runs_add(found, ids, start)
    _stages_and_approvals_add(found, model_of_run, release_runs)
    _versions_add(found, ids)
    _operations_add(found, ids, start)
    return found


def _operations_add(found: dict[int, ModelEvidence], ids: list[int], start: datetime) -> None:
    """What operations saw: the episodes of the window (with their first signal and run)
    and monitoring's heartbeat, read through operations' selectors."""
    for model_id, episodes in operations.episodes_of_models(ids, since=start).items():
        found[model_id].episodes = episodes
    for model_id, heartbeat in operations.monitoring_heartbeats(ids, since=start).items():
        found[model_id].heartbeat = heartbeat


def _evidence_empty(
    catalog_models: list[CatalogModel], *, now: datetime, start: datetime
) -> dict[int, ModelEvidence]:
    sources = sources_now()
    return {
        m.pk: ModelEvidence(
            catalog_model_id=m.pk,
            name=m.name,
            kind=ModelKind.RULE_BASED if m.effective_kind == ModelKind.RULE_BASED else ModelKind.ML,
            now=now,
            window_start=start,
            sources=sources,
        )
        for m in catalog_models
    }


def _pipeline_kinds_add(found: dict[int, ModelEvidence], ids: list[int]) -> None:
    """The kinds of the models' live pipelines (ci, training, release...)."""
    for model_id, kind in (
        Pipeline.objects.filter(catalog_model_id__in=ids, deleted_upstream_at__isnull=True)
        .values_list("catalog_model_id", "kind")
        .distinct()
    ):
        found[model_id].pipeline_kinds.add(kind)


def _runs_add(
    found: dict[int, ModelEvidence], ids: list[int], start: datetime
) -> tuple[dict[int, int], list[int]]:
    """The window's runs, newest first; returns each run's model and the release runs."""
    runs = (
        PipelineRun.objects.filter(pipeline__catalog_model_id__in=ids)
        .filter(Q(queued_at__gte=start) | Q(queued_at__isnull=True, started_at__gte=start))
        .order_by("-queued_at", "-pk")
        .values_list(*RUN_COLUMNS)
    )
    model_of_run: dict[int, int] = {}
    release_runs: list[int] = []
    for row in runs.iterator(chunk_size=ROW_CHUNK):
        *values, timeline_synced_at, model_id = row
        run = RunFact(*values, timeline_synced=timeline_synced_at is not None)
        found[model_id].runs.append(run)
        model_of_run[run.pk] = model_id
        if run.pipeline_kind == "release":
            release_runs.append(run.pk)
    return model_of_run, release_runs


def _stages_and_approvals_add(
    found: dict[int, ModelEvidence], model_of_run: dict[int, int], release_runs: list[int]
) -> None:
    """The QA and PROD stages of the release runs, and their approvals."""
    for start_at in range(0, len(release_runs), RELEASE_CHUNK):
        chunk = release_runs[start_at : start_at + RELEASE_CHUNK]
        for run_id, *values in RunStage.objects.filter(
            run_id__in=chunk, environment__in=["QA", "PROD"]
        ).values_list("run_id", "environment", "state", "result", "approval_ids", "finished_at"):
            found[model_of_run[run_id]].stages.setdefault(run_id, []).append(StageFact(*values))
        for pk, run_id, *values in ApprovalRequest.objects.filter(run_id__in=chunk).values_list(
            "pk", "run_id", "environment", "status", "decided_by"
        ):
            found[model_of_run[run_id]].approvals.setdefault(run_id, []).append(
                ApprovalFact(pk, *values)
            )


def _versions_add(found: dict[int, ModelEvidence], ids: list[int]) -> None:
    """The live versions of the models' live registered models, by version pk."""
    versions = ModelVersion.objects.filter(
        registered_model__catalog_model_id__in=ids,
        registered_model__deleted_upstream_at__isnull=True,
        deleted_upstream_at__isnull=True,
    ).values_list(*VERSION_COLUMNS)
    by_model: dict[int, dict[int, VersionFact]] = defaultdict(dict)
    for row in versions.iterator(chunk_size=ROW_CHUNK):
        pk, source, name, number, run_id, tags, run_tags, fetched, error, created, mid = row
        by_model[mid][pk] = VersionFact(
            pk=pk,
            source=source,
            model_name=name,
            version=number,
            run_id=run_id,
            tags=tags or {},
            run_tags=run_tags or {},
            run_read=bool(fetched) and not error,
            created_at=created,
        )
    for model_id, model_versions in by_model.items():
        found[model_id].versions = model_versions
