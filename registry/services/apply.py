"""Applying an upstream snapshot to the mirror: write only the differences, in one transaction.

The runs the changed versions need are read first (before anything is written), so a source
that fails mid-read leaves the mirror as it was. Rows that vanished upstream are marked
deleted, never dropped. Every difference written is also a registry history event
(``history.HistoryRecorder``), bulk-created in the same transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from core.sync import values_assign

from ..client import RegistryClient, UpstreamModel, UpstreamRun, UpstreamVersion
from ..models import ModelVersion, RegisteredModel, RegistrySource
from .catalog import catalog_categories_refresh, catalog_entries_assign
from .common import Progress, SyncResult, noop_progress
from .history import SEEN_BY, HistoryRecorder, ModelState, VersionState

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
BATCH_SIZE = 1000

VersionKey = tuple[int, int]  # (registered model pk, version number)


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


@dataclass
class Mirror:
    """The mirror of the snapshot's scope as it stands: what the snapshot is compared with."""

    models_by_name: dict[str, RegisteredModel]
    versions_by_key: dict[VersionKey, ModelVersion]

    def mirrored_version(self, upstream: UpstreamVersion) -> ModelVersion | None:
        model = self.models_by_name.get(upstream.model_name)
        return self.versions_by_key.get((model.pk, upstream.version)) if model else None


@dataclass
class RunsRead:
    """The source runs of the versions that need them (new, re-pointed or never read)."""

    wanted: dict[tuple[str, int], str] = field(default_factory=dict)  # (model, version): run
    runs: dict[str, UpstreamRun] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def values_for(self, upstream: UpstreamVersion, now) -> dict:
        run_id = self.wanted.get((upstream.model_name, upstream.version))
        if not run_id:
            return {}
        return _run_values(self.runs.get(run_id), self.errors.get(run_id, "run not found"), now)


def _in_scope(models, versions, scope: set[str] | None):
    if scope is None:
        return models, versions
    return models.filter(name__in=scope), versions.filter(registered_model__name__in=scope)


def _mirror_read(source: RegistrySource, scope: set[str] | None) -> Mirror:
    models, versions = _in_scope(
        RegisteredModel.objects.filter(source=source),
        ModelVersion.objects.filter(registered_model__source=source),
        scope,
    )
    return Mirror(
        models_by_name={m.name: m for m in models},
        versions_by_key={(v.registered_model_id, v.version): v for v in versions},
    )


def _runs_read(
    client: RegistryClient,
    versions: list[UpstreamVersion],
    mirror: Mirror,
    result: SyncResult,
    progress: Progress,
) -> RunsRead:
    read = RunsRead()
    for v in versions:
        mirrored = mirror.mirrored_version(v)
        if v.run_id and (
            mirrored is None or mirrored.run_id != v.run_id or mirrored.run_fetched_at is None
        ):
            read.wanted[(v.model_name, v.version)] = v.run_id
    total = len(set(read.wanted.values()))
    progress("runs", 0, total)
    if read.wanted:
        read.runs, read.errors = client.runs(read.wanted.values())
    result.runs_read, result.run_errors = len(read.runs), len(read.errors)
    progress("runs", len(read.runs), total)
    return read


def _models_write(
    source: RegistrySource,
    upstream: dict[str, UpstreamModel],
    mirror: Mirror,
    now: datetime,
    result: SyncResult,
    history: HistoryRecorder,
) -> set[int | None]:
    """Create, update and mark vanished the registered models (recording each difference in
    ``history``); the catalog entries whose categories need refreshing."""
    counts = result.models
    new_models, changed_models = [], []
    for name, up in upstream.items():
        mirrored = mirror.models_by_name.get(name)
        if mirrored is None:
            model = RegisteredModel(
                source=source, name=name, last_synced_at=now, **_model_values(up)
            )
            new_models.append(model)
            mirror.models_by_name[name] = model
            history.model_created(model)
            counts.created += 1
            result.changed_model_names.add(name)
            continue
        if previous := values_assign(mirrored, _model_values(up)):
            history.model_changed(mirrored, ModelState.of(mirrored, previous))
            changed_models.append(mirrored)
            counts.updated += 1
            result.changed_model_names.add(name)
        else:
            counts.unchanged += 1
    vanished_models = [
        m
        for name, m in mirror.models_by_name.items()
        if name not in upstream and m.deleted_upstream_at is None
    ]
    for model in vanished_models:
        history.model_vanished(model, ModelState.of(model))
        model.deleted_upstream_at = now
        counts.deleted += 1
        result.changed_model_names.add(model.name)
    # New models get their catalog entry before they are written (no second UPDATE).
    refresh_entries = catalog_entries_assign(source, new_models + changed_models)
    RegisteredModel.objects.bulk_create(new_models, batch_size=BATCH_SIZE)
    RegisteredModel.objects.bulk_update(
        changed_models + vanished_models, [*MODEL_FIELDS, "catalog_model"], batch_size=BATCH_SIZE
    )
    return refresh_entries | {m.catalog_model_id for m in changed_models + vanished_models}


