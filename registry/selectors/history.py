"""Reads of the registry history (models.RegistryEvent): the events, the alias lanes of the
timeline, and what an alias pointed at at a given moment.

A sync sees states, not moments. An alias event observed at B whose old state was last seen
at A says the alias moved *between A and B*; a span of an alias lane therefore starts (and
ends) in a window, and a moment inside such a window has no certain answer. An event with no
``previously_seen_at`` is the first look at the model ("already set when the portal first
looked"). A model deleted upstream ends its aliases' spans at its ``model_deleted`` event (the
sync writes no ``alias_removed`` for them); when it comes back, the sync writes an ``alias_set``
per alias it holds again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Max, Min, Q, QuerySet
from django.urls import reverse

from ..models import CatalogModel, RegisteredModel, RegistryEvent, RegistryEventKind
from ..models.history import ALIAS_KINDS
from ..timeline import Lane, Span

LANE_KINDS = (*ALIAS_KINDS, RegistryEventKind.MODEL_DELETED)


def registry_events(
    catalog_model: CatalogModel,
    *,
    kinds: Iterable[str] | None = None,
    version: int | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[RegistryEvent]:
    """Every event of the model's registrations, oldest first; optionally only these kinds,
    this version, or those observed at or after ``since`` and before ``until``."""
    qs = RegistryEvent.objects.filter(registered_model__catalog_model=catalog_model)
    if kinds is not None:
        qs = qs.filter(kind__in=list(kinds))
    if version is not None:
        qs = qs.filter(version=version)
    if since is not None:
        qs = qs.filter(observed_at__gte=since)
    if until is not None:
        qs = qs.filter(observed_at__lt=until)
    return qs.select_related("registered_model__source").order_by("observed_at", "pk")


def _version_url(model: RegisteredModel, version: int | None) -> str:
    if version is None:
        return ""
    return reverse(
        "registry:version-detail",
        kwargs={"source": model.source.name, "name": model.name, "version": version},
    )


class _VersionUrls:
    """The version pages of one registered model: reversed once, then the number filled in
    (the pattern ends ``versions/<int:version>/``)."""

    def __init__(self, model: RegisteredModel):
        self.prefix = _version_url(model, 1)[: -len("1/")]

    def __call__(self, version: int | None) -> str:
        return "" if version is None else f"{self.prefix}{version}/"


def _utc(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _when_text(event: RegistryEvent) -> str:
    if event.previously_seen_at is None:
        return f"already set when the portal first looked ({_utc(event.observed_at)})"
    before = event.previously_seen_at.astimezone(dt.UTC)
    return f"moved between {before:%Y-%m-%d %H:%M} and {_utc(event.observed_at)}"


def _alias_spans(events: list[RegistryEvent], model: RegisteredModel) -> list[Span]:
    """The spans of one alias lane from its events (and the model's deletions), in order."""
    spans: list[Span] = []
    version_url = _VersionUrls(model)
    open_span: dict | None = None

    def close(event: RegistryEvent) -> None:
        ended = "the model was deleted" if event.kind == RegistryEventKind.MODEL_DELETED else ""
        detail = {**open_span["detail"], "ended_by": event.kind}
        title = open_span["title"] + (f"; ended: {ended}" if ended else "")
        spans.append(
            Span(
                **{**open_span, "detail": detail, "title": title},
                end=event.observed_at,
                end_after=event.previously_seen_at or event.observed_at,
            )
        )

    for event in events:
        if open_span is not None:
            close(event)
            open_span = None
        if event.kind == RegistryEventKind.ALIAS_SET and event.version is not None:
            first_sight = event.previously_seen_at is None
            open_span = {
                "label": f"v{event.version}",
                "start": None if first_sight else event.observed_at,
                "start_after": None if first_sight else event.previously_seen_at,
                "version": event.version,
                "url": version_url(event.version),
                "title": f"@{event.name} → v{event.version}: {_when_text(event)}",
                "detail": {
                    "source": model.source.name,
                    "registered_model": model.name,
                    "observed_at": event.observed_at.isoformat(),
                    "first_sight": first_sight,
                },
            }
    if open_span is not None:
        spans.append(Span(**open_span))
    return spans


LANE_FIELDS = (
    "registered_model_id", "name", "kind", "version", "observed_at", "previously_seen_at",
)  # fmt: skip


def _held_at(base: QuerySet[RegistryEvent], since: dt.datetime) -> Q:
    """The events that decide what each lane held at ``since``: per alias its last event
    before then, per registered model its last deletion before then."""
    held = Q(pk__in=[])
    earlier = base.filter(observed_at__lt=since)
    for row in (
        earlier.exclude(kind=RegistryEventKind.MODEL_DELETED)
        .values("registered_model_id", "name")
        .annotate(last=Max("observed_at"))
    ):
        held |= Q(
            registered_model_id=row["registered_model_id"],
            name=row["name"],
            observed_at=row["last"],
        )
    for row in (
        earlier.filter(kind=RegistryEventKind.MODEL_DELETED)
        .values("registered_model_id")
        .annotate(last=Max("observed_at"))
    ):
        held |= Q(
            registered_model_id=row["registered_model_id"],
            kind=RegistryEventKind.MODEL_DELETED,
            observed_at=row["last"],
        )
    return held


def _lane_events(
    catalog_model: CatalogModel,
    registered_model: RegisteredModel | None = None,
    since: dt.datetime | None = None,
) -> dict[tuple[int, str], list[RegistryEvent]]:
    """(registered model pk, alias) -> its events, each lane with its model's deletions.

    Only the fields the spans need (a model with thousands of alias moves renders its timeline
    in time). With ``since``: the events from then on, and those that decide what each lane
    held at ``since`` (a timeline's range)."""
    base = RegistryEvent.objects.filter(
        registered_model__catalog_model=catalog_model, kind__in=LANE_KINDS
    )
    if registered_model is not None:
        base = base.filter(registered_model=registered_model)
    qs = base if since is None else base.filter(Q(observed_at__gte=since) | _held_at(base, since))
    by_lane: dict[tuple[int, str], list[RegistryEvent]] = {}
    deletions: dict[int, list[RegistryEvent]] = {}
    for event in qs.only(*LANE_FIELDS).order_by("observed_at", "pk"):
        if event.kind == RegistryEventKind.MODEL_DELETED:
            deletions.setdefault(event.registered_model_id, []).append(event)
        else:
            by_lane.setdefault((event.registered_model_id, event.name), []).append(event)
    for (model_pk, _), lane_events in by_lane.items():
        lane_events.extend(deletions.get(model_pk, []))
        lane_events.sort(key=lambda e: (e.observed_at, e.pk))
    return by_lane


def alias_lanes(catalog_model: CatalogModel, since: dt.datetime | None = None) -> list[Lane]:
    """One lane per alias (per registration when a model is registered in several sources),
    each span the version the alias pointed at, from the alias events the syncs wrote; a
    model's deletion ends its aliases' spans. With ``since``, only the spans that held the
    alias from then on."""
    by_lane = _lane_events(catalog_model, since=since)
    models = RegisteredModel.objects.select_related("source").in_bulk({k[0] for k in by_lane})
    several = len({key[0] for key in by_lane}) > 1
    lanes = []
    for (model_pk, alias), lane_events in by_lane.items():
        model = models[model_pk]
        where = f" ({model.source.name})" if several else ""
        lanes.append(
            Lane(
                key=f"alias:{model.pk}:{alias}",
                title=f"@{alias}{where}",
                kind="alias",
                spans=_alias_spans(lane_events, model),
                order=200,
            )
        )
    return sorted(lanes, key=lambda lane: lane.title)


# What an alias pointed at, at a moment -------------------------------------------------------

POINTED = "version"
NONE = "none"
UNKNOWN = "unknown"
ALIAS_OUTCOMES = (
    (POINTED, "pointed at a version"),
    (NONE, "pointed at no version"),
    (UNKNOWN, "unknown: inside a window the syncs could not see into"),
)


@dataclass(frozen=True)
class AliasAnswer:
    """What ``alias`` pointed at at ``at``: a version (``outcome`` "version"), no version
    ("none"), or "unknown" when ``at`` lies in a window the syncs could not see into
    (``window_start`` .. ``window_end``; ``window_start`` None: open-ended), with the versions
    it may have pointed at then (None in ``possible``: no version)."""

    alias: str
    at: dt.datetime
    outcome: str
    version: int | None = None
    window_start: dt.datetime | None = None
    window_end: dt.datetime | None = None
    possible: tuple[int | None, ...] = ()
    source: str = ""
    registered_model: str = ""
    text: str = ""


def _registration(catalog_model: CatalogModel, source: str) -> RegisteredModel | None:
    qs = catalog_model.registered_models.select_related("source").order_by(
        "-source__is_central", "source__name", "name"
    )
    if source:
        qs = qs.filter(source__name=source)
    return qs.first()


def _first_look(model: RegisteredModel) -> dt.datetime:
    """When the portal first saw the model: its first event (for a mirror older than the
    history, the baseline's, not the older row's creation: nothing was recorded before it),
    else when its row was made."""
    first = model.events.aggregate(first=Min("observed_at"))["first"]
    return first or model.first_seen_at


def _window(span: Span, at: dt.datetime) -> tuple[dt.datetime | None, dt.datetime | None]:
    if span.start is not None and span.start_after is not None and at < span.start:
        return span.start_after, span.start
    return span.end_after, span.end


def _before_first_look(alias, at, model, first_look, answer) -> AliasAnswer:
    created = model.created_upstream_at
    if created is not None and at < created:
        return AliasAnswer(
            **answer, outcome=NONE, text=f"@{alias} pointed at no version: "
            f"{model.name} was registered only at {_utc(created)}",
        )  # fmt: skip
    return AliasAnswer(
        **answer,
        outcome=UNKNOWN,
        window_start=created,
        window_end=first_look,
        text=f"unknown: before the portal first looked at {model.name} ({_utc(first_look)})",
    )


def alias_at(
    catalog_model: CatalogModel, alias: str, at: dt.datetime, *, source: str = ""
) -> AliasAnswer:
    """What ``alias`` of the model's registration (in ``source``, else the central one first)
    pointed at at ``at`` (an aware datetime), as far as the syncs saw."""
    model = _registration(catalog_model, source)
    answer = {"alias": alias, "at": at}
    if model is None:
        where = f" in {source}" if source else ""
        return AliasAnswer(**answer, outcome=NONE, text=f"not registered{where}: no alias")
    answer.update(source=model.source.name, registered_model=model.name)
    first_look = _first_look(model)
    if at < first_look:
        return _before_first_look(alias, at, model, first_look, answer)
    # The events from ``at`` on and the ones that decide what held at ``at``: not the whole
    # history of a model with thousands of moves.
    events = _lane_events(catalog_model, model, since=at).get((model.pk, alias), [])
    spans = _alias_spans(events, model)
    unsure = []
    for span in spans:
        # The last sync that saw the old state saw it at end_after: it still held then.
        covered = True if span.end_after == at and span.end != at else span.covers(at)
        if covered:
            return AliasAnswer(
                **answer, outcome=POINTED, version=span.version,
                text=f"@{alias} pointed at v{span.version}",
            )  # fmt: skip
        if covered is None:
            unsure.append(span)
    if not unsure:
        last = spans[-1] if spans else None
        deleted = last is not None and last.detail.get("ended_by") == "model_deleted"
        why = f": {model.name} was deleted from the registry" if deleted and at >= last.end else ""
        return AliasAnswer(**answer, outcome=NONE, text=f"@{alias} pointed at no version{why}")
    start, end = _window(unsure[0], at)
    possible = tuple(sorted({s.version for s in unsure}))
    if len(possible) == 1:
        possible = (*possible, None)  # it came or went in the window: before, after, no version
    names = " or ".join("none" if v is None else f"v{v}" for v in possible)
    when = f"between {_utc(start)} and {_utc(end)}" if start else f"before {_utc(end)}"
    return AliasAnswer(
        **answer,
        outcome=UNKNOWN,
        window_start=start,
        window_end=end,
        possible=possible,
        text=f"unknown: @{alias} moved {when}, a window the syncs could not see into ({names})",
    )
