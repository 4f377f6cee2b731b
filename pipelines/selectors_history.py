"""Reads of the deployment history (models.DeploymentRecord): the timeline's environment
lanes, what served at a moment, and the history table (deployments and registry events).

A record's version serves its lane (model, environment, target) from its ``started_at`` until
the next record of the same lane starts; the end is read, never written (docs/history.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.module_loading import import_string

from registry.models import CatalogModel, RegistryEvent
from registry.selectors import alias_lanes, registry_events
from registry.timeline import Lane, Span

from .models import DeploymentRecord, Environment
from .templatetags.pipelines_ui import target_label

ENV_ORDER = {Environment.QA.value: 10, Environment.PROD.value: 20}
RANGES = {"30d": 30, "90d": 90, "1y": 365, "all": None}
DEFAULT_RANGE = "90d"
KIND_DEPLOYMENT = "deployment"
KIND_REGISTRY = "registry"
KIND_ALIAS = "alias"
HISTORY_KINDS = {
    KIND_DEPLOYMENT: "Deployments",
    KIND_ALIAS: "Alias moves",
    KIND_REGISTRY: "Other registry events",
}


def lane_title(environment: str, target: str) -> str:
    """ "PROD · AKS" ("PROD" alone for the default target)."""
    if not target or target == "default":
        return environment
    return f"{environment} · {target_label(target)}"


def deployment_records(catalog_model: CatalogModel) -> QuerySet[DeploymentRecord]:
    """The model's records, oldest first, with their runs and versions."""
    return (
        DeploymentRecord.objects.filter(catalog_model=catalog_model)
        .select_related("run__pipeline", "model_version__registered_model__source")
        .order_by("started_at", "pk")
    )


def deployment_annotations(records: list[DeploymentRecord]) -> dict[int, dict]:
    """What the apps named in PIPELINES_DEPLOYMENT_ANNOTATORS say of the records: {pk:
    {"approved_by": [...], "approval_url": ...}} (approvals says who approved)."""
    merged: dict[int, dict] = {}
    if not records:
        return merged
    for dotted in getattr(settings, "PIPELINES_DEPLOYMENT_ANNOTATORS", None) or []:
        for pk, values in (import_string(dotted)(records) or {}).items():
            merged.setdefault(pk, {}).update(values)
    return merged


def record_url(record: DeploymentRecord) -> str:
    """The version's page, else the deploying run's."""
    version = record.model_version
    if version is not None:
        rm = version.registered_model
        return reverse(
            "registry:version-detail",
            kwargs={"source": rm.source.name, "name": rm.name, "version": version.version},
        )
    return reverse("pipelines:run-detail", kwargs={"pk": record.run_id})


@dataclass(frozen=True)
class LaneRecord:
    """A record placed in its lane: when it stopped serving (the next record's start)."""

    record: DeploymentRecord
    lane_key: str
    lane_title: str
    until: dt.datetime | None
    next_record: DeploymentRecord | None
    current: DeploymentRecord  # the lane's latest record
    annotation: dict = field(default_factory=dict)

    @property
    def is_current(self) -> bool:
        return self.next_record is None

    @property
    def approved_by(self) -> list[str]:
        return list(self.annotation.get("approved_by") or [])

    @property
    def can_roll_back_to(self) -> bool:
        """It served before and another version serves the lane now."""
        if self.is_current:
            return False
        record, current = self.record, self.current
        if record.model_version_id and current.model_version_id:
            return record.model_version_id != current.model_version_id
        return bool(record.version_label) and record.version_label != current.version_label


def placed_records(records: list[DeploymentRecord]) -> list[LaneRecord]:
    """Each record with its lane and end (records oldest first), annotated once for all."""
    annotations = deployment_annotations(records)
    by_lane: dict[tuple[str, str], list[DeploymentRecord]] = {}
    for record in records:
        by_lane.setdefault((record.environment, record.target), []).append(record)
    placed = []
    for (environment, target), lane in by_lane.items():
        key, title = f"env:{environment}:{target}", lane_title(environment, target)
        for index, record in enumerate(lane):
            following = lane[index + 1] if index + 1 < len(lane) else None
            placed.append(
                LaneRecord(
                    record=record,
                    lane_key=key,
                    lane_title=title,
                    until=following.started_at if following else None,
                    next_record=following,
                    current=lane[-1],
                    annotation=annotations.get(record.pk, {}),
                )
            )
    return placed


