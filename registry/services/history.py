"""Recording the registry history: one RegistryEvent per difference the sync writes.

The sync compares the upstream snapshot with the mirror (``apply``); before it assigns the new
values to a mirrored row it hands the row's old state here, and every difference becomes an
event. The events are bulk-created at the end of the sync's transaction, so the history and
the mirror always agree, and a sync that changes nothing writes nothing.

``previously_seen_at`` is the row's ``last_synced_at`` before this sync: the last time a sync
confirmed the old state, so the change happened between it and ``observed_at`` (this sync's
now). A model or version the portal sees for the first time has none ("already there when
the portal first looked"); a version created since the last sync has ``upstream_at`` (its
creation time in the registry). A model that vanished gets one ``model_deleted`` event (its
versions and aliases go with it: ``selectors.alias_lanes`` ends the aliases there); when it
comes back, ``model_reappeared`` and one ``alias_set`` per alias it holds again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from ..models import ModelVersion, RegisteredModel, RegistryEvent, RegistrySource
from ..models import RegistryEventKind as Kind

BATCH_SIZE = 1000

# SyncResult.mode -> what RegistryEvent.seen_by says.
SEEN_BY = {"full": "full sweep", "incremental": "incremental", "model": "targeted"}


@dataclass(frozen=True)
class ModelState:
    """What a mirrored registered model held before this sync."""

    description: str
    tags: dict
    aliases: dict
    deleted_at: datetime | None
    seen_at: datetime | None

    FIELDS: ClassVar = ("description", "tags", "aliases", "deleted_upstream_at")

    @classmethod
    def of(cls, model: RegisteredModel, previous: dict | None = None) -> ModelState:
        """The row's state, with ``previous`` (values_assign's answer) where it changed."""
        was = {**{f: getattr(model, f) for f in cls.FIELDS}, **(previous or {})}
        return cls(
            was["description"],
            dict(was["tags"] or {}),
            dict(was["aliases"] or {}),
            was["deleted_upstream_at"],
            model.last_synced_at,
        )


@dataclass(frozen=True)
class VersionState:
    """What a mirrored version held before this sync."""

    description: str
    status: str
    stage: str
    tags: dict
    deleted_at: datetime | None
    seen_at: datetime | None

    FIELDS: ClassVar = ("description", "status", "stage", "tags", "deleted_upstream_at")

    @classmethod
    def of(cls, version: ModelVersion, previous: dict | None = None) -> VersionState:
        """The row's state, with ``previous`` (values_assign's answer) where it changed."""
        was = {**{f: getattr(version, f) for f in cls.FIELDS}, **(previous or {})}
        return cls(
            was["description"],
            was["status"],
            was["stage"],
            dict(was["tags"] or {}),
            was["deleted_upstream_at"],
            version.last_synced_at,
        )


@dataclass
class HistoryRecorder:
    """The events of one sync, collected while the mirror is written, then bulk-created."""

    source: RegistrySource
    now: datetime
    seen_by: str
    events: list[RegistryEvent] = field(default_factory=list)
    new_models: set[str] = field(default_factory=set)  # first seen in this sync
    vanished_models: set[str] = field(default_factory=set)
    model_seen_at: dict[str, datetime | None] = field(default_factory=dict)

    def _add(self, model: RegisteredModel, kind: str, after: datetime | None, **values) -> None:
        self.events.append(
            RegistryEvent(
                source=self.source,
                registered_model=model,
                kind=kind,
                observed_at=self.now,
                previously_seen_at=after,
                seen_by=self.seen_by,
                **values,
            )
        )

    # Models ---------------------------------------------------------------------------------

    def model_created(self, model: RegisteredModel) -> None:
        self.new_models.add(model.name)
        self.model_seen_at[model.name] = None
        self._add(model, Kind.MODEL_CREATED, None, upstream_at=model.created_upstream_at)
        self._aliases(model, {}, model.aliases or {}, None)

    def model_changed(self, model: RegisteredModel, before: ModelState) -> None:
        """``model`` holds the new values; ``before`` what the mirror held."""
        after = before.seen_at
        old_aliases = before.aliases
        if before.deleted_at is not None:
            # Seen gone at deleted_at: it came back after that; its aliases ended there.
            after = max(filter(None, [before.seen_at, before.deleted_at]))
            self._add(model, Kind.MODEL_REAPPEARED, after)
            old_aliases = {}
        self.model_seen_at[model.name] = after
        if model.description != before.description:
            self._add(
                model,
                Kind.MODEL_DESCRIPTION,
                after,
                old_value=before.description,
                new_value=model.description,
            )
        self._tags(model, None, before.tags, model.tags or {}, after, version_level=False)
        self._aliases(model, old_aliases, model.aliases or {}, after)

    def model_vanished(self, model: RegisteredModel, before: ModelState) -> None:
        self.vanished_models.add(model.name)
        self._add(model, Kind.MODEL_DELETED, before.seen_at)

    def _aliases(self, model: RegisteredModel, old: dict, new: dict, after) -> None:
        for alias in sorted(new):
            if old.get(alias) != new[alias]:
                self._add(
                    model,
                    Kind.ALIAS_SET,
                    after,
                    name=alias,
                    version=new[alias],
                    old_value=old.get(alias),
                    new_value=new[alias],
                )
        for alias in sorted(set(old) - set(new)):
            number = old[alias]
            self._add(
                model, Kind.ALIAS_REMOVED, after, name=alias, version=number, old_value=number
            )

    def _tags(self, model, version, old: dict, new: dict, after, *, version_level: bool) -> None:
        set_kind = Kind.VERSION_TAG_SET if version_level else Kind.MODEL_TAG_SET
        removed_kind = Kind.VERSION_TAG_REMOVED if version_level else Kind.MODEL_TAG_REMOVED
        where = {"model_version": version, "version": version.version} if version else {}
        for key in sorted(new):
            if key not in old or old[key] != new[key]:
                self._add(
                    model, set_kind, after, name=key, old_value=old.get(key), new_value=new[key],
                    **where,
                )  # fmt: skip
        for key in sorted(set(old) - set(new)):
            self._add(model, removed_kind, after, name=key, old_value=old[key], **where)

    # Versions -------------------------------------------------------------------------------

    def version_created(self, model: RegisteredModel, version: ModelVersion) -> None:
        after = None if model.name in self.new_models else self._model_seen_at(model)
        self._add(
            model,
            Kind.VERSION_CREATED,
            after,
            model_version=version,
            version=version.version,
            new_value=version.status or None,
            upstream_at=version.created_upstream_at,
        )

    def version_changed(self, model, version: ModelVersion, before: VersionState) -> None:
        after = before.seen_at
        where = {"model_version": version, "version": version.version}
        if before.deleted_at is not None:
            after = max(filter(None, [before.seen_at, before.deleted_at]))
            self._add(model, Kind.VERSION_REAPPEARED, after, **where)
        for kind, old, new in (
            (Kind.VERSION_STATUS, before.status, version.status),
            (Kind.VERSION_STAGE, before.stage, version.stage),
            (Kind.VERSION_DESCRIPTION, before.description, version.description),
        ):
            if old != new:
                self._add(model, kind, after, old_value=old, new_value=new, **where)
        self._tags(model, version, before.tags, version.tags or {}, after, version_level=True)

    def version_vanished(self, model, version: ModelVersion, before: VersionState) -> None:
        if model.name in self.vanished_models:
            return  # the model's one model_deleted event says it
        self._add(
            model,
            Kind.VERSION_DELETED,
            before.seen_at,
            model_version=version,
            version=version.version,
        )

    def _model_seen_at(self, model: RegisteredModel) -> datetime | None:
        if model.name in self.model_seen_at:
            return self.model_seen_at[model.name]
        return model.last_synced_at  # unchanged this sync: still the value before it

    # Writing --------------------------------------------------------------------------------

    def write(self, versions_by_key: dict[tuple[int, int], ModelVersion]) -> int:
        """Bulk-create the events (after the models and versions they name were written)."""
        for event in self.events:
            if event.model_version is None and event.kind in (Kind.ALIAS_SET, Kind.ALIAS_REMOVED):
                event.model_version = versions_by_key.get(
                    (event.registered_model.pk, event.version)
                )
        RegistryEvent.objects.bulk_create(self.events, batch_size=BATCH_SIZE)
        return len(self.events)
