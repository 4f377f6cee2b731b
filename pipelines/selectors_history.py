"""Reads of the deployment history (models.DeploymentRecord): the timeline's environment
lanes, what served at a moment, and the history table (deployments and registry events).

A record's version serves its lane (model, environment, target) from its ``started_at`` until
the next record of the same lane starts; the end is read, never written (docs/history.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.module_loading import import_string

from registry.models import CatalogModel, ModelVersion, RegistryEventKind
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
LOOKED_UP = "_looked_up"  # an annotation's mark: the annotators were asked about the record
ALIAS_EVENT_KINDS = (RegistryEventKind.ALIAS_SET.value, RegistryEventKind.ALIAS_REMOVED.value)
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
    """The model's records, oldest first, each with what the pages show of its run and
    version as annotations (``v_number``, ``v_model``, ``v_source``, ``run_name``,
    ``run_ado_id``, ``run_web_url``, ``pipeline_name``): one row per record, no related
    objects to build, so a long history reads in time."""
    return (
        DeploymentRecord.objects.filter(catalog_model=catalog_model)
        .annotate(
            v_number=F("model_version__version"),
            v_model=F("model_version__registered_model__name"),
            v_source=F("model_version__registered_model__source__name"),
            run_name=F("run__name"),
            run_ado_id=F("run__ado_id"),
            run_web_url=F("run__web_url"),
            pipeline_name=F("run__pipeline__name"),
        )
        .order_by("started_at", "pk")
    )


def run_label(record: DeploymentRecord) -> str:
    """The run's number ("20251003.4"), else its ADO id, "" if the mirror lost it."""
    name = getattr(record, "run_name", None) or getattr(record, "run_ado_id", None)
    return str(name) if name else ""


def version_link(record: DeploymentRecord) -> dict | None:
    """The registered version a record deployed (source, model, version, url), if mirrored."""
    if getattr(record, "v_number", None) is None:
        return None
    return {
        "source": record.v_source,
        "model": record.v_model,
        "version": record.v_number,
        "url": reverse(
            "registry:version-detail",
            kwargs={"source": record.v_source, "name": record.v_model, "version": record.v_number},
        ),
    }


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


class _Urls:
    """Page addresses for many records: reversed once, then filled in (reverse() per record
    is most of a long history's time)."""

    def __init__(self):
        self.run_prefix = reverse("pipelines:run-detail", kwargs={"pk": 1})[:-2]
        self.versions: dict[tuple[str, str], str] = {}

    def run(self, pk: int) -> str:
        return f"{self.run_prefix}{pk}/"

    def record(self, record: DeploymentRecord) -> str:
        """The version's page, else the deploying run's."""
        number = getattr(record, "v_number", None)
        if number is None:
            return self.run(record.run_id)
        key = (record.v_source, record.v_model)
        if key not in self.versions:
            self.versions[key] = reverse(
                "registry:version-detail",
                kwargs={"source": key[0], "name": key[1], "version": 1},
            )[:-2]
        return f"{self.versions[key]}{number}/"


def record_url(record: DeploymentRecord) -> str:
    return _Urls().record(record)


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


def annotate(items: list[LaneRecord]) -> None:
    """Fill in who approved the items not yet asked about (one call for all of them)."""
    todo = [i for i in items if not i.annotation.get(LOOKED_UP)]
    if not todo:
        return
    found = deployment_annotations([i.record for i in todo])
    for item in todo:
        item.annotation.update(found.get(item.record.pk, {}), **{LOOKED_UP: True})


def placed_records(
    records: list[DeploymentRecord], since: dt.datetime | None = None
) -> list[LaneRecord]:
    """Each record with its lane and end (records oldest first). Who approved is read at
    once for the records that served at or after ``since`` (all without it): what a range of
    the timeline shows; others are read when shown (``annotate``)."""
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
                    annotation={},
                )
            )
    annotate([i for i in placed if since is None or i.until is None or i.until >= since])
    return placed


