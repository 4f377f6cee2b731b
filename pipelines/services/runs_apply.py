"""A sync's runs step: write the differences of ADO's builds (= runs), link each to the model
version it is about (docs/pipelines.md), and mirror the stages of the timelines that moved."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from core.sync import values_assign
from registry.models import CatalogModel, ModelVersion

from ..client import AdoClient
from ..models import Environment, Pipeline, PipelineKind, PipelineRun, RunStage
from .common import Progress, SyncResult, ado_datetime, no_progress
from .deployments import deployments_record

RUN_FIELDS = [
    "name", "state", "result", "reason", "trigger", "requested_by", "requested_by_id",
    "queued_at", "started_at", "finished_at", "source_branch", "source_version", "web_url",
    "parameters", "model_version_id",
]  # fmt: skip
STAGE_FIELDS = [
    "identifier", "name", "order", "environment", "target", "state", "result",
    "waiting_for_approval", "approval_ids", "started_at", "finished_at",
]  # fmt: skip
BUILD_STATE = {
    "inProgress": "inProgress", "notStarted": "inProgress", "postponed": "inProgress",
    "cancelling": "canceling", "completed": "completed",
}  # fmt: skip
REASON_TRIGGER = {"resourceTrigger": "new-data", "schedule": "schedule", "manual": "manual"}


def _parameters(build: dict) -> dict[str, str]:
    raw = build.get("templateParameters") or {}
    return {str(k): str(v) for k, v in raw.items()}


def _trigger(build: dict, pipeline: Pipeline, parameters: dict) -> str:
    if parameters.get("trigger"):
        return parameters["trigger"][:50]
    reason = build.get("reason") or ""
    if reason == "resourceTrigger" and pipeline.kind not in (
        PipelineKind.TRAINING,
        PipelineKind.SCORING,
    ):
        return "upstream"
    return REASON_TRIGGER.get(reason, reason)[:50]


class _VersionIndex:
    """Finds the model version a run is about (docs/pipelines.md) from one read of the
    versions of the models the runs name, instead of queries per run."""

    def __init__(self, builds: Iterable[dict], pipelines: dict[int, Pipeline]):
        builds = list(builds)
        self.catalog_names = dict(CatalogModel.objects.values_list("pk", "name"))
        names = {
            _parameters(b).get("modelName")
            or self.catalog_names.get(pipelines[b["definition"]["id"]].catalog_model_id)
            for b in builds
        } - {None, ""}
        # (catalog name, version number) -> [(is central, source name, version pk)]
        self.candidates: dict[tuple[str, int], list[tuple[bool, str, int]]] = {}
        for pk, number, catalog, source, central in ModelVersion.objects.filter(
            registered_model__catalog_model__name__in=names
        ).values_list(
            "pk",
            "version",
            "registered_model__catalog_model__name",
            "registered_model__source__name",
            "registered_model__source__is_central",
        ):
            self.candidates.setdefault((catalog, number), []).append((central, source, pk))
        build_ids = {str(b["id"]) for b in builds}
        # (catalog name, build id) -> [(is central, source name, version pk)]: the versions of
        # the run's own model whose MLflow run has the tag ado.build_id (JSON key lookup on
        # run_tags). Only that model's: build ids repeat across ADO organisations and
        # projects, so another model's version with the same tag is not this run's.
        self.by_build_tag: dict[tuple[str, str], list[tuple[bool, str, int]]] = {}
        if build_ids and names:
            for pk, tags, catalog, source, central in ModelVersion.objects.filter(
                registered_model__catalog_model__name__in=names,
                run_tags__has_key="ado.build_id",
                deleted_upstream_at__isnull=True,
            ).values_list(
                "pk",
                "run_tags",
                "registered_model__catalog_model__name",
                "registered_model__source__name",
                "registered_model__source__is_central",
            ):
                build = str(tags.get("ado.build_id", ""))
                if build in build_ids:
                    self.by_build_tag.setdefault((catalog, build), []).append((central, source, pk))

    def version_for(self, build: dict, pipeline: Pipeline, parameters: dict) -> int | None:
        """The version ``modelVersion`` names, else the one tagged with the build's id, both
        of the run's model (``modelName``, else the pipeline's)."""
        model_name = parameters.get("modelName") or self.catalog_names.get(
            pipeline.catalog_model_id
        )
        number = parameters.get("modelVersion", "").strip()
        if number.isdigit():
            candidates = self.candidates.get((model_name, int(number)), [])
        else:
            candidates = self.by_build_tag.get((model_name, str(build["id"])), [])
        source = parameters.get("registrySource")
        if source:
            candidates = [c for c in candidates if c[1] == source]
        # The named source, else the central registry, else the first source by name.
        best = min(candidates, key=lambda c: (not c[0], c[1]), default=None)
        return best[2] if best else None


def _run_values(build: dict, pipeline: Pipeline, versions: _VersionIndex) -> dict:
    parameters = _parameters(build)
    requested = build.get("requestedFor") or {}
    return {
        "name": str(build.get("buildNumber") or "")[:300],
        "state": BUILD_STATE.get(build.get("status") or "", "unknown"),
        "result": build.get("result") or "",
        "reason": (build.get("reason") or "")[:50],
        "trigger": _trigger(build, pipeline, parameters),
        "requested_by": (requested.get("displayName") or "")[:300],
        "requested_by_id": (requested.get("uniqueName") or requested.get("id") or "")[:100],
        "queued_at": ado_datetime(build.get("queueTime")),
        "started_at": ado_datetime(build.get("startTime")),
        "finished_at": ado_datetime(build.get("finishTime")),
        "source_branch": (build.get("sourceBranch") or "")[:300],
        "source_version": (build.get("sourceVersion") or "")[:100],
        "web_url": (((build.get("_links") or {}).get("web") or {}).get("href") or "")[:500],
        "parameters": parameters,
        "model_version_id": versions.version_for(build, pipeline, parameters),
    }


def builds_apply(
    project,
    client: AdoClient,
    builds: list[dict],
    pipelines: dict[int, Pipeline],
    result: SyncResult,
    *,
    force_timeline: bool = False,
    progress: Progress = no_progress,
) -> None:
    """Write the differences of ``builds`` (ADO's runs) and re-read the timelines that may
    have moved: new or changed runs, running ones, and all with ``force_timeline``."""
    need_timeline = _runs_write(project, builds, pipelines, result, force_timeline)
    for index, run in enumerate(need_timeline, start=1):
        timeline = client.get_timeline(run.ado_id)
        result.timelines_read += 1
        _timeline_apply(run, timeline, result)
        if index % 50 == 0:
            progress("timelines", index, len(need_timeline))
    if need_timeline:
        progress("timelines", len(need_timeline), len(need_timeline))


def _runs_write(
    project, builds: list[dict], pipelines: dict[int, Pipeline], result, force_timeline: bool
) -> list[PipelineRun]:
    """Create and update the runs (one transaction); the runs whose timeline to read."""
    now = timezone.now()
    versions = _VersionIndex(builds, pipelines)
    existing = {
        (r.pipeline_id, r.ado_id): r
        for r in PipelineRun.objects.filter(
            pipeline__project=project, ado_id__in=[b["id"] for b in builds]
        )
    }
    new, changed, need_timeline = [], [], []
    for build in builds:
        pipeline = pipelines[build["definition"]["id"]]
        values = _run_values(build, pipeline, versions)
        run = existing.get((pipeline.pk, build["id"]))
        if run is None:
            run = PipelineRun(pipeline=pipeline, ado_id=build["id"], last_synced_at=now, **values)
            new.append(run)
            result.runs.created += 1
            need_timeline.append(run)
        elif values_assign(run, values):
            # Its timeline is stale until re-read (kept stale if that read fails), so a run
            # that completed is never left with the stages of its last running state.
            run.timeline_synced_at = None
            changed.append(run)
            result.runs.updated += 1
            need_timeline.append(run)
        else:
            result.runs.unchanged += 1
            # Running runs move stage by stage without the build itself changing; a completed
            # run's timeline was read when it completed and is cached from then on.
            if force_timeline or run.is_running or run.timeline_synced_at is None:
                need_timeline.append(run)
    with transaction.atomic():
        PipelineRun.objects.bulk_create(new, batch_size=500)
        PipelineRun.objects.bulk_update(
            changed, [*RUN_FIELDS, "timeline_synced_at"], batch_size=500
        )
    result.changed_run_ids.update(r.pk for r in new + changed)
    return need_timeline


def _environment(record: dict) -> str:
    text = f"{record.get('identifier') or ''} {record.get('name') or ''}".upper()
    if re.search(r"(^|[^A-Z])(PROD|PRODUCTION)([^A-Z]|$)", text):
        return Environment.PROD
    if re.search(r"(^|[^A-Z])QA([^A-Z]|$)", text):
        return Environment.QA
    return Environment.NONE


def _timeline_apply(run: PipelineRun, timeline: dict, result: SyncResult) -> None:
    """Mirror the run's stages from its timeline (writes only differences), and mark the
    timeline read."""
    upstream = _stage_values(run, timeline.get("records") or [])
    existing = {s.record_id: s for s in run.stages.all()}
    new, changed = [], []
    for record_id, values in upstream.items():
        stage = existing.get(record_id)
        if stage is None:
            new.append(RunStage(run=run, record_id=record_id, **values))
            result.stages.created += 1
        elif values_assign(stage, values):
            changed.append(stage)
            result.stages.updated += 1
        else:
            result.stages.unchanged += 1
    with transaction.atomic():
        RunStage.objects.bulk_create(new)
        RunStage.objects.bulk_update(changed, STAGE_FIELDS)
        PipelineRun.objects.filter(pk=run.pk).update(timeline_synced_at=timezone.now())
        # The stages that started serving join the deployment history (once each).
        result.deployments_recorded += deployments_record(run, [*existing.values(), *new])
    if new or changed:
        result.changed_run_ids.add(run.pk)


def _stage_values(run: PipelineRun, records: list[dict]) -> dict[str, dict]:
    """The stage rows of a timeline, by record id: a stage's approvals are the
    ``Checkpoint.Approval`` records under its ``Checkpoint``."""
    by_parent: dict[str, list[dict]] = {}
    for record in records:
        by_parent.setdefault(record.get("parentId") or "", []).append(record)
    target = (run.parameters.get("deployTarget") or "")[:100]
    upstream = {}
    for record in records:
        if record.get("type") != "Stage":
            continue
        approvals = [
            approval
            for checkpoint in by_parent.get(record["id"], [])
            if checkpoint.get("type") == "Checkpoint"
            for approval in by_parent.get(checkpoint["id"], [])
            if approval.get("type") == "Checkpoint.Approval"
        ]
        environment = _environment(record)
        upstream[record["id"]] = {
            "identifier": (record.get("identifier") or "")[:200],
            "name": (record.get("name") or "")[:300],
            "order": record.get("order") or 0,
            "environment": environment,
            "target": target if environment else "",
            "state": record.get("state") or "",
            "result": record.get("result") or "",
            "waiting_for_approval": any(a.get("state") == "inProgress" for a in approvals),
            "approval_ids": [a["id"] for a in approvals],
            "started_at": ado_datetime(record.get("startTime")),
            "finished_at": ado_datetime(record.get("finishTime")),
        }
    return upstream