def _span_title(item: LaneRecord) -> str:
    record = item.record
    text = (
        f"{record.version_label or 'unknown version'} in {item.lane_title} "
        f"from {record.started_at:%Y-%m-%d %H:%M} UTC"
    )
    text += f" until {item.until:%Y-%m-%d %H:%M} UTC" if item.until else " (serving now)"
    text += f"; run {record.run.name or record.run.ado_id}" if record.run else ""
    if item.approved_by:
        text += "; approved by " + ", ".join(item.approved_by)
    return text


def deployment_lanes(placed: list[LaneRecord]) -> list[Lane]:
    """One lane per environment and target: QA first, then PROD, targets by name."""
    spans: dict[str, list[Span]] = {}
    titles: dict[str, tuple[int, str, str]] = {}
    for item in placed:
        record = item.record
        version = record.model_version.version if record.model_version else None
        spans.setdefault(item.lane_key, []).append(
            Span(
                label=record.version_label or "?",
                start=record.started_at,
                end=item.until,
                version=version,
                url=record_url(record),
                title=_span_title(item),
                detail={"record": record.pk, "item": item},
            )
        )
        titles[item.lane_key] = (
            ENV_ORDER.get(record.environment, 30),
            record.target,
            item.lane_title,
        )
    lanes = [
        Lane(
            key=key,
            title=titles[key][2],
            kind="environment",
            spans=spans[key],
            order=titles[key][0],
        )
        for key in spans
    ]
    return sorted(lanes, key=lambda lane: (lane.order, titles[lane.key][1]))


def timeline_lanes(catalog_model: CatalogModel, placed: list[LaneRecord]) -> list[Lane]:
    """The model's whole timeline: environment lanes, then alias lanes (registry)."""
    return deployment_lanes(placed) + alias_lanes(catalog_model)


@dataclass(frozen=True)
class Serving:
    """What served a lane at a moment."""

    environment: str
    target: str
    lane_title: str
    record: DeploymentRecord
    since: dt.datetime
    until: dt.datetime | None
    approved_by: list[str]
    approval_url: str = ""


def serving_at(catalog_model: CatalogModel, environment: str, at: dt.datetime) -> list[Serving]:
    """Every (target, version, record, since, until) serving in ``environment`` at ``at``:
    per target, the latest record that started at or before ``at``."""
    records = list(
        deployment_records(catalog_model).filter(environment=environment, started_at__lte=at)
    )
    latest: dict[str, DeploymentRecord] = {}
    for record in records:
        latest[record.target] = record  # oldest first: the last one wins
    if not latest:
        return []
    chosen = sorted(latest.values(), key=lambda r: r.target)
    following = {}
    for record in DeploymentRecord.objects.filter(
        catalog_model=catalog_model, environment=environment, started_at__gt=at
    ).order_by("started_at", "pk"):
        following.setdefault(record.target, record.started_at)
    annotations = deployment_annotations(chosen)
    return [
        Serving(
            environment=environment,
            target=record.target,
            lane_title=lane_title(environment, record.target),
            record=record,
            since=record.started_at,
            until=following.get(record.target),
            approved_by=list(annotations.get(record.pk, {}).get("approved_by") or []),
            approval_url=annotations.get(record.pk, {}).get("approval_url") or "",
        )
        for record in chosen
    ]


