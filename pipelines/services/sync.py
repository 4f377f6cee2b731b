"""The ADO sync of one project, and the re-read of one run (what a service hook asks for).

Like the registry sync, it reads first and writes only differences, so it can run any number
of times (or after a crash) and converge. ADO's answer is the truth; service hooks only say
which run to re-read. One sync of a project at a time (a lease); the project's bookkeeping
columns (``core.models.SyncBookkeeping``) say when it last started, succeeded or failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from core.leases import lease, renewing
from core.tasks import enqueue_after_commit

from ..client import AdoClient, AdoError, AdoNotFound
from ..models import AdoProject, PipelineRun
from ..signals import runs_changed
from .common import Progress, SyncResult, ado_datetime, no_progress
from .identity import project_service_identity_record
from .pipelines_apply import pipelines_ensure, pipelines_known, pipelines_sync
from .runs_apply import builds_apply

# One logger for the services (``pipelines.services``), whichever module logs.
logger = logging.getLogger(__package__)

LEASE_TTL_SECONDS = 20 * 60
BUSY = "another sync of this project is running"
CURSOR_OVERLAP = timedelta(minutes=5)
RUNNING_STATES = ["inProgress", "canceling", "unknown"]  # re-read until ADO says completed


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
                progress or no_progress, AdoProject, project.pk, held, ttl_seconds=LEASE_TTL_SECONDS
            )

            def work() -> None:
                _sync(project, client, full, result, progress)
                if full or not project.service_identity:
                    project_service_identity_record(project=project, client=client)

            _recording(project, result, client, work)
    return result


def project_sync_queue(*, project: AdoProject) -> None:
    """Queue a sync of the project once the current transaction commits ("Sync now")."""
    enqueue_after_commit("pipelines.sync_project", project.pk)


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
                pipelines = pipelines_known(project)
                try:
                    build = client.get_build(build_id)
                except AdoNotFound:
                    return
                pipelines = pipelines_ensure(project, client, [build], pipelines, result)
                builds_apply(project, client, [build], pipelines, result, force_timeline=True)

            _recording(project, result, client, refresh, record_success=False)
    return result


# The bookkeeping around a sync -----------------------------------------------------------


def _recording(
    project: AdoProject,
    result: SyncResult,
    client: AdoClient,
    work: Callable[[], None],
    *,
    record_success: bool = True,
) -> None:
    """Run ``work`` between the project's sync start and its success or failure. An ADO
    failure is the result's error; anything else is recorded as well, then raised."""
    started = time.perf_counter()
    requests_before = client.request_count
    project.sync_started()
    try:
        work()
    except AdoError as exc:
        result.error = f"{exc.status or ''} {exc}".strip()[:2000]
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:2000]
        _finish(project, result, client, started, requests_before, record_success)
        raise
    _finish(project, result, client, started, requests_before, record_success)


def _finish(project, result, client, started, requests_before, record_success) -> None:
    result.duration_seconds = time.perf_counter() - started
    result.requests = client.request_count - requests_before
    if result.error:
        logger.warning("pipelines sync of %s failed: %s", project.name, result.error)
        project.sync_failed(result.error)
        return
    logger.info("pipelines sync of %s (%s): %s", project.name, result.mode, result.as_dict())
    if result.changed_run_ids:
        runs_changed.send(
            sender=PipelineRun, project=project, run_ids=sorted(result.changed_run_ids)
        )
    if record_success:
        updates = {}
        if result.newest_seen and (project.cursor is None or result.newest_seen > project.cursor):
            # ADO's own clock, not ours: the next sync reads what changed after this.
            updates["cursor"] = result.newest_seen
        project.sync_succeeded(result.as_dict(), **updates)


# The sync's steps ------------------------------------------------------------------------


def _sync(project, client: AdoClient, full: bool, result: SyncResult, progress: Progress) -> None:
    pipelines = pipelines_sync(project, client, result)
    progress("pipelines", len(pipelines), len(pipelines))
    builds = _builds_to_read(project, client, full)
    progress("runs", len(builds), len(builds))
    times = [
        ado_datetime(build.get(key))
        for build in builds
        for key in ("queueTime", "startTime", "finishTime")
    ]
    result.newest_seen = max((t for t in times if t), default=None)
    pipelines = pipelines_ensure(project, client, builds, pipelines, result)
    builds_apply(project, client, builds, pipelines, result, progress=progress)


def _builds_to_read(project: AdoProject, client: AdoClient, full: bool) -> list[dict]:
    """Every build (full), else those queued or finished since the cursor (with an overlap)
    and those the mirror still has running."""
    if full:
        return list(client.list_builds(query_order="queueTimeDescending"))
    since = project.cursor - CURSOR_OVERLAP
    by_id: dict[int, dict] = {}
    for build in client.list_builds(min_time=since, query_order="queueTimeDescending"):
        by_id[build["id"]] = build
    for build in client.list_builds(min_time=since, query_order="finishTimeDescending"):
        by_id[build["id"]] = build
    running = list(
        PipelineRun.objects.filter(pipeline__project=project, state__in=RUNNING_STATES)
        .exclude(ado_id__in=by_id)
        .values_list("ado_id", flat=True)
    )
    for start in range(0, len(running), 100):
        for build in client.list_builds(build_ids=running[start : start + 100]):
            by_id[build["id"]] = build
    return list(by_id.values())
