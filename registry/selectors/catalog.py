"""The catalog and its versions: the list (filtered, sorted, without N+1), one entry, its
registered models and versions, and a user's team's models."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import (
    Exists,
    F,
    Func,
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

from ..models import LIVE, CatalogModel, ModelVersion, RegisteredModel, RegistrySource
from .headline import headlines_attach

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
    models: list  # rows of catalog_model_list, plus latest_registration and headline
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
    models = headlines_attach(list(listed[:limit]))
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
