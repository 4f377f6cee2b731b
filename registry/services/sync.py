"""Syncing a registry source: read it, apply the snapshot, and record how the run went.

The sync is idempotent and convergent: it reads the source, compares with the mirror and writes
only differences, in one transaction, after everything was read (``apply``). A lease keeps two
syncs of one source from running at once; the source's bookkeeping columns
(``core.models.SyncBookkeeping``) say when it last started, succeeded or failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from core.admin_actions import ConnectionCheck, short_reason
from core.leases import lease, renewing
from core.tasks import enqueue_after_commit

from ..client import RegistryClient, RegistryError, RegistryModelNotFound, UpstreamVersion
from ..models import RegisteredModel, RegistrySource
from ..signals import registered_models_changed
from .apply import snapshot_apply
from .common import Progress, SyncResult, noop_progress

logger = logging.getLogger("registry.services")

LEASE_TTL_SECONDS = 30 * 60
BUSY = "another sync of this source is running"
CHECK_TIMEOUT_SECONDS = 5.0


def registry_sync(
    *, source: RegistrySource, full: bool = False, progress: Progress | None = None
) -> SyncResult:
    """Sync one source: a full sweep, or only models updated since the cursor."""
    full = full or source.cursor_ms is None
    result = SyncResult(source=source.name, mode="full" if full else "incremental")
    progress = progress or noop_progress
    with lease(RegistrySource, source.pk, ttl_seconds=LEASE_TTL_SECONDS) as held:
        if not held:
            result.skipped = BUSY
            return result
        progress = renewing(
            progress, RegistrySource, source.pk, held, ttl_seconds=LEASE_TTL_SECONDS
        )
        _run_and_record(
            source, result, lambda client: _source_sync(source, client, full, result, progress)
        )
    return result


def registry_sync_queue(*, source: RegistrySource) -> None:
    """Queue a sync of the source once the current transaction commits ("Sync now")."""
    enqueue_after_commit("registry.sync_source", source.pk)


def registered_model_sync_queue(*, source: RegistrySource, name: str) -> None:
    """Queue a re-read of one registered model once the current transaction commits (what a
    webhook delivery asks for). A broker that is down is logged, not raised: the delivery is
    recorded already and the periodic sync catches up."""
    enqueue_after_commit("registry.sync_model", source.pk, name)


def registry_connection_check(
    *, source: RegistrySource, timeout: float = CHECK_TIMEOUT_SECONDS
) -> ConnectionCheck:
    """Read one registered model from the source, quickly, to see it answers ("Test
    connection"); a failure is reported, never raised."""
    try:
        seconds = RegistryClient.for_source(source).check(timeout=timeout)
    except Exception as error:  # RegistryError, or MLflow refusing the URI itself
        logger.warning("connection check of %s failed: %s", source.name, error)
        return ConnectionCheck(False, short_reason(str(error)))
    return ConnectionCheck(True, f"{source.tracking_uri} answered in {seconds * 1000:.0f} ms")


def registered_model_sync(*, source: RegistrySource, name: str) -> SyncResult:
    """Re-read one registered model and its versions (what a webhook asks for)."""
    result = SyncResult(source=source.name, mode="model")
    with lease(RegistrySource, source.pk, ttl_seconds=LEASE_TTL_SECONDS) as held:
        if not held:
            result.skipped = BUSY
            return result

        def sync_one(client: RegistryClient) -> None:
            try:
                upstream = {name: client.get_model(name)}
                versions = client.versions_of([name])
            except RegistryModelNotFound:
                upstream, versions = {}, []
            snapshot_apply(source, client, upstream, versions, scope={name}, result=result)

        _run_and_record(source, result, sync_one, record_success=False)
    return result


# Recording the outcome -----------------------------------------------------------------------


def _run_and_record(
    source: RegistrySource,
    result: SyncResult,
    work: Callable[[RegistryClient], None],
    *,
    record_success: bool = True,
) -> None:
    """Run ``work`` with a client of the source and record its outcome on the source.

    A registry error is the sync's result (recorded, not raised); anything else is a bug,
    recorded too, then raised for the task's log."""
    started = time.perf_counter()
    source.sync_started()
    try:
        work(RegistryClient.for_source(source))
    except RegistryError as exc:
        result.error = str(exc) or type(exc).__name__
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:1000]
        _outcome_record(source, result, started, record_success)
        raise
    _outcome_record(source, result, started, record_success)


def _outcome_record(
    source: RegistrySource, result: SyncResult, started: float, record_success: bool
) -> None:
    result.duration_seconds = time.perf_counter() - started
    if result.error:
        logger.warning("registry sync of %s failed: %s", source.name, result.error)
        source.sync_failed(result.error)
        return
    logger.info("registry sync of %s (%s): %s", source.name, result.mode, result.as_dict())
    if record_success:
        full_sweep = {"last_full_sync_at": timezone.now()} if result.mode == "full" else {}
        source.sync_succeeded(result.as_dict(), **full_sweep)
    if result.changed_model_names:
        names = sorted(result.changed_model_names)
        transaction.on_commit(
            lambda: registered_models_changed.send(
                sender=RegisteredModel, source=source, names=names
            )
        )


# Reading the source ------------------------------------------------------------------------


def _full_snapshot(client: RegistryClient, progress: Progress):
    """Every registered model and version of the source (a full sweep)."""
    upstream = {}
    for model in client.iter_models():
        upstream[model.name] = model
        if len(upstream) % 1000 == 0:
            progress("models", len(upstream), None)
    progress("models", len(upstream), len(upstream))
    versions: list[UpstreamVersion] = []
    for version in client.iter_all_versions(list(upstream)):
        versions.append(version)
        if len(versions) % 5000 == 0:
            progress("versions", len(versions), None)
    progress("versions", len(versions), len(versions))
    # A version whose model appeared after the model walk belongs to the next sync.
    return upstream, [v for v in versions if v.model_name in upstream]


def _source_sync(
    source: RegistrySource,
    client: RegistryClient,
    full: bool,
    result: SyncResult,
    progress: Progress,
) -> None:
    if full:
        upstream, versions = _full_snapshot(client, progress)
        scope = None
    else:
        changed = client.models_updated_after(source.cursor_ms or 0)
        upstream = {m.name: m for m in changed}
        versions = client.versions_of(list(upstream))
        progress("models", len(upstream), len(upstream))
        scope = set(upstream)
    snapshot_apply(
        source, client, upstream, versions, scope=scope, result=result, progress=progress
    )
    newest = max((m.updated_ms or 0 for m in upstream.values()), default=0)
    if newest > (source.cursor_ms or 0):
        RegistrySource.objects.filter(pk=source.pk).update(cursor_ms=newest)
        source.cursor_ms = newest
