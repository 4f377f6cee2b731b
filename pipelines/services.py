"""Everything that changes the pipelines mirror: the ADO sync, run requests, hook intake.

Like the registry sync, it reads first and writes only differences, so it can run any number
of times (or after a crash) and converge. ADO's answer is the truth; service hooks only say
which run to re-read.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.admin_actions import ConnectionCheck, short_reason
from core.leases import lease, renewing
from registry.models import CatalogModel, ModelVersion

from .client import AdoClient, AdoError, AdoNotFound
from .models import (
    AdoProject,
    Environment,
    HookDelivery,
    Pipeline,
    PipelineKind,
    PipelineRun,
    RunRequest,
    RunStage,
)
from .signals import hook_received, runs_changed

logger = logging.getLogger(__name__)

LEASE_TTL_SECONDS = 20 * 60
BUSY = "another sync of this project is running"
CURSOR_OVERLAP = timedelta(minutes=5)
Progress = Callable[[str, int, int | None], None]


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


@dataclass
class SyncResult:
    project: str
    mode: str  # full | incremental | run
    pipelines: Counts = field(default_factory=Counts)
    runs: Counts = field(default_factory=Counts)
    stages: Counts = field(default_factory=Counts)
    timelines_read: int = 0
    requests: int = 0
    duration_seconds: float = 0.0
    error: str = ""
    skipped: str = ""
    changed_run_ids: set[int] = field(default_factory=set)
    newest_seen: datetime | None = None  # the latest queue/start/finish time ADO reported

    @property
    def ok(self) -> bool:
        return not self.error and not self.skipped

    def as_dict(self) -> dict:
        return {
            "project": self.project,
            "mode": self.mode,
            "pipelines": self.pipelines.as_dict(),
            "runs": self.runs.as_dict(),
            "stages": self.stages.as_dict(),
            "timelines_read": self.timelines_read,
            "requests": self.requests,
            "duration_seconds": round(self.duration_seconds, 3),
            "error": self.error,
            "skipped": self.skipped,
        }


def _noop(stage: str, done: int, total: int | None) -> None:
    return None


# Entry points ------------------------------------------------------------------------------


def project_sync(
    *,
    project: AdoProject,
    full: bool = False,
    progress: Progress | None = None,
    client: AdoClient | None = None,
) -> SyncResult:
    """Sync one ADO project: pipelines, runs changed since the cursor (or all), their stages."""
    full = full or project.cursor is None
    result = SyncResult(project=project.name, mode="full" if full else "incremental")
    client = client or AdoClient.for_project(project)
    with lease(AdoProject, project.pk, ttl_seconds=LEASE_TTL_SECONDS) as held:
        if not held:
            result.skipped = BUSY
        else:
            progress = renewing(
                progress or _noop, AdoProject, project.pk, held, ttl_seconds=LEASE_TTL_SECONDS
            )

            def work() -> None:
                _sync(project, client, full, result, progress)
                if full or not project.service_identity:
                    project_service_identity_record(project=project, client=client)

            _recording(project, result, client, work)
    return result


def project_service_identity_record(*, project: AdoProject, client: AdoClient) -> str:
    """Ask ADO whom the portal's credentials are (``connectionData``) and keep the name on
    the project, so the approval page can name the identity a decision goes out under before
    the portal's first delivery there. Read by a full sync, any sync while none is recorded,
    and "Test connection" (after credentials change), not by every poll: a quiet sync stays
    at its few requests. A failure to read it never fails the caller: it is logged and the
    name recorded before is kept. Returns the name ADO gave, "" when it could not be read."""
    try:
        name = client.get_service_identity().name[:300]
    except AdoError as exc:
        logger.warning(
            "could not read the portal's ADO identity for %s (keeping %r): %s",
            project.name,
            project.service_identity,
            exc,
        )
        return ""
    if name and name != project.service_identity:
        AdoProject.objects.filter(pk=project.pk).update(service_identity=name)
        project.service_identity = name
    return name


def project_sync_queue(*, project: AdoProject) -> None:
    """Queue a sync of the project once the current transaction commits ("Sync now")."""
    from .tasks import sync_project

    transaction.on_commit(lambda: sync_project.delay(project.pk))


CHECK_TIMEOUT = (3.0, 5.0)  # seconds to connect, to read


def project_connection_check(
    *, project: AdoProject, timeout: float | tuple[float, float] = CHECK_TIMEOUT
) -> ConnectionCheck:
    """Read the project from ADO once, not retried, to see it answers and the credentials
    work ("Test connection"), and record whom they are in ADO; a failure is reported, never
    raised."""
    started = time.monotonic()
    try:
        with AdoClient.for_project(project, timeout=timeout, max_retries=0) as client:
            found = client.get_project()
            elapsed_ms = (time.monotonic() - started) * 1000
            identity = project_service_identity_record(project=project, client=client)
    except ImproperlyConfigured as error:  # no credentials in the settings
        return ConnectionCheck(False, str(error))
    except AdoError as error:
        logger.warning("connection check of %s failed: %s", project.name, error)
        status = f" (HTTP {error.status})" if error.status is not None else ""
        return ConnectionCheck(False, f"{short_reason(error.message)}{status}")
    as_whom = f", as {identity}" if identity else ""
    return ConnectionCheck(
        True,
        f"project {found.get('name') or project.project} answered in {elapsed_ms:.0f} ms" + as_whom,
    )


def run_refresh(
    *, project: AdoProject, build_id: int, client: AdoClient | None = None
) -> SyncResult:
    """Re-read one run and its timeline (what a service hook asks for)."""
    result = SyncResult(project=project.name, mode="run")
    client = client or AdoClient.for_project(project)
    with lease(AdoProject, project.pk, ttl_seconds=LEASE_TTL_SECONDS) as held:
        if not held:
            result.skipped = BUSY
        else:

            def refresh() -> None:
                pipelines = _sync_pipelines(project, client, result, only_missing=True, builds=None)
                try:
                    build = client.get_build(build_id)
                except AdoNotFound:
                    return
                pipelines = _ensure_pipelines(project, client, [build], pipelines, result)
                _apply_builds(project, client, [build], pipelines, result, force_timeline=True)

            _recording(project, result, client, refresh, record_success=False)
    return result


def _recording(project, result, client, work, *, record_success: bool = True) -> None:
    started, started_at = time.perf_counter(), timezone.now()
    requests_before = client.request_count
    AdoProject.objects.filter(pk=project.pk).update(last_sync_started_at=started_at)
    try:
        work()
    except AdoError as exc:
        result.error = f"{exc.status or ''} {exc}".strip()[:2000]
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:2000]
        _finish(project, result, client, started, started_at, requests_before, record_success)
        raise
    _finish(project, result, client, started, started_at, requests_before, record_success)


def _finish(project, result, client, started, started_at, requests_before, record_success):
    result.duration_seconds = time.perf_counter() - started
    result.requests = client.request_count - requests_before
    now = timezone.now()
    if result.error:
        logger.warning("pipelines sync of %s failed: %s", project.name, result.error)
        AdoProject.objects.filter(pk=project.pk).update(
            last_sync_error_at=now, last_sync_error=result.error
        )
        return
    logger.info("pipelines sync of %s (%s): %s", project.name, result.mode, result.as_dict())
    if result.changed_run_ids:
        runs_changed.send(
            sender=PipelineRun, project=project, run_ids=sorted(result.changed_run_ids)
        )
    if record_success:
        updates = {"last_sync_succeeded_at": now, "last_sync_stats": result.as_dict()}
        if result.newest_seen and (project.cursor is None or result.newest_seen > project.cursor):
            # ADO's own clock, not ours: the next sync reads what changed after this.
            updates["cursor"] = result.newest_seen
            project.cursor = result.newest_seen
        AdoProject.objects.filter(pk=project.pk).update(**updates)


def _sync(project, client: AdoClient, full: bool, result: SyncResult, progress: Progress) -> None:
    pipelines = _sync_pipelines(project, client, result, only_missing=False, builds=None)
    progress("pipelines", len(pipelines), len(pipelines))
    if full:
        builds = list(client.list_builds(query_order="queueTimeDescending"))
    else:
        since = project.cursor - CURSOR_OVERLAP
        by_id: dict[int, dict] = {}
        for build in client.list_builds(min_time=since, query_order="queueTimeDescending"):
            by_id[build["id"]] = build
        for build in client.list_builds(min_time=since, query_order="finishTimeDescending"):
            by_id[build["id"]] = build
        running = list(
            PipelineRun.objects.filter(
                pipeline__project=project, state__in=["inProgress", "canceling", "unknown"]
            )
            .exclude(ado_id__in=by_id)
            .values_list("ado_id", flat=True)
        )
        for start in range(0, len(running), 100):
            for build in client.list_builds(build_ids=running[start : start + 100]):
                by_id[build["id"]] = build
        builds = list(by_id.values())
    progress("runs", len(builds), len(builds))
    times = [
        _when(build.get(key))
        for build in builds
        for key in ("queueTime", "startTime", "finishTime")
    ]
    result.newest_seen = max((t for t in times if t), default=None)
    pipelines = _ensure_pipelines(project, client, builds, pipelines, result)
    _apply_builds(project, client, builds, pipelines, result, progress=progress)


# Pipelines ---------------------------------------------------------------------------------

KIND_SUFFIXES = [
    ("data-cleansing", PipelineKind.DATA_CLEANSING),
    ("data_cleansing", PipelineKind.DATA_CLEANSING),
    ("cleanse", PipelineKind.DATA_CLEANSING),
    ("training", PipelineKind.TRAINING),
    ("train", PipelineKind.TRAINING),
    ("scoring", PipelineKind.SCORING),
    ("score", PipelineKind.SCORING),
    ("release", PipelineKind.RELEASE),
    ("deploy", PipelineKind.RELEASE),
    ("ci", PipelineKind.CI),
]


def pipeline_kind_and_model(
    name: str, folder: str, model_names: set[str]
) -> tuple[str, str | None]:
    """Recognise a pipeline's kind and model from the naming convention (docs/pipelines.md)."""
    lowered = name.lower()
    kind, stem = PipelineKind.OTHER, lowered
    for suffix, candidate in KIND_SUFFIXES:
        if lowered.endswith(f"-{suffix}") or lowered.endswith(f"_{suffix}"):
            kind, stem = candidate, name[: -len(suffix) - 1]
            break
    parts = [p for p in re.split(r"[\\/]", folder or "") if p]
    if parts and parts[-1] in model_names:
        return kind, parts[-1]
    # <team>-<model>: try the longest tail of the stem that names a catalog model.
    pieces = stem.split("-")
    for start in range(len(pieces)):
        candidate = "-".join(pieces[start:])
        if candidate in model_names:
            return kind, candidate
    return kind, None