@dataclass
class HistoryRow:
    """A row of the history table and its CSV."""

    time: dt.datetime
    lane: str
    kind: str  # deployment / alias / registry
    event: str
    version: str
    url: str = ""
    run_name: str = ""
    run_url: str = ""
    approved_by: list[str] = field(default_factory=list)
    window: str = ""
    window_from: dt.datetime | None = None
    until: dt.datetime | None = None
    rollback_version_pk: int | None = None  # set when a rollback to it may be requested
    rollback_url: str = ""  # the view sets it for those who may request one
    uncertain: bool = False


def _deployment_row(item: LaneRecord) -> HistoryRow:
    record = item.record
    return HistoryRow(
        time=record.started_at,
        lane=item.lane_title,
        kind=KIND_DEPLOYMENT,
        event="Started serving" + ("" if item.until is None else " (replaced)"),
        version=record.version_label or "unknown version",
        url=record_url(record),
        run_name=str(record.run.name or record.run.ado_id) if record.run else "",
        run_url=reverse("pipelines:run-detail", kwargs={"pk": record.run_id}),
        approved_by=item.approved_by,
        window="exact (the stage's finish time in Azure DevOps)",
        until=item.until,
        rollback_version_pk=record.model_version_id if item.can_roll_back_to else None,
    )


def _event_row(event: RegistryEvent) -> HistoryRow:
    alias = event.kind in ("alias_set", "alias_removed")
    what = event.get_kind_display()
    if event.name:
        what += f" @{event.name}" if alias else f" {event.name}"
    if event.upstream_at:
        window = "as the registry says"
    elif event.previously_seen_at:
        window = (
            f"between {event.previously_seen_at:%Y-%m-%d %H:%M} and "
            f"{event.observed_at:%Y-%m-%d %H:%M} UTC"
        )
    else:
        window = "already so when the portal first looked"
    return HistoryRow(
        time=event.happened_by,
        lane=f"@{event.name}" if alias else "Registry",
        kind=KIND_ALIAS if alias else KIND_REGISTRY,
        event=what,
        version=f"v{event.version}" if event.version else "",
        window=window,
        window_from=event.happened_after,
        uncertain=bool(event.previously_seen_at and not event.upstream_at),
    )


def history_rows(
    catalog_model: CatalogModel,
    placed: list[LaneRecord],
    *,
    environment: str = "",
    kind: str = "",
) -> list[HistoryRow]:
    """Deployments and registry events merged, newest first, filtered."""
    rows: list[HistoryRow] = []
    if kind in ("", KIND_DEPLOYMENT):
        rows += [
            _deployment_row(item)
            for item in placed
            if not environment or item.record.environment == environment
        ]
    if not environment and kind in ("", KIND_ALIAS, KIND_REGISTRY):
        events = registry_events(catalog_model)
        if kind == KIND_ALIAS:
            events = events.filter(kind__in=("alias_set", "alias_removed"))
        elif kind == KIND_REGISTRY:
            events = events.exclude(kind__in=("alias_set", "alias_removed"))
        rows += [_event_row(event) for event in events]
    rows.sort(key=lambda row: row.time, reverse=True)
    return rows


@dataclass(frozen=True)
class LaneSummary:
    title: str
    deployments: int
    latest_label: str
    latest_at: dt.datetime


def history_summary(catalog_model: CatalogModel) -> list[LaneSummary]:
    """For the model page: per environment lane, how many deployments and the latest one
    (what serves now), in one query over the lanes' latest rows."""
    counts: dict[tuple[str, str], int] = {}
    latest: dict[tuple[str, str], tuple[dt.datetime, str]] = {}
    rows = (
        DeploymentRecord.objects.filter(catalog_model=catalog_model)
        .order_by("started_at", "pk")
        .values_list("environment", "target", "started_at", "version_label")
    )
    for environment, target, started_at, label in rows:
        key = (environment, target)
        counts[key] = counts.get(key, 0) + 1
        latest[key] = (started_at, label)
    ordered = sorted(counts, key=lambda key: (ENV_ORDER.get(key[0], 30), key[1]))
    return [
        LaneSummary(lane_title(*key), counts[key], latest[key][1] or "?", latest[key][0])
        for key in ordered
    ]
