"""Read queries shared by the registry's views, API and the portal's health checks."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import (
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Lower, NullIf
from django.urls import reverse

from core.sync import SyncStatus

from .models import LIVE, CatalogModel, ModelVersion, RegisteredModel, RegistrySource

REGISTRY_SYSTEM = "the MLflow registry"


def _source_admin_url(source: RegistrySource) -> str:
    return reverse("admin:registry_registrysource_change", args=[source.pk])


def sync_status_list() -> list[SyncStatus]:
    """One SyncStatus per enabled source, for /readyz, /metrics and the operator's home."""
    return [
        SyncStatus(
            name=f"registry:{source.name}",
            last_success_at=source.last_sync_succeeded_at,
            last_error_at=source.last_sync_error_at,
            last_error=source.last_sync_error,
            system=REGISTRY_SYSTEM,
            admin_url=_source_admin_url(source),
        )
        for source in RegistrySource.objects.filter(enabled=True)
    ]


# ---------------------------------------------------------------------------------------------
# Catalog, versions and comparison: the reads behind the registry pages and API.
# ---------------------------------------------------------------------------------------------

UNKNOWN = "unknown"

SORTS = {
    # key: (label, order_by ascending)
    "name": ("Name", ("name",)),
    "team": ("Team", ("eff_team", "name")),
    "updated": ("Last updated", ("last_updated", "name")),
    "version": ("Latest version", ("latest_version", "name")),
}
ALIAS_ANY = "*"
# A registered model tag naming the metric its versions are judged by (else the most common).
KEY_METRIC_TAG = getattr(settings, "REGISTRY_KEY_METRIC_TAG", "key_metric")