def _sync_pipelines(project, client, result, *, only_missing: bool, builds) -> dict[int, Pipeline]:
    existing = {p.ado_id: p for p in Pipeline.objects.filter(project=project)}
    if only_missing:
        return existing
    upstream = list(client.list_pipelines())
    _upsert_pipelines(project, upstream, existing, result)
    return existing


def _ensure_pipelines(project, client, builds, pipelines, result) -> dict[int, Pipeline]:
    """Builds of a pipeline the mirror has not seen yet (created since the list was read)."""
    missing = {b["definition"]["id"] for b in builds} - set(pipelines)
    upstream = []
    for pipeline_id in sorted(missing):
        try:
            upstream.append(client.get_pipeline(pipeline_id))
        except AdoNotFound:
            upstream.append(
                {"id": pipeline_id, "name": _definition_name(builds, pipeline_id), "folder": ""}
            )
    if upstream:
        _upsert_pipelines(project, upstream, pipelines, result)
    return pipelines


def _definition_name(builds, pipeline_id) -> str:
    return next(
        b["definition"].get("name", "") for b in builds if b["definition"]["id"] == pipeline_id
    )


def _upsert_pipelines(project, upstream: list[dict], existing: dict[int, Pipeline], result) -> None:
    now = timezone.now()
    catalog = dict(CatalogModel.objects.values_list("name", "pk"))
    new, changed = [], []
    for item in upstream:
        kind, model_name = pipeline_kind_and_model(
            item.get("name", ""), item.get("folder", ""), set(catalog)
        )
        values = {
            "name": item.get("name", "")[:300],
            "folder": (item.get("folder") or "")[:500],
            "web_url": (((item.get("_links") or {}).get("web") or {}).get("href") or "")[:500],
        }
        pipeline = existing.get(item["id"])
        if pipeline is None:
            pipeline = Pipeline(
                project=project,
                ado_id=item["id"],
                kind=kind,
                catalog_model_id=catalog.get(model_name) if model_name else None,
                last_synced_at=now,
                **values,
            )
            new.append(pipeline)
            existing[item["id"]] = pipeline
            result.pipelines.created += 1
            continue
        if not pipeline.kind_set_by_hand:
            values["kind"] = kind
            values["catalog_model_id"] = (
                catalog.get(model_name) if model_name else pipeline.catalog_model_id
            )
        if _assign(pipeline, values):
            changed.append(pipeline)
            result.pipelines.updated += 1
        else:
            result.pipelines.unchanged += 1
    Pipeline.objects.bulk_create(new, batch_size=500)
    Pipeline.objects.bulk_update(
        changed, ["name", "folder", "web_url", "kind", "catalog_model_id"], batch_size=500
    )