def _aliases_by_version(upstream: dict[str, UpstreamModel]) -> dict[tuple[str, int], list[str]]:
    """MLflow keeps aliases on the registered model; each version lists its own."""
    aliases: dict[tuple[str, int], list[str]] = {}
    for name, up in upstream.items():
        for alias, number in up.aliases.items():
            aliases.setdefault((name, number), []).append(alias)
    return aliases


def _versions_write(
    upstream: dict[str, UpstreamModel],
    versions: list[UpstreamVersion],
    mirror: Mirror,
    runs: RunsRead,
    now: datetime,
    result: SyncResult,
    history: HistoryRecorder,
) -> None:
    """Create, update and mark vanished the versions (with their runs' metrics and params),
    recording each difference in ``history``."""
    counts = result.versions
    aliases = _aliases_by_version(upstream)
    models_by_pk = {m.pk: m for m in mirror.models_by_name.values()}
    new_versions, changed_versions, seen = [], [], set()
    for up in versions:
        model = mirror.models_by_name[up.model_name]
        key = (model.pk, up.version)
        seen.add(key)
        values = _version_values(up, sorted(aliases.get((up.model_name, up.version), [])))
        values.update(runs.values_for(up, now))
        mirrored = mirror.versions_by_key.get(key)
        if mirrored is None:
            version = ModelVersion(
                registered_model=model, version=up.version, last_synced_at=now, **values
            )
            new_versions.append(version)
            history.version_created(model, version)
            counts.created += 1
            result.changed_model_names.add(up.model_name)
            continue
        if previous := values_assign(mirrored, values):
            history.version_changed(model, mirrored, VersionState.of(mirrored, previous))
            changed_versions.append(mirrored)
            counts.updated += 1
            result.changed_model_names.add(up.model_name)
        else:
            counts.unchanged += 1
    vanished_versions = [
        v
        for key, v in mirror.versions_by_key.items()
        if key not in seen and v.deleted_upstream_at is None
    ]
    for version in vanished_versions:
        history.version_vanished(
            models_by_pk[version.registered_model_id], version, VersionState.of(version)
        )
        version.deleted_upstream_at = now
        counts.deleted += 1
    ModelVersion.objects.bulk_create(new_versions, batch_size=BATCH_SIZE)
    for version in new_versions:
        mirror.versions_by_key[(version.registered_model_id, version.version)] = version
    ModelVersion.objects.bulk_update(
        changed_versions + vanished_versions, VERSION_FIELDS + RUN_FIELDS, batch_size=BATCH_SIZE
    )


def _live_confirm(source: RegistrySource, scope: set[str] | None, now: datetime) -> None:
    """Everything still upstream was confirmed now (one statement each, not a row at a time)."""
    live_models, live_versions = _in_scope(
        RegisteredModel.objects.filter(source=source, deleted_upstream_at__isnull=True),
        ModelVersion.objects.filter(
            registered_model__source=source, deleted_upstream_at__isnull=True
        ),
        scope,
    )
    live_models.update(last_synced_at=now)
    live_versions.update(last_synced_at=now)


def snapshot_apply(
    source: RegistrySource,
    client: RegistryClient,
    upstream: dict[str, UpstreamModel],
    versions: list[UpstreamVersion],
    *,
    scope: set[str] | None,
    result: SyncResult,
    progress: Progress = noop_progress,
) -> None:
    """Make the mirror of ``scope`` (None: the whole source) equal the upstream snapshot, and
    record every difference written in the registry history, in the same transaction."""
    now = timezone.now()
    mirror = _mirror_read(source, scope)
    runs = _runs_read(client, versions, mirror, result, progress)
    history = HistoryRecorder(source, now, SEEN_BY.get(result.mode, result.mode))
    with transaction.atomic():
        refresh_entries = _models_write(source, upstream, mirror, now, result, history)
        _versions_write(upstream, versions, mirror, runs, now, result, history)
        result.events = history.write(mirror.versions_by_key)
        _live_confirm(source, scope, now)
        catalog_categories_refresh(refresh_entries - {None})
