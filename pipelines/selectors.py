"""Read queries shared by this app's views, API and the registry page sections.

What a model version's deployment is, in one sentence: a version is deployed to an environment
and target when the latest completed and succeeded stage of that environment for that target
belongs to a run deploying that version (``run.model_version``). The target is the run's
``deployTarget`` parameter, else the stage's target, else ``default``; several targets make
several versions deployed at once, and all are shown.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields

from django.db.models import (
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    TextField,
    Value,
    Window,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Lower, NullIf, RowNumber
from django.urls import reverse

from core.sync import SyncStatus
from registry.models import CatalogModel, ModelVersion
from registry.selectors import SourceFreshness

from .models import (
    AdoProject,
    Environment,
    Pipeline,
    PipelineKind,
    PipelineRun,
    RunRequest,
    RunResult,
    RunStage,
    RunState,
)

ENVIRONMENTS = (Environment.QA.value, Environment.PROD.value)
DEFAULT_TARGET = "default"
# Kinds whose runs produce a model version (train it, or score a rule-based model).
PRODUCING_KINDS = (PipelineKind.TRAINING.value, PipelineKind.SCORING.value)
# The order kinds are shown in, following the workflow.
KIND_ORDER = [
    PipelineKind.CI,
    PipelineKind.DATA_CLEANSING,
    PipelineKind.TRAINING,
    PipelineKind.SCORING,
    PipelineKind.RELEASE,
    PipelineKind.OTHER,
]
RUNNING_STATES = (RunState.IN_PROGRESS.value, RunState.CANCELING.value)

# State filter values: "running" (in progress or canceling), "waiting" (running, a stage waits
# for an approval) and "completed".
STATE_FILTERS = {
    "running": "Running",
    "waiting": "Waiting for approval",
    "completed": "Completed",
}
RESULT_FILTERS = {
    value: label for value, label in RunResult.choices if value not in ("", RunResult.UNKNOWN)
}
# The workflow's words for why a run ran (the `trigger` parameter), plus ADO's build reasons.
TRIGGER_LABELS = {
    "manual": "manual",
    "schedule": "schedule",
    "new-data": "new data",
    "new data": "new data",
    "new_data": "new data",
    "drift": "drift",
    "threshold": "threshold",
    "individualci": "CI",
    "batchedci": "CI",
    "pullrequest": "pull request",
    "resourcetrigger": "resource trigger",
    "buildcompletion": "pipeline completion",
    "upstream": "upstream pipeline",
}
SORTS = {
    # key: order_by ascending
    "started": ("queued_at",),
    "pipeline": ("pipeline__name",),
    "model": ("pipeline__catalog_model__name",),
}
DEFAULT_SORT = "-started"


def trigger_label(value: str) -> str:
    """A run's reason in the workflow's words ("new data", "drift"...)."""
    return TRIGGER_LABELS.get((value or "").strip().lower(), value or "")


# --- Freshness -------------------------------------------------------------------------------


def sync_status_list() -> list[SyncStatus]:
    """One SyncStatus per enabled ADO project, for /readyz, /metrics and the operator's home."""
    return [
        project.sync_status(
            f"pipelines:{project.name}",
            system="Azure DevOps",
            admin_url=reverse("admin:pipelines_adoproject_change", args=[project.pk]),
        )
        for project in AdoProject.objects.filter(enabled=True)
    ]


def project_freshness() -> list[SourceFreshness]:
    """How fresh the mirror of each enabled ADO project is (ok, stale, failing, never)."""
    return [
        SourceFreshness(
            p.name,
            False,
            p.last_sync_succeeded_at,
            p.last_sync_error_at,
            p.last_sync_error,
            system="Azure DevOps",
            admin_url=reverse("admin:pipelines_adoproject_change", args=[p.pk]),
        )
        for p in AdoProject.objects.filter(enabled=True)
    ]


# --- Pipelines -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineFilters:
    model: str = ""  # catalog model name
    kind: str = ""
    project: str = ""  # AdoProject.name