# Runs and stages ---------------------------------------------------------------------------

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


def _when(value: str | None) -> datetime | None:
    return parse_datetime(value) if value else None


def _assign(obj, values: dict) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


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
        self.by_build_tag: dict[str, int] = {}
        if build_ids:
            # MLflow run tag ado.build_id on the training run (JSON key lookup on run_tags).
            for pk, tags in ModelVersion.objects.filter(
                run_tags__has_key="ado.build_id", deleted_upstream_at__isnull=True
            ).values_list("pk", "run_tags"):
                build = str(tags.get("ado.build_id", ""))
                if build in build_ids:
                    self.by_build_tag[build] = pk

    def version_for(self, build: dict, pipeline: Pipeline, parameters: dict) -> int | None:
        number = parameters.get("modelVersion", "").strip()
        if not number.isdigit():
            return self.by_build_tag.get(str(build["id"]))
        model_name = parameters.get("modelName") or self.catalog_names.get(
            pipeline.catalog_model_id
        )
        candidates = self.candidates.get((model_name, int(number)), [])
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
        "queued_at": _when(build.get("queueTime")),
        "started_at": _when(build.get("startTime")),
        "finished_at": _when(build.get("finishTime")),
        "source_branch": (build.get("sourceBranch") or "")[:300],
        "source_version": (build.get("sourceVersion") or "")[:100],
        "web_url": (((build.get("_links") or {}).get("web") or {}).get("href") or "")[:500],
        "parameters": parameters,
        "model_version_id": versions.version_for(build, pipeline, parameters),
    }