@dataclass(frozen=True)
class CatalogFilters:
    """What the model list (page and API) is narrowed and ordered by; blank means no filter."""

    q: str = ""
    source: str = ""
    kind: str = ""
    serving: str = ""
    team: str = ""
    registered: bool | None = None
    alias: str = ""  # ALIAS_ANY: any alias; otherwise an alias name
    tags: tuple[tuple[str, str | None], ...] = ()  # (key, value); value None: key present
    include_deleted: bool = False
    sort: str = "name"  # a SORTS key, "-" prefixed for descending

    @property
    def sort_key(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")


def _effective(override: str, registry_value: str):
    return Coalesce(
        NullIf(F(override), Value("")), NullIf(F(registry_value), Value("")), Value(UNKNOWN)
    )


def _registrations(include_deleted: bool):
    """Registered models linked to the outer catalog model (live ones unless asked)."""
    qs = RegisteredModel.objects.filter(catalog_model=OuterRef("pk"))
    return qs if include_deleted else qs.filter(LIVE)


def catalog_model_annotated():
    """Catalog models with their effective kind, serving and team (for filters and sorting)."""
    return CatalogModel.objects.annotate(
        eff_kind=_effective("kind", "registry_kind"),
        eff_serving=_effective("serving", "registry_serving"),
        eff_team=_effective("team", "registry_team"),
    )


def catalog_model_list(*, filters: CatalogFilters) -> QuerySet[CatalogModel]:
    """The catalog, filtered and sorted, with everything a list row shows and no N+1.

    Each row carries ``eff_kind``, ``eff_serving``, ``eff_team``, ``latest_version`` (number),
    ``latest_version_model_id`` (its registered model), ``last_updated``, ``is_registered``,
    ``has_live_registration`` and ``listed_registrations`` (the registered models considered,
    with their source, prefetched in one query).
    """
    include_deleted = filters.include_deleted
    registrations = _registrations(include_deleted)
    versions = ModelVersion.objects.filter(registered_model__catalog_model=OuterRef("pk"))
    if not include_deleted:
        versions = versions.filter(LIVE, registered_model__deleted_upstream_at__isnull=True)
    latest = versions.order_by(F("created_upstream_at").desc(nulls_last=True), "-version", "-pk")
    last_upstream = registrations.order_by(F("updated_upstream_at").desc(nulls_last=True))

    qs = catalog_model_annotated().annotate(
        latest_version=Subquery(latest.values("version")[:1]),
        latest_version_model_id=Subquery(latest.values("registered_model_id")[:1]),
        last_updated=Coalesce(
            Subquery(last_upstream.values("updated_upstream_at")[:1]), F("updated_at")
        ),
        is_registered=Exists(registrations),
        has_live_registration=Exists(_registrations(False)),
    )
    if not include_deleted:
        # A catalog entry whose registered models all vanished upstream counts as deleted;
        # one that was never registered (a rule-based model) is always shown.
        qs = qs.filter(Q(has_live_registration=True) | ~Exists(_registrations(True)))

    if filters.q:
        qs = qs.filter(
            Q(name__icontains=filters.q) | Exists(registrations.filter(name__icontains=filters.q))
        )
    if filters.source:
        qs = qs.filter(Exists(registrations.filter(source__name=filters.source)))
    if filters.kind:
        qs = qs.filter(eff_kind=filters.kind)
    if filters.serving:
        qs = qs.filter(eff_serving=filters.serving)
    if filters.team:
        qs = qs.filter(eff_team__iexact=filters.team)
    if filters.registered is not None:
        qs = qs.filter(is_registered=filters.registered)
    if filters.alias == ALIAS_ANY:
        qs = qs.filter(Exists(registrations.exclude(aliases={})))
    elif filters.alias:
        qs = qs.filter(Exists(registrations.filter(aliases__has_key=filters.alias)))
    for key, value in filters.tags:
        if value is None:
            qs = qs.filter(Exists(registrations.filter(tags__has_key=key)))
        else:
            # KeyTextTransform, not tags__<key>: keys may contain dots and other lookup words.
            # Cast to text so the comparison is a plain one on both engines: SQLite would
            # otherwise parse the value as JSON ("malformed JSON" for team=risk), and a number
            # stored by hand matches its text as it does on PostgreSQL.
            tag_value = Cast(KeyTextTransform(key, "tags"), output_field=TextField())
            tagged = registrations.annotate(tag_value=tag_value)
            qs = qs.filter(Exists(tagged.filter(tag_value=value)))

    sort_key = filters.sort_key if filters.sort_key in SORTS else "name"
    order = []
    for i, field in enumerate(SORTS[sort_key][1]):
        expression = F(field)
        if i == 0 and filters.descending:
            order.append(expression.desc(nulls_last=True))
        else:
            order.append(expression.asc(nulls_last=True))
    listed = RegisteredModel.objects.select_related("source").order_by("source__name", "name")
    if not include_deleted:
        listed = listed.filter(LIVE)
    return qs.order_by(*order, "pk").prefetch_related(
        Prefetch("registered_models", queryset=listed, to_attr="listed_registrations")
    )


def catalog_team_choices() -> list[str]:
    """Every effective team of the catalog, for the team filter (one query)."""
    teams = catalog_model_annotated().order_by().values_list("eff_team", flat=True).distinct()
    return sorted({t for t in teams}, key=str.lower)


@dataclass(frozen=True)
class TeamModels:
    """A user's team's models: the teams of the catalog entries the user owns, and theirs."""

    teams: tuple[str, ...]  # known teams of the owned entries ("unknown" left out)
    owns_any: bool  # False: nothing names the user as owner, so their team is not known
    models: list  # catalog models as catalog_model_list gives them, plus latest_registration
    total: int
    catalog_ids: tuple[int, ...] = ()  # every one of them, listed or not (e.g. for their runs)


def owner_names(user) -> set[str]:
    return {n.strip().lower() for n in (user.email, user.get_username()) if n and n.strip()}


def catalog_ids_owned_by(user) -> list[int]:
    """Catalog entries whose owners name the user (by e-mail or user name, any case).

    A portal user belongs to no team of their own: their team is read from what they own.
    ``icontains`` narrows in SQL the same way on both engines (JSON containment is
    PostgreSQL-only); the exact match of a whole owner is made here.
    """
    names = owner_names(user)
    if not names:
        return []
    narrowed = Q()
    for name in names:
        narrowed |= Q(owners__icontains=name)
    return [
        pk
        for pk, owners in CatalogModel.objects.filter(narrowed).values_list("pk", "owners")
        if isinstance(owners, list) and names & {str(o).strip().lower() for o in owners}
    ]


def team_models_for(user, *, limit: int = 8) -> TeamModels:
    """The models of the teams of the entries the user owns (and those entries), by name."""
    owned = catalog_ids_owned_by(user)
    if not owned:
        return TeamModels(teams=(), owns_any=False, models=[], total=0)
    owned_teams = catalog_model_annotated().filter(pk__in=owned).values_list("eff_team", flat=True)
    teams = tuple(sorted({t for t in owned_teams if t != UNKNOWN}, key=str.lower))
    theirs = Q(team_lower__in=[t.lower() for t in teams]) | Q(pk__in=owned)
    ids = tuple(
        catalog_model_annotated()
        .annotate(team_lower=Lower("eff_team"))
        .filter(theirs)
        .values_list("pk", flat=True)
    )
    listed = catalog_model_list(filters=CatalogFilters()).filter(pk__in=ids)
    models = list(listed[:limit])
    for model in models:
        model.latest_registration = next(
            (r for r in model.listed_registrations if r.pk == model.latest_version_model_id),
            None,
        )
    return TeamModels(
        teams=teams, owns_any=True, models=models, total=listed.count(), catalog_ids=ids
    )


def alias_choices(limit: int = 50) -> list[str]:
    """Alias names in use on live registered models, for the alias filter (one query)."""
    from django.db import connection
    from django.db.models import F, Func

    live = RegisteredModel.objects.filter(LIVE).exclude(aliases={})
    if connection.vendor == "postgresql":
        # The database lists the distinct keys; reading every model's aliases costs ~10 ms
        # per page at 5,000 models (docs/performance.md).
        keys = (
            live.annotate(alias=Func(F("aliases"), function="jsonb_object_keys"))
            .values_list("alias", flat=True)
            .distinct()
            .order_by("alias")
        )
        return list(keys[:limit])
    names: set[str] = set()
    for aliases in (
        RegisteredModel.objects.filter(LIVE).exclude(aliases={}).values_list("aliases", flat=True)
    ):
        if isinstance(aliases, dict):
            names.update(aliases)
    return sorted(names)[:limit]


def source_list(*, enabled_only: bool = False) -> QuerySet[RegistrySource]:
    qs = RegistrySource.objects.all()
    return qs.filter(enabled=True) if enabled_only else qs


def catalog_model_get(*, name: str) -> CatalogModel:
    """One catalog entry by exact name, with its effective categories; raises DoesNotExist."""
    return catalog_model_annotated().get(name=name)


def catalog_model_registrations(
    *, catalog_model: CatalogModel, include_deleted: bool = False
) -> list[RegisteredModel]:
    """The registered models of a catalog entry, central source first."""
    qs = catalog_model.registered_models.select_related("source").order_by(
        "-source__is_central", "source__name", "name"
    )
    if not include_deleted:
        qs = qs.filter(LIVE)
    return list(qs)


def catalog_model_versions(
    *, catalog_model: CatalogModel, source: str = "", include_deleted: bool = False
) -> QuerySet[ModelVersion]:
    """Every version of a catalog entry's registered models, newest first."""
    qs = ModelVersion.objects.filter(registered_model__catalog_model=catalog_model).select_related(
        "registered_model__source"
    )
    if source:
        qs = qs.filter(registered_model__source__name=source)
    if not include_deleted:
        qs = qs.filter(LIVE, registered_model__deleted_upstream_at__isnull=True)
    return qs.order_by(F("created_upstream_at").desc(nulls_last=True), "-version", "-pk")


def model_version_get(*, source: str, name: str, version: int) -> ModelVersion:
    """One version by source name, registered model name and number (deleted ones too)."""
    return ModelVersion.objects.select_related(
        "registered_model__source", "registered_model__catalog_model"
    ).get(
        registered_model__source__name=source,
        registered_model__name=name,
        version=version,
    )


def key_metric_name(
    *, registrations: list[RegisteredModel], versions: list[ModelVersion]
) -> str | None:
    """The metric a model is judged by: its ``key_metric`` tag, else the most common one."""
    for registration in registrations:
        tagged = (registration.tags or {}).get(KEY_METRIC_TAG)
        if tagged:
            return str(tagged)
    counts: dict[str, int] = {}
    for version in versions:
        for name in version.metrics or {}:
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda n: (-counts[n], n))


