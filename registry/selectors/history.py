"""Reads of the registry history (models.RegistryEvent): alias lanes for the timeline."""

from __future__ import annotations

import datetime as dt

from django.db.models import Max, Q, QuerySet
from django.urls import reverse

from ..models import CatalogModel, RegisteredModel, RegistryEvent, RegistryEventKind
from ..models.history import ALIAS_KINDS
from ..timeline import Lane, Span


def registry_events(catalog_model: CatalogModel) -> QuerySet[RegistryEvent]:
    """Every event of the model's registrations, oldest first."""
    return (
        RegistryEvent.objects.filter(registered_model__catalog_model=catalog_model)
        .select_related("registered_model__source")
        .order_by("observed_at", "pk")
    )


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


def _when_text(event: RegistryEvent) -> str:
    if event.previously_seen_at is None:
        return f"already set when the portal first looked ({event.observed_at:%Y-%m-%d %H:%M} UTC)"
    return (
        f"moved between {event.previously_seen_at:%Y-%m-%d %H:%M} and "
        f"{event.observed_at:%Y-%m-%d %H:%M} UTC"
    )


def _alias_spans(events: list[RegistryEvent], model: RegisteredModel) -> list[Span]:
    spans: list[Span] = []
    version_url = _VersionUrls(model)
    open_span: dict | None = None

    def close(event: RegistryEvent) -> None:
        spans.append(
            Span(
                **open_span,
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
            }
    if open_span is not None:
        spans.append(Span(**open_span))
    return spans


def _alias_events(catalog_model: CatalogModel, since: dt.datetime | None):
    """The alias events of the model (only the fields the spans need), oldest first per
    lane; with ``since``, those from then on and, per lane, the last one before (the span
    that held the alias at ``since``)."""
    base = RegistryEvent.objects.filter(
        registered_model__catalog_model=catalog_model, kind__in=ALIAS_KINDS
    )
    events = base
    if since is not None:
        held = Q(pk__in=[])
        for row in (
            base.filter(observed_at__lt=since)
            .values("registered_model_id", "name")
            .annotate(last=Max("observed_at"))
        ):
            held |= Q(
                registered_model_id=row["registered_model_id"],
                name=row["name"],
                observed_at=row["last"],
            )
        events = base.filter(Q(observed_at__gte=since) | held)
    return list(
        events.only(
            "registered_model_id", "name", "kind", "version", "observed_at", "previously_seen_at"
        ).order_by("registered_model_id", "name", "observed_at", "pk")
    )


def alias_lanes(catalog_model: CatalogModel, since: dt.datetime | None = None) -> list[Lane]:
    """One lane per alias (per registration when a model is registered in several sources),
    each span the version the alias pointed at, from the alias events the syncs wrote.
    With ``since``, only the spans that held the alias from then on (a timeline's range)."""
    # The few fields the spans need, and each registered model once (not one per event):
    # a model with thousands of alias moves renders its timeline in time.
    events = _alias_events(catalog_model, since)
    by_lane: dict[tuple[int, str], list[RegistryEvent]] = {}
    for event in events:
        by_lane.setdefault((event.registered_model_id, event.name), []).append(event)
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