def _apply_builds(
    project,
    client: AdoClient,
    builds: list[dict],
    pipelines: dict[int, Pipeline],
    result: SyncResult,
    *,
    force_timeline: bool = False,
    progress: Progress = _noop,
) -> None:
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
        elif _assign(run, values):
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

    for index, run in enumerate(need_timeline, start=1):
        timeline = client.get_timeline(run.ado_id)
        result.timelines_read += 1
        _apply_timeline(run, timeline, result)
        if index % 50 == 0:
            progress("timelines", index, len(need_timeline))
    if need_timeline:
        progress("timelines", len(need_timeline), len(need_timeline))


def _environment(record: dict) -> str:
    text = f"{record.get('identifier') or ''} {record.get('name') or ''}".upper()
    if re.search(r"(^|[^A-Z])(PROD|PRODUCTION)([^A-Z]|$)", text):
        return Environment.PROD
    if re.search(r"(^|[^A-Z])QA([^A-Z]|$)", text):
        return Environment.QA
    return Environment.NONE


def _apply_timeline(run: PipelineRun, timeline: dict, result: SyncResult) -> None:
    records = timeline.get("records") or []
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
            "started_at": _when(record.get("startTime")),
            "finished_at": _when(record.get("finishTime")),
        }
    existing = {s.record_id: s for s in run.stages.all()}
    new, changed = [], []
    for record_id, values in upstream.items():
        stage = existing.get(record_id)
        if stage is None:
            new.append(RunStage(run=run, record_id=record_id, **values))
            result.stages.created += 1
        elif _assign(stage, values):
            changed.append(stage)
            result.stages.updated += 1
        else:
            result.stages.unchanged += 1
    with transaction.atomic():
        RunStage.objects.bulk_create(new)
        RunStage.objects.bulk_update(changed, STAGE_FIELDS)
        PipelineRun.objects.filter(pk=run.pk).update(timeline_synced_at=timezone.now())
    if new or changed:
        result.changed_run_ids.add(run.pk)


# Service hooks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HookOutcome:
    status: str  # queued | duplicate | ignored
    build_id: int | None = None


def hook_delivery_accept(*, project: AdoProject, envelope: dict) -> HookOutcome:
    """Record a delivery by its event id and say which run to re-read (None: the project)."""
    from .tasks import refresh_run, sync_project

    event_id = str(envelope.get("id") or "")[:100]
    event_type = str(envelope.get("eventType") or "")[:200]
    try:
        with transaction.atomic():
            HookDelivery.objects.create(event_id=event_id, project=project, event_type=event_type)
    except IntegrityError:
        return HookOutcome("duplicate")
    resource = envelope.get("resource") or {}
    transaction.on_commit(
        lambda: hook_received.send_robust(
            sender=AdoProject, project=project, event_type=event_type, resource=resource
        )
    )
    build_id = _hook_build_id(event_type, resource)
    if build_id is not None:
        transaction.on_commit(lambda: refresh_run.delay(project.pk, build_id))
        return HookOutcome("queued", build_id)
    if event_type.startswith("ms.vss-pipelinechecks-events."):
        # Approval payloads often lack the run: re-read the project's recent runs instead.
        transaction.on_commit(lambda: sync_project.delay(project.pk))
        return HookOutcome("queued")
    return HookOutcome("ignored")