def version_alias_names(version: ModelVersion) -> list[str]:
    """Aliases pointing at a version: the registered model's map plus the version's own list."""
    from_model = {
        alias
        for alias, number in (version.registered_model.aliases or {}).items()
        if number == version.version
    }
    return sorted(from_model | set(version.aliases or []))


def mlflow_run_url(version: ModelVersion) -> str:
    """The run's page in the MLflow UI, when the source's UI, experiment and run are known."""
    base = version.registered_model.source.ui_base_url
    if base and version.experiment_id and version.run_id:
        return f"{base}/#/experiments/{version.experiment_id}/runs/{version.run_id}"
    return ""


# --- Freshness -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFreshness:
    """How fresh one enabled source's mirror is: ok, stale, failing or never synced."""

    name: str
    is_central: bool
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str  # the raw error: operators only
    system: str = REGISTRY_SYSTEM
    admin_url: str = ""  # where an operator configures the source

    @property
    def _status(self) -> SyncStatus:
        return SyncStatus(
            self.name, self.last_success_at, self.last_error_at, self.last_error, self.system
        )

    @property
    def reason(self) -> str:
        """Why the last sync failed, in a few words anyone can read."""
        return self._status.reason

    @property
    def state(self) -> str:
        status = self._status
        if status.failing:
            return "failing"
        if self.last_success_at is None:
            return "never"
        return "stale" if status.stale else "ok"

    @property
    def age_seconds(self) -> float | None:
        return self._status.age_seconds