def pipeline_list(*, filters: PipelineFilters) -> QuerySet[Pipeline]:
    """Pipelines (not deleted upstream), with their project and model, by name."""
    qs = Pipeline.objects.filter(deleted_upstream_at__isnull=True).select_related(
        "project", "catalog_model"
    )
    if filters.model:
        qs = qs.filter(catalog_model__name=filters.model)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.project:
        qs = qs.filter(project__name=filters.project)
    return qs.order_by("name", "pk")


def pipeline_runnable_get(*, pk: int) -> Pipeline:
    """A pipeline a person may queue (training or scoring, of a model); raises DoesNotExist."""
    return Pipeline.objects.select_related("project", "catalog_model").get(
        pk=pk,
        kind__in=PRODUCING_KINDS,
        catalog_model__isnull=False,
        deleted_upstream_at__isnull=True,
        project__enabled=True,
    )


# --- Runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFilters:
    """What the runs list (page and API) is narrowed by; blank means no filter."""

    model: str = ""  # catalog model name
    kind: str = ""
    state: str = ""  # a STATE_FILTERS key
    result: str = ""
    trigger: str = ""  # the workflow's trigger, or ADO's reason when the run names none
    date_from: dt.date | None = None  # queued on or after this day (UTC)
    date_to: dt.date | None = None  # queued on or before this day (UTC)
    project: str = ""
    sort: str = DEFAULT_SORT

    @property
    def any(self) -> bool:
        """Whether any filter is set (the sort is not a filter)."""
        return any(getattr(self, f.name) for f in fields(self) if f.name != "sort")


def _stages_prefetch() -> Prefetch:
    return Prefetch("stages", queryset=RunStage.objects.order_by("order", "pk"))


def _waiting_stage():
    return RunStage.objects.filter(run=OuterRef("pk"), waiting_for_approval=True)