def _hook_build_id(event_type: str, resource: dict) -> int | None:
    candidates = []
    if event_type == "build.complete":
        candidates.append(resource.get("id"))
    run = resource.get("run") or {}
    candidates.append(run.get("id"))
    approval_pipeline = ((resource.get("approval") or {}).get("pipeline") or {}).get("owner") or {}
    candidates.append(approval_pipeline.get("id"))
    for candidate in candidates:
        if isinstance(candidate, int) and candidate > 0:
            return candidate
        if isinstance(candidate, str) and candidate.isdigit():
            return int(candidate)
    return None


def hook_deliveries_prune(*, older_than_days: int = 14) -> int:
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = HookDelivery.objects.filter(received_at__lt=cutoff).delete()
    return deleted


# Run requests ------------------------------------------------------------------------------


def trigger_run(
    *, pipeline: Pipeline, parameters: dict, reason: str, note: str = "", acting_user=None
) -> RunRequest:
    """Ask ADO for a run of ``pipeline``: a person's click, or a drift / new-data event.

    The request is recorded with who asked and why, and a task sends it (the web process never
    calls ADO itself); its RunRequest shows whether ADO queued it.
    """
    from django.core.exceptions import ValidationError

    from .tasks import send_run_request

    if pipeline.kind not in (
        PipelineKind.TRAINING,
        PipelineKind.SCORING,
        PipelineKind.DATA_CLEANSING,
    ):
        raise ValidationError(
            f"{pipeline.get_kind_display()} pipelines are not started from the portal."
        )
    if not pipeline.project.enabled:
        raise ValidationError(f"The ADO project {pipeline.project.name} is disabled.")
    clean = {str(k): str(v) for k, v in (parameters or {}).items() if str(v) != ""}
    clean.setdefault("trigger", reason)
    if pipeline.catalog_model_id:
        clean.setdefault("modelName", pipeline.catalog_model.name)
    request = RunRequest(
        pipeline=pipeline, parameters=clean, reason=reason[:50], note=note, requested_by=acting_user
    )
    request.full_clean()
    request.save()
    transaction.on_commit(lambda: send_run_request.delay(request.pk))
    return request


def run_request_send(*, request: RunRequest, client: AdoClient | None = None) -> RunRequest:
    """Queue the run in ADO. Sent at most once: a lost answer is shown as failed, not resent."""
    updated = RunRequest.objects.filter(pk=request.pk, status=RunRequest.Status.QUEUED).update(
        status=RunRequest.Status.FAILED, error="sending (no answer from ADO yet)"
    )
    if not updated:
        return request  # already sent, or already failed
    pipeline = request.pipeline
    client = client or AdoClient.for_project(pipeline.project)
    try:
        answer = client.queue_run(pipeline.ado_id, template_parameters=request.parameters)
    except AdoError as exc:
        RunRequest.objects.filter(pk=request.pk).update(
            error=f"{exc.status or ''} {exc}".strip()[:2000]
        )
        request.refresh_from_db()
        return request
    with transaction.atomic():
        run, _ = PipelineRun.objects.get_or_create(
            pipeline=pipeline,
            ado_id=answer["id"],
            defaults={
                "name": str(answer.get("name") or "")[:300],
                "state": answer.get("state") or "inProgress",
                "reason": "manual",
                "trigger": request.parameters.get("trigger", request.reason)[:50],
                "queued_at": _when(answer.get("createdDate")) or timezone.now(),
                "parameters": request.parameters,
                "web_url": (((answer.get("_links") or {}).get("web") or {}).get("href") or "")[
                    :500
                ],
            },
        )
        PipelineRun.objects.filter(pk=run.pk).update(
            triggered_by=request.requested_by, trigger_note=request.note
        )
        RunRequest.objects.filter(pk=request.pk).update(
            status=RunRequest.Status.SENT, error="", sent_at=timezone.now(), run=run
        )
    request.refresh_from_db()
    return request


# Schedules ---------------------------------------------------------------------------------


def project_schedule_ensure(*, project: AdoProject) -> None:
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    interval, _ = IntervalSchedule.objects.get_or_create(
        every=max(project.sync_interval_seconds, 10), period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.update_or_create(
        name=f"pipelines sync: {project.name}",
        defaults={
            "task": "pipelines.sync_project",
            "interval": interval,
            "kwargs": json.dumps({"project_id": project.pk}),
            "enabled": project.enabled,
            "description": f"Incremental sync of the ADO project '{project.name}'.",
        },
    )


def project_schedule_remove(*, project: AdoProject) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name=f"pipelines sync: {project.name}").delete()