def _span_title(item: LaneRecord) -> str:
    record = item.record
    text = (
        f"{record.version_label or 'unknown version'} in {item.lane_title} "
        f"from {record.started_at:%Y-%m-%d %H:%M} UTC"
    )
    text += f" until {item.until:%Y-%m-%d %H:%M} UTC" if item.until else " (serving now)"
    text += f"; run {run_label(record)}" if run_label(record) else ""
    if item.approved_by:
        text += "; approved by " + ", ".join(item.approved_by)
    return text


def deployment_lanes(placed: list[LaneRecord], since: dt.datetime | None = None) -> list[Lane]:
    """One lane per environment and target: QA first, then PROD, targets by name; with
    ``since``, only the spans that served from then on (a lane that ended before is kept,
    empty)."""
    spans: dict[str, list[Span]] = {}
    titles: dict[str, tuple[int, str, str]] = {}
    urls = _Urls()
    for item in placed:
        record = item.record
        titles[item.lane_key] = (
            ENV_ORDER.get(record.environment, 30),
            record.target,
            item.lane_title,
        )
        lane_spans = spans.setdefault(item.lane_key, [])
        if since is not None and item.until is not None and item.until < since:
            continue
        lane_spans.append(
            Span(
                label=record.version_label or "?",
                start=record.started_at,
                end=item.until,
                version=getattr(record, "v_number", None),
                url=urls.record(record),
                title=_span_title(item),
                detail={"record": record.pk, "item": item},
            )
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


def timeline_lanes(
    catalog_model: CatalogModel, placed: list[LaneRecord], since: dt.datetime | None = None
) -> list[Lane]:
    """The model's timeline: environment lanes, then alias lanes (registry); with ``since``,
    the alias lanes hold only what held them from then on."""
    return deployment_lanes(placed, since) + alias_lanes(catalog_model, since=since)


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

    @property
    def run_label(self) -> str:
        return run_label(self.record)


def latest_per_target(
    catalog_model: CatalogModel, environment: str, *, at: dt.datetime | None = None
) -> dict[str, DeploymentRecord]:
    """{target: the record serving it} in ``environment``, now or at ``at``: per target, the
    latest record that started (at or before ``at``)."""
    records = deployment_records(catalog_model).filter(environment=environment)
    if at is not None:
        records = records.filter(started_at__lte=at)
    latest: dict[str, DeploymentRecord] = {}
    for record in records:
        latest[record.target] = record  # oldest first: the last one wins
    return latest


def served_before(catalog_model: CatalogModel, version: ModelVersion) -> bool:
    """The version has a deployment record of the model (any environment, any time)."""
    return DeploymentRecord.objects.filter(
        catalog_model=catalog_model, model_version=version
    ).exists()


def serving_at(catalog_model: CatalogModel, environment: str, at: dt.datetime) -> list[Serving]:
    """Every (target, version, record, since, until) serving in ``environment`` at ``at``:
    per target, the latest record that started at or before ``at``."""
    latest = latest_per_target(catalog_model, environment, at=at)
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


def _deployment_row(item: LaneRecord, urls: _Urls) -> HistoryRow:
    record = item.record
    return HistoryRow(
        time=record.started_at,
        lane=item.lane_title,
        kind=KIND_DEPLOYMENT,
        event="Started serving" + ("" if item.until is None else " (replaced)"),
        version=record.version_label or "unknown version",
        url=urls.record(record),
        run_name=run_label(record),
        run_url=urls.run(record.run_id),
        approved_by=item.approved_by,
        window="exact (the stage's finish time in Azure DevOps)",
        until=item.until,
        rollback_version_pk=record.model_version_id if item.can_roll_back_to else None,
    )


EVENT_FIELDS = (
    "kind", "name", "version", "observed_at", "previously_seen_at", "upstream_at", "pk",
)  # fmt: skip


def _event_row(event: dict) -> HistoryRow:
    alias = event["kind"] in ALIAS_EVENT_KINDS
    try:
        what = str(RegistryEventKind(event["kind"]).label)
    except ValueError:
        what = event["kind"]
    if event["name"]:
        what += f" @{event['name']}" if alias else f" {event['name']}"
    upstream, before, seen = event["upstream_at"], event["previously_seen_at"], event["observed_at"]
    if upstream:
        window = "as the registry says"
    elif before:
        window = f"between {before:%Y-%m-%d %H:%M} and {seen:%Y-%m-%d %H:%M} UTC"
    else:
        window = "already so when the portal first looked"
    return HistoryRow(
        time=upstream or seen,
        lane=f"@{event['name']}" if alias else "Registry",
        kind=KIND_ALIAS if alias else KIND_REGISTRY,
        event=what,
        version=f"v{event['version']}" if event["version"] else "",
        window=window,
        window_from=upstream or before,
        uncertain=bool(before and not upstream),
    )


class HistoryRows:
    """The history table's rows (deployments and registry events merged, newest first) as a
    sequence a Paginator can slice: a page reads only the events it shows, from the
    database, and builds only its own rows."""

    def __init__(self, catalog_model, placed, *, environment: str = "", kind: str = ""):
        self.urls = _Urls()
        self.deployments: list[LaneRecord] = []
        if kind in ("", KIND_DEPLOYMENT):
            self.deployments = sorted(
                (i for i in placed if not environment or i.record.environment == environment),
                key=lambda i: (i.record.started_at, i.record.pk),
                reverse=True,
            )
        self.events = None
        if not environment and kind in ("", KIND_ALIAS, KIND_REGISTRY):
            events = registry_events(catalog_model)
            if kind == KIND_ALIAS:
                events = events.filter(kind__in=ALIAS_EVENT_KINDS)
            elif kind == KIND_REGISTRY:
                events = events.exclude(kind__in=ALIAS_EVENT_KINDS)
            self.events = events.annotate(at=Coalesce("upstream_at", "observed_at")).order_by(
                "-at", "-pk"
            )
        self._events_count: int | None = None

    def __len__(self) -> int:
        if self._events_count is None:
            self._events_count = self.events.count() if self.events is not None else 0
        return len(self.deployments) + self._events_count

    def _merged(self, stop: int | None, start: int = 0) -> list[HistoryRow]:
        """Rows ``start`` to ``stop`` (None: to the end); only those are built."""
        events = []
        if self.events is not None:
            query = self.events.values(*EVENT_FIELDS)
            events = list(query[:stop] if stop is not None else query.iterator(chunk_size=2000))
        deployments = self.deployments[:stop] if stop is not None else self.deployments
        rows: list[tuple[dt.datetime, int, object]] = [
            (i.record.started_at, 1, i) for i in deployments
        ] + [(e["upstream_at"] or e["observed_at"], 0, e) for e in events]
        rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
        rows = rows[start:stop]
        annotate([item for _, kind, item in rows if kind])
        return [
            _deployment_row(item, self.urls) if kind else _event_row(item) for _, kind, item in rows
        ]

    def __getitem__(self, index):
        if isinstance(index, slice):
            bounded = index.stop is not None and index.stop >= 0 and (index.start or 0) >= 0
            if bounded and index.step is None:
                return self._merged(index.stop, index.start or 0)
            return self._merged(None)[index]
        return self._merged(index + 1 if index >= 0 else None)[index]

    def __iter__(self):
        return iter(self._merged(None))


def history_rows(
    catalog_model: CatalogModel,
    placed: list[LaneRecord],
    *,
    environment: str = "",
    kind: str = "",
) -> HistoryRows:
    """Deployments and registry events merged, newest first, filtered (a lazy sequence)."""
    return HistoryRows(catalog_model, placed, environment=environment, kind=kind)


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