def run_list(*, filters: RunFilters) -> QuerySet[PipelineRun]:
    """Runs, filtered, newest first, with pipeline, project, model, version and stages."""
    qs = PipelineRun.objects.select_related(
        "pipeline__project",
        "pipeline__catalog_model",
        "model_version__registered_model__source",
    ).annotate(is_waiting=Exists(_waiting_stage()))
    if filters.model:
        qs = qs.filter(pipeline__catalog_model__name=filters.model)
    if filters.kind:
        qs = qs.filter(pipeline__kind=filters.kind)
    if filters.project:
        qs = qs.filter(pipeline__project__name=filters.project)
    if filters.state == "running":
        qs = qs.filter(state__in=RUNNING_STATES)
    elif filters.state == "waiting":
        qs = qs.filter(state__in=RUNNING_STATES, is_waiting=True)
    elif filters.state:
        qs = qs.filter(state=filters.state)
    if filters.result:
        qs = qs.filter(result=filters.result)
    if filters.trigger:
        wanted = {filters.trigger.lower()} | {
            key for key, label in TRIGGER_LABELS.items() if label == trigger_label(filters.trigger)
        }
        qs = qs.annotate(trigger_lower=Lower("trigger"), reason_lower=Lower("reason")).filter(
            Q(trigger_lower__in=wanted) | Q(trigger="", reason_lower__in=wanted)
        )
    if filters.date_from:
        qs = qs.filter(queued_at__date__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(queued_at__date__lte=filters.date_to)

    key = filters.sort.removeprefix("-")
    descending = filters.sort.startswith("-")
    if key not in SORTS:
        key, descending = "started", True
    order = []
    for name in SORTS[key]:
        expression = F(name)
        order.append(
            expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
        )
    if key != "started":
        order.append(F("queued_at").desc(nulls_last=True))
    return qs.order_by(*order, "-ado_id", "-pk").prefetch_related(_stages_prefetch())


def runs_in_progress(*, catalog_ids: list[int] | None = None, limit: int = 8):
    """Runs in progress, newest first, of the given catalog models (None: of every model).

    Returns (the first ``limit`` runs, how many there are).
    """
    qs = run_list(filters=RunFilters(state="running"))
    if catalog_ids is not None:
        qs = qs.filter(pipeline__catalog_model_id__in=catalog_ids)
    return list(qs[:limit]), qs.count()


def run_get(*, pk: int) -> PipelineRun:
    """One run with everything its page shows; raises PipelineRun.DoesNotExist."""
    return (
        PipelineRun.objects.select_related(
            "pipeline__project",
            "pipeline__catalog_model",
            "model_version__registered_model__source",
            "triggered_by",
        )
        .annotate(is_waiting=Exists(_waiting_stage()))
        .prefetch_related(
            _stages_prefetch(),
            Prefetch(
                "requests",
                queryset=RunRequest.objects.select_related("requested_by").order_by(
                    "-requested_at"
                ),
            ),
        )
        .get(pk=pk)
    )


def trigger_choices() -> list[tuple[str, str]]:
    """(value, label) of the reasons seen in the mirror plus the workflow's own (one query)."""
    seen = {"manual", "schedule", "new-data", "drift", "threshold"}
    for trigger, reason in (
        PipelineRun.objects.order_by().values_list("trigger", "reason").distinct()
    ):
        value = trigger or reason
        if value:
            seen.add(value)
    by_label: dict[str, str] = {}
    for value in sorted(seen, key=str.lower):
        by_label.setdefault(trigger_label(value), value)
    return sorted(((v, label) for label, v in by_label.items()), key=lambda c: c[1])


def model_choices() -> list[str]:
    """Names of catalog models that have pipelines (one query)."""
    return list(
        CatalogModel.objects.filter(pipelines__isnull=False)
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()
    )


def project_choices() -> list[str]:
    return list(AdoProject.objects.order_by("name").values_list("name", flat=True))


# --- Model page ------------------------------------------------------------------------------


@dataclass
class KindRuns:
    """A pipeline kind of one model: its pipelines and the latest run among them (or None)."""

    kind: str
    label: str
    pipelines: list[Pipeline] = field(default_factory=list)
    run: PipelineRun | None = None


def _run_order():
    return [F("queued_at").desc(nulls_last=True), F("ado_id").desc(), F("pk").desc()]


def latest_run_per_kind(catalog_model: CatalogModel) -> list[KindRuns]:
    """Per kind of the model's pipelines, in workflow order, the latest run (three queries)."""
    pipelines = list(
        Pipeline.objects.filter(catalog_model=catalog_model, deleted_upstream_at__isnull=True)
        .select_related("project")
        .order_by("name")
    )
    if not pipelines:
        return []
    by_kind: dict[str, KindRuns] = {}
    labels = dict(PipelineKind.choices)
    for pipeline in pipelines:
        entry = by_kind.setdefault(
            pipeline.kind, KindRuns(pipeline.kind, labels.get(pipeline.kind, pipeline.kind))
        )
        entry.pipelines.append(pipeline)
    latest = (
        PipelineRun.objects.filter(pipeline__in=pipelines)
        .annotate(
            position=Window(RowNumber(), partition_by=[F("pipeline__kind")], order_by=_run_order()),
            is_waiting=Exists(_waiting_stage()),
        )
        .filter(position=1)
        .select_related("pipeline", "model_version__registered_model__source")
        .prefetch_related(_stages_prefetch())
    )
    for run in latest:
        by_kind[run.pipeline.kind].run = run
    order = {k.value: i for i, k in enumerate(KIND_ORDER)}
    return sorted(by_kind.values(), key=lambda e: (order.get(e.kind, len(order)), e.kind))


@dataclass(frozen=True)
class Deployment:
    """A version running in an environment on a target since ``deployed_at``."""

    environment: str
    target: str
    version: ModelVersion | None  # None: the deploying run names no version the mirror knows
    run: PipelineRun
    stage: RunStage
    deployed_at: dt.datetime | None

    @property
    def catalog_model_id(self) -> int | None:
        return self.run.pipeline.catalog_model_id


def _target_expression():
    return Lower(
        Coalesce(
            NullIf(KeyTextTransform("deployTarget", "run__parameters"), Value("")),
            NullIf(F("target"), Value("")),
            Value(DEFAULT_TARGET),
            output_field=TextField(),
        )
    )


def _empty_deployments() -> dict[str, list[Deployment]]:
    return {env: [] for env in ENVIRONMENTS}


def deployments_for_catalog(catalog_ids) -> dict[int, dict[str, list[Deployment]]]:
    """Per catalog model pk, per environment, what is deployed now (one query for all).

    For each (model, environment, target) the latest completed, succeeded stage decides.
    """
    catalog_ids = [pk for pk in catalog_ids if pk is not None]
    result: dict[int, dict[str, list[Deployment]]] = {}
    if not catalog_ids:
        return result
    stages = (
        RunStage.objects.filter(
            run__pipeline__catalog_model_id__in=catalog_ids,
            environment__in=ENVIRONMENTS,
            state=RunState.COMPLETED,
            result=RunResult.SUCCEEDED,
        )
        .annotate(deploy_target=_target_expression())
        .annotate(
            position=Window(
                RowNumber(),
                partition_by=[
                    F("run__pipeline__catalog_model_id"),
                    F("environment"),
                    F("deploy_target"),
                ],
                order_by=[
                    Coalesce("finished_at", "started_at").desc(nulls_last=True),
                    F("run__queued_at").desc(nulls_last=True),
                    F("pk").desc(),
                ],
            )
        )
        .filter(position=1)
        .select_related(
            "run__pipeline",
            "run__model_version__registered_model__source",
        )
    )
    for stage in stages:
        run = stage.run
        deployment = Deployment(
            environment=stage.environment,
            target=stage.deploy_target,
            version=run.model_version,
            run=run,
            stage=stage,
            deployed_at=stage.finished_at or stage.started_at,
        )
        per_env = result.setdefault(run.pipeline.catalog_model_id, _empty_deployments())
        per_env[stage.environment].append(deployment)
    for per_env in result.values():
        for deployments in per_env.values():
            deployments.sort(key=lambda d: d.target)
    return result


def deployments_now(catalog_model: CatalogModel) -> dict[str, list[Deployment]]:
    """{"QA": [Deployment, ...], "PROD": [...]}: every version deployed now, by target."""
    return deployments_for_catalog([catalog_model.pk]).get(catalog_model.pk, _empty_deployments())


def run_requests_recent(catalog_model: CatalogModel, limit: int = 5) -> list[RunRequest]:
    """The latest runs people (or automation) asked the portal to queue for a model."""
    return list(
        RunRequest.objects.filter(pipeline__catalog_model=catalog_model)
        .select_related("pipeline", "requested_by", "run")
        .order_by("-requested_at", "-pk")[:limit]
    )


# --- Version page ----------------------------------------------------------------------------


@dataclass
class VersionRuns:
    produced_by: list[PipelineRun]  # the training or scoring runs that made it
    deployed_by: list[PipelineRun]  # the release runs that deployed it, with their stages

    @property
    def empty(self) -> bool:
        return not self.produced_by and not self.deployed_by


def runs_for_version(version: ModelVersion) -> VersionRuns:
    """The run that trained (or scored) a version and the release runs that deployed it."""
    runs = list(
        PipelineRun.objects.filter(
            model_version=version,
            pipeline__kind__in=(*PRODUCING_KINDS, PipelineKind.RELEASE),
        )
        .select_related("pipeline__project", "pipeline__catalog_model")
        .annotate(is_waiting=Exists(_waiting_stage()))
        .prefetch_related(_stages_prefetch())
        .order_by(*_run_order())
    )
    return VersionRuns(
        produced_by=[r for r in runs if r.pipeline.kind in PRODUCING_KINDS],
        deployed_by=[r for r in runs if r.pipeline.kind == PipelineKind.RELEASE],
    )


def run_deploy_target(run: PipelineRun, stage: RunStage) -> str:
    """Where a stage of a run deploys (the same rule as deployments_for_catalog)."""
    parameters = run.parameters if isinstance(run.parameters, dict) else {}
    return (str(parameters.get("deployTarget") or "") or stage.target or DEFAULT_TARGET).lower()


def model_deployments_get(*, name: str) -> tuple[CatalogModel, dict[str, list[Deployment]]]:
    """A catalog model by name and its deployments now; raises CatalogModel.DoesNotExist."""
    model = CatalogModel.objects.get(name=name)
    return model, deployments_now(model)