@dataclass(frozen=True)
class Freshness:
    sources: tuple[SourceFreshness, ...]

    @property
    def as_of(self) -> datetime | None:
        """The mirror is as fresh as its least fresh source (None while one never synced)."""
        times = [s.last_success_at for s in self.sources]
        if not times or any(t is None for t in times):
            return None
        return min(times)

    @property
    def stale_after_seconds(self) -> int:
        return settings.PORTAL_SYNC_STALE_AFTER_SECONDS

    @property
    def stale_after_text(self) -> str:
        seconds = self.stale_after_seconds
        for unit, size in (("hour", 3600), ("minute", 60)):
            if seconds >= size and seconds % size == 0:
                count = seconds // size
                return f"{count} {unit}{'' if count == 1 else 's'}"
        return f"{seconds} seconds"

    @property
    def healthy(self) -> tuple[SourceFreshness, ...]:
        return tuple(s for s in self.sources if s.state == "ok")

    @property
    def worst_state(self) -> str:
        states = {s.state for s in self.sources}
        for state in ("failing", "never", "stale", "ok"):
            if state in states:
                return state
        return "none"


def registry_freshness() -> Freshness:
    """The sync state of every enabled source, for the banner on every registry page."""
    return Freshness(
        tuple(
            SourceFreshness(
                s.name,
                s.is_central,
                s.last_sync_succeeded_at,
                s.last_sync_error_at,
                s.last_sync_error,
                admin_url=_source_admin_url(s),
            )
            for s in RegistrySource.objects.filter(enabled=True)
        )
    )


# --- Compare ---------------------------------------------------------------------------------

COMPARE_MIN, COMPARE_MAX = 2, 4


class CompareError(ValueError):
    """Bad input to a comparison; the message is shown to the user as is.

    ``api_hint`` says how to write the request, for API callers only: a person on the page
    picks versions with checkboxes and never sees the query format."""

    def __init__(self, message: str, *, api_hint: str = ""):
        super().__init__(message)
        self.api_hint = api_hint


@dataclass(frozen=True)
class VersionRef:
    """``source:version`` or ``source:registered-model-name:version`` (names have no ':')."""

    source: str
    version: int
    name: str | None = None

    def __str__(self) -> str:
        if self.name is None:
            return f"{self.source}:{self.version}"
        return f"{self.source}:{self.name}:{self.version}"


def version_refs_parse(values: list[str]) -> list[VersionRef]:
    """Parse the ``v`` parameters of a comparison; raise CompareError with a clear message."""
    values = [v.strip() for v in values if v and v.strip()]
    if len(values) < COMPARE_MIN:
        raise CompareError(
            f"Pick at least {COMPARE_MIN} versions to compare ({len(values)} picked).",
            api_hint="pass them as v=source:version.",
        )
    if len(values) > COMPARE_MAX:
        raise CompareError(f"Compare at most {COMPARE_MAX} versions at a time (got {len(values)}).")
    refs = []
    for raw in values:
        parts = raw.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[-1].isdigit():
            raise CompareError(
                f"“{raw}” is not a version reference: use source:version, e.g. central:3."
            )
        name = parts[1] if len(parts) == 3 else None
        refs.append(VersionRef(parts[0], int(parts[-1]), name))
    if len(set(refs)) != len(refs):
        raise CompareError("The same version is listed twice; pick different versions.")
    return refs


