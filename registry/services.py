"""Everything that changes the registry mirror and the catalog: the sync and its schedules.

The sync is idempotent and convergent: it reads the source, compares with the mirror and writes
only differences, in one transaction, after everything was read (a source that fails mid-read
leaves the mirror as it was). Rows that vanished upstream are marked deleted, never dropped.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.admin_actions import ConnectionCheck, short_reason
from core.leases import lease, renewing

from .client import (
    RegistryClient,
    RegistryError,
    RegistryModelNotFound,
    UpstreamModel,
    UpstreamRun,
    UpstreamVersion,
)
from .models import CatalogModel, ModelKind, ModelVersion, RegisteredModel, RegistrySource, Serving
from .signals import registered_models_changed

logger = logging.getLogger(__name__)

LEASE_TTL_SECONDS = 30 * 60
BUSY = "another sync of this source is running"
Progress = Callable[[str, int, int | None], None]


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("created", "updated", "deleted", "unchanged")}

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass
class SyncResult:
    source: str
    mode: str  # full | incremental | model
    models: Counts = field(default_factory=Counts)
    versions: Counts = field(default_factory=Counts)
    runs_read: int = 0
    run_errors: int = 0
    duration_seconds: float = 0.0
    error: str = ""
    skipped: str = ""
    changed_model_names: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.error and not self.skipped

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "mode": self.mode,
            "models": self.models.as_dict(),
            "versions": self.versions.as_dict(),
            "runs_read": self.runs_read,
            "run_errors": self.run_errors,
            "duration_seconds": round(self.duration_seconds, 3),
            "error": self.error,
            "skipped": self.skipped,
        }


def _noop_progress(stage: str, done: int, total: int | None) -> None:
    return None


def registry_sync(
    *, source: RegistrySource, full: bool = False, progress: Progress | None = None
) -> SyncResult:
    """Sync one source: a full sweep, or only models updated since the cursor."""
    full = full or source.cursor_ms is None
    result = SyncResult(source=source.name, mode="full" if full else "incremental")
    progress = progress or _noop_progress
    with lease(RegistrySource, source.pk, ttl_seconds=LEASE_TTL_SECONDS) as held:
        if not held:
            result.skipped = BUSY
            return result
        progress = renewing(
            progress, RegistrySource, source.pk, held, ttl_seconds=LEASE_TTL_SECONDS
        )
        _run_recording_outcome(
            source, result, lambda client: _sync(source, client, full, result, progress)
        )
    return result


def registry_sync_queue(*, source: RegistrySource) -> None:
    """Queue a sync of the source once the current transaction commits ("Sync now")."""
    from .tasks import sync_source

    transaction.on_commit(lambda: sync_source.delay(source.pk))


CHECK_TIMEOUT_SECONDS = 5.0


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
            _apply(source, client, upstream, versions, scope={name}, result=result)

        _run_recording_outcome(source, result, sync_one, record_success=False)
    return result


def _run_recording_outcome(source, result, work, *, record_success: bool = True) -> None:
    started = time.perf_counter()
    started_at = timezone.now()
    RegistrySource.objects.filter(pk=source.pk).update(last_sync_started_at=started_at)
    try:
        work(RegistryClient.for_source(source))
    except RegistryError as exc:
        result.error = str(exc) or type(exc).__name__
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:1000]
        _record(source, result, started, started_at, record_success)
        raise
    _record(source, result, started, started_at, record_success)


def _record(source, result, started, started_at, record_success) -> None:
    result.duration_seconds = time.perf_counter() - started
    now = timezone.now()
    if result.error:
        logger.warning("registry sync of %s failed: %s", source.name, result.error)
        RegistrySource.objects.filter(pk=source.pk).update(
            last_sync_error_at=now, last_sync_error=result.error[:2000]
        )
        return
    logger.info("registry sync of %s (%s): %s", source.name, result.mode, result.as_dict())
    if record_success:
        updates = {"last_sync_succeeded_at": now, "last_sync_stats": result.as_dict()}
        if result.mode == "full":
            updates["last_full_sync_at"] = now
        RegistrySource.objects.filter(pk=source.pk).update(**updates)
    if result.changed_model_names:
        names = sorted(result.changed_model_names)
        transaction.on_commit(
            lambda: registered_models_changed.send(
                sender=RegisteredModel, source=source, names=names
            )
        )


def _sync(
    source, client: RegistryClient, full: bool, result: SyncResult, progress: Progress
) -> None:
    if full:
        upstream: dict[str, UpstreamModel] = {}
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
        versions = [v for v in versions if v.model_name in upstream]
        scope = None
    else:
        changed = client.models_updated_after(source.cursor_ms or 0)
        upstream = {m.name: m for m in changed}
        versions = client.versions_of(list(upstream))
        progress("models", len(upstream), len(upstream))
        scope = set(upstream)
    _apply(source, client, upstream, versions, scope=scope, result=result, progress=progress)
    newest = max((m.updated_ms or 0 for m in upstream.values()), default=0)
    if newest > (source.cursor_ms or 0):
        RegistrySource.objects.filter(pk=source.pk).update(cursor_ms=newest)
        source.cursor_ms = newest


# Applying a snapshot to the mirror -----------------------------------------------------------

MODEL_FIELDS = [
    "description", "tags", "aliases", "created_upstream_at", "updated_upstream_at",
    "updated_upstream_ms", "deleted_upstream_at",
]  # fmt: skip
VERSION_FIELDS = [
    "description", "status", "status_message", "stage", "user_id", "source_uri", "run_id",
    "run_link", "tags", "aliases", "created_upstream_at", "updated_upstream_at",
    "updated_upstream_ms", "deleted_upstream_at",
]  # fmt: skip
RUN_FIELDS = ["metrics", "params", "run_tags", "experiment_id", "run_fetched_at", "run_fetch_error"]


def _when(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def _model_values(upstream: UpstreamModel) -> dict:
    return {
        "description": upstream.description,
        "tags": upstream.tags,
        "aliases": upstream.aliases,
        "created_upstream_at": _when(upstream.created_ms),
        "updated_upstream_at": _when(upstream.updated_ms),
        "updated_upstream_ms": upstream.updated_ms,
        "deleted_upstream_at": None,
    }


def _version_values(upstream: UpstreamVersion, aliases: list[str]) -> dict:
    return {
        "description": upstream.description,
        "status": upstream.status,
        "status_message": upstream.status_message,
        "stage": upstream.stage,
        "user_id": upstream.user_id,
        "source_uri": upstream.source_uri,
        "run_id": upstream.run_id,
        "run_link": upstream.run_link,
        "tags": upstream.tags,
        "aliases": aliases,
        "created_upstream_at": _when(upstream.created_ms),
        "updated_upstream_at": _when(upstream.updated_ms),
        "updated_upstream_ms": upstream.updated_ms,
        "deleted_upstream_at": None,
    }


def _assign(obj, values: dict) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _finite(metrics: dict[str, float]) -> dict[str, float | None]:
    # JSON has no NaN or infinity; a metric MLflow holds as NaN is shown as missing.
    return {k: (v if math.isfinite(v) else None) for k, v in metrics.items()}


def _run_values(run: UpstreamRun | None, error: str, now) -> dict:
    if run is None:
        return {"run_fetch_error": error[:500], "run_fetched_at": now}
    return {
        "metrics": _finite(run.metrics),
        "params": run.params,
        "run_tags": run.tags,
        "experiment_id": run.experiment_id,
        "run_fetched_at": now,
        "run_fetch_error": "",
    }


def _apply(
    source: RegistrySource,
    client: RegistryClient,
    upstream: dict[str, UpstreamModel],
    versions: list[UpstreamVersion],
    *,
    scope: set[str] | None,
    result: SyncResult,
    progress: Progress = _noop_progress,
) -> None:
    """Make the mirror of ``scope`` (None: the whole source) equal the upstream snapshot."""
    now = timezone.now()
    existing_models = RegisteredModel.objects.filter(source=source)
    existing_versions = ModelVersion.objects.filter(registered_model__source=source)
    if scope is not None:
        existing_models = existing_models.filter(name__in=scope)
        existing_versions = existing_versions.filter(registered_model__name__in=scope)
    models_by_name = {m.name: m for m in existing_models}
    versions_by_key = {(v.registered_model_id, v.version): v for v in existing_versions}

    # Source runs are read before writing anything, only for versions that need them.
    wanted_runs = {}
    for v in versions:
        model = models_by_name.get(v.model_name)
        mirrored = versions_by_key.get((model.pk, v.version)) if model else None
        if v.run_id and (
            mirrored is None or mirrored.run_id != v.run_id or mirrored.run_fetched_at is None
        ):
            wanted_runs[(v.model_name, v.version)] = v.run_id
    progress("runs", 0, len(set(wanted_runs.values())))
    runs, run_errors = client.runs(wanted_runs.values()) if wanted_runs else ({}, {})
    result.runs_read, result.run_errors = len(runs), len(run_errors)
    progress("runs", len(runs), len(set(wanted_runs.values())))

    with transaction.atomic():
        # Registered models.
        new_models, changed_models = [], []
        for name, up in upstream.items():
            mirrored = models_by_name.get(name)
            if mirrored is None:
                model = RegisteredModel(
                    source=source, name=name, last_synced_at=now, **_model_values(up)
                )
                new_models.append(model)
                models_by_name[name] = model
                result.models.created += 1
                result.changed_model_names.add(name)
            elif _assign(mirrored, _model_values(up)):
                changed_models.append(mirrored)
                result.models.updated += 1
                result.changed_model_names.add(name)
            else:
                result.models.unchanged += 1
        vanished_models = [
            m
            for name, m in models_by_name.items()
            if name not in upstream and m.deleted_upstream_at is None
        ]
        for model in vanished_models:
            model.deleted_upstream_at = now
            result.models.deleted += 1
            result.changed_model_names.add(model.name)
        # New models get their catalog entry before they are written (no second UPDATE).
        refresh_entries = _catalog_assign(source, new_models + changed_models)
        RegisteredModel.objects.bulk_create(new_models, batch_size=1000)
        RegisteredModel.objects.bulk_update(
            changed_models + vanished_models, [*MODEL_FIELDS, "catalog_model"], batch_size=1000
        )

        # Versions.
        aliases_by_version: dict[tuple[str, int], list[str]] = {}
        for name, up in upstream.items():
            for alias, number in up.aliases.items():
                aliases_by_version.setdefault((name, number), []).append(alias)
        new_versions, changed_versions, seen = [], [], set()
        for up in versions:
            model = models_by_name[up.model_name]
            key = (model.pk, up.version)
            seen.add(key)
            values = _version_values(
                up, sorted(aliases_by_version.get((up.model_name, up.version), []))
            )
            run_id = wanted_runs.get((up.model_name, up.version))
            if run_id:
                values.update(
                    _run_values(runs.get(run_id), run_errors.get(run_id, "run not found"), now)
                )
            mirrored = versions_by_key.get(key)
            if mirrored is None:
                new_versions.append(
                    ModelVersion(
                        registered_model=model, version=up.version, last_synced_at=now, **values
                    )
                )
                result.versions.created += 1
                result.changed_model_names.add(up.model_name)
            elif _assign(mirrored, values):
                changed_versions.append(mirrored)
                result.versions.updated += 1
                result.changed_model_names.add(up.model_name)
            else:
                result.versions.unchanged += 1
        vanished_versions = [
            v
            for key, v in versions_by_key.items()
            if key not in seen and v.deleted_upstream_at is None
        ]
        for version in vanished_versions:
            version.deleted_upstream_at = now
            result.versions.deleted += 1
        ModelVersion.objects.bulk_create(new_versions, batch_size=1000)
        ModelVersion.objects.bulk_update(
            changed_versions + vanished_versions, VERSION_FIELDS + RUN_FIELDS, batch_size=1000
        )

        # Everything still upstream was confirmed now (one statement each, not a row at a time).
        live_models = RegisteredModel.objects.filter(
            source=source, deleted_upstream_at__isnull=True
        )
        live_versions = ModelVersion.objects.filter(
            registered_model__source=source, deleted_upstream_at__isnull=True
        )
        if scope is not None:
            live_models = live_models.filter(name__in=scope)
            live_versions = live_versions.filter(registered_model__name__in=scope)
        live_models.update(last_synced_at=now)
        live_versions.update(last_synced_at=now)

        refresh_entries |= {m.catalog_model_id for m in changed_models + vanished_models}
        _catalog_refresh_categories(refresh_entries - {None})


# The catalog ------------------------------------------------------------------------------

KIND_VALUES = {
    "ml": ModelKind.ML, "ml_model": ModelKind.ML, "machine_learning": ModelKind.ML,
    "rule_based": ModelKind.RULE_BASED, "rulebased": ModelKind.RULE_BASED,
    "rules": ModelKind.RULE_BASED, "rule": ModelKind.RULE_BASED,
}  # fmt: skip
SERVING_VALUES = {
    "batch": Serving.BATCH, "real_time": Serving.REAL_TIME, "realtime": Serving.REAL_TIME,
    "online": Serving.REAL_TIME, "streaming": Serving.REAL_TIME,
}  # fmt: skip


def _normalise(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def category_from_tags(tags: dict[str, str]) -> dict[str, str]:
    """The categories registry tags state ('' where a tag is missing or unrecognised)."""
    keys = settings.REGISTRY_CATEGORY_TAGS
    return {
        "registry_kind": KIND_VALUES.get(_normalise(tags.get(keys["kind"], "")), ""),
        "registry_serving": SERVING_VALUES.get(_normalise(tags.get(keys["serving"], "")), ""),
        "registry_team": tags.get(keys["team"], "").strip()[:100],
    }


def catalog_name_for(source: RegistrySource, name: str, tags: dict[str, str]) -> str:
    """The catalog entry a registered model belongs to: a tag, else its (short) name."""
    explicit = tags.get(settings.REGISTRY_CATALOG_NAME_TAG, "").strip()
    if explicit:
        return explicit[:255]
    if source.is_unity_catalog and name.count(".") == 2:
        return name.rsplit(".", 1)[1]
    return name[:255]


def _catalog_assign(source: RegistrySource, models: list[RegisteredModel]) -> set[int]:
    """Give unlinked registered models their catalog entry, creating missing entries with the
    categories and description their registry states. Returns the ids of entries that existed
    already and so need their categories refreshed."""
    unlinked = [m for m in models if m.catalog_model_id is None]
    if not unlinked:
        return set()
    wanted = {id(m): catalog_name_for(source, m.name, m.tags) for m in unlinked}
    names = set(wanted.values())
    existing = {c.name: c for c in CatalogModel.objects.filter(name__in=names)}
    created: dict[str, CatalogModel] = {}
    for model in unlinked:
        name = wanted[id(model)]
        if name not in existing and name not in created:
            created[name] = CatalogModel(
                name=name, description=model.description, **category_from_tags(model.tags)
            )
    # ignore_conflicts: another source's sync may create the same entry at the same moment.
    CatalogModel.objects.bulk_create(created.values(), batch_size=1000, ignore_conflicts=True)
    entries = (
        {c.name: c for c in CatalogModel.objects.filter(name__in=names)} if created else existing
    )
    for model in unlinked:
        model.catalog_model = entries[wanted[id(model)]]
    return {entries[name].pk for name in names if name in existing or name not in created}


def _catalog_refresh_categories(catalog_ids: set[int]) -> None:
    """Derive registry_kind/serving/team from the linked models, the central registry first."""
    entries = CatalogModel.objects.filter(pk__in=catalog_ids)
    registered = (
        RegisteredModel.objects.filter(
            catalog_model_id__in=catalog_ids, deleted_upstream_at__isnull=True
        )
        .select_related("source")
        .order_by("-source__is_central", "source__name")
    )
    by_entry: dict[int, list[RegisteredModel]] = {}
    for model in registered:
        by_entry.setdefault(model.catalog_model_id, []).append(model)
    changed = []
    for entry in entries:
        derived = {"registry_kind": "", "registry_serving": "", "registry_team": ""}
        for model in by_entry.get(entry.pk, []):
            for key, value in category_from_tags(model.tags).items():
                derived[key] = derived[key] or value
        description = entry.description
        if not description:
            description = next(
                (m.description for m in by_entry.get(entry.pk, []) if m.description), ""
            )
        if _assign(entry, {**derived, "description": description}):
            changed.append(entry)
    CatalogModel.objects.bulk_update(
        changed,
        ["registry_kind", "registry_serving", "registry_team", "description"],
        batch_size=1000,
    )


# Schedules -------------------------------------------------------------------------------


def source_schedule_ensure(*, source: RegistrySource) -> None:
    """Keep the source's two beat entries (incremental and full sweep) in line with the source."""
    import json

    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for suffix, every, full in (
        ("sync", source.sync_interval_seconds, False),
        ("full sweep", source.full_sync_interval_seconds, True),
    ):
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=max(every, 10), period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.update_or_create(
            name=f"registry {suffix}: {source.name}",
            defaults={
                "task": "registry.sync_source",
                "interval": interval,
                "kwargs": json.dumps({"source_id": source.pk, "full": full}),
                "enabled": source.enabled,
                "description": f"Sync of the MLflow registry source '{source.name}'.",
            },
        )


def source_schedule_remove(*, source: RegistrySource) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(
        name__in=[f"registry sync: {source.name}", f"registry full sweep: {source.name}"]
    ).delete()