def compare_versions_resolve(
    *, catalog_model: CatalogModel, refs: list[VersionRef]
) -> list[ModelVersion]:
    """Find each referenced version among the catalog entry's registered models, in order."""
    candidates = list(
        ModelVersion.objects.select_related("registered_model__source").filter(
            registered_model__catalog_model=catalog_model,
            registered_model__source__name__in={r.source for r in refs},
            version__in={r.version for r in refs},
        )
    )
    found = []
    for ref in refs:
        matches = [
            v
            for v in candidates
            if v.registered_model.source.name == ref.source
            and v.version == ref.version
            and (ref.name is None or v.registered_model.name == ref.name)
        ]
        if not matches:
            raise CompareError(f"{catalog_model.name} has no version {ref} (source:version).")
        if len(matches) > 1:
            names = ", ".join(sorted(m.registered_model.name for m in matches))
            raise CompareError(
                f"{ref} is ambiguous: {ref.source} holds several models of {catalog_model.name} "
                f"({names}); use source:model-name:version."
            )
        found.append(matches[0])
    if len({v.pk for v in found}) != len(found):
        raise CompareError("The same version is listed twice; pick different versions.")
    return found


def version_ref(version: ModelVersion, *, with_name: bool = False) -> str:
    rm = version.registered_model
    if with_name:
        return str(VersionRef(rm.source.name, version.version, rm.name))
    return str(VersionRef(rm.source.name, version.version))


def lower_is_better(metric: str) -> bool:
    """True when the metric name starts with or contains a REGISTRY_LOWER_IS_BETTER entry."""
    name = metric.lower()
    return any(
        name.startswith(p.lower()) or p.lower() in name
        for p in settings.REGISTRY_LOWER_IS_BETTER
        if p
    )


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return float(value)


@dataclass(frozen=True)
class MetricCell:
    value: object  # the stored value (a number, normally), None when the version lacks it
    delta: float | None  # value - first column's value, when both are numbers
    is_best: bool
    better: bool | None  # compared with the first column: True better, False worse, None same


@dataclass(frozen=True)
class MetricRow:
    name: str
    lower_is_better: bool
    cells: tuple[MetricCell, ...]


@dataclass(frozen=True)
class ParamRow:
    name: str
    values: tuple[object, ...]
    differs: bool


@dataclass(frozen=True)
class Comparison:
    versions: tuple[ModelVersion, ...]
    metrics: tuple[MetricRow, ...]
    params: tuple[ParamRow, ...]


def version_comparison(versions: list[ModelVersion]) -> Comparison:
    """Metrics (with deltas against the first version and the best marked), then params."""
    metric_names = sorted({n for v in versions for n in (v.metrics or {})})
    metric_rows = []
    for name in metric_names:
        lower = lower_is_better(name)
        values = [(v.metrics or {}).get(name) for v in versions]
        numbers = [_number(x) for x in values]
        present = [n for n in numbers if n is not None]
        best = None
        if len(present) >= 2 and len(set(present)) > 1:
            best = min(present) if lower else max(present)
        base = numbers[0]
        cells = []
        for i, (value, number) in enumerate(zip(values, numbers, strict=True)):
            delta = better = None
            if i > 0 and base is not None and number is not None:
                delta = number - base
                if delta != 0:
                    better = (delta < 0) if lower else (delta > 0)
            cells.append(MetricCell(value, delta, best is not None and number == best, better))
        metric_rows.append(MetricRow(name, lower, tuple(cells)))
    param_names = sorted({n for v in versions for n in (v.params or {})})
    param_rows = []
    for name in param_names:
        values = tuple((v.params or {}).get(name) for v in versions)
        param_rows.append(ParamRow(name, values, len({json.dumps(x) for x in values}) > 1))
    return Comparison(tuple(versions), tuple(metric_rows), tuple(param_rows))
