"""HTML views; each declares its access rule with core.access.

Pages read the mirror only (never MLflow inside a request) and show how fresh it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.access import ANY_ROLE, access, roles
from core.listing import sort_headers
from core.roles import Role, user_has_role

from . import selectors, services
from .chart_context import metric_chart_view
from .forms import CatalogFilterForm, CatalogModelForm
from .models import CatalogModel, ModelVersion, RegisteredModel
from .sections import (
    catalog_list_annotations,
    model_page_badges,
    model_page_sections,
    sections_render,
    version_list_annotations,
    version_page_sections,
)
from .selectors.headline import headline_column_label, headlines_attach

MODELS_PER_PAGE = 50
VERSIONS_PER_PAGE = 25
EDITORS = (Role.ADMIN, Role.DATA_SCIENTIST)
# Who may ask for a binary's Artifactory check now (admins are the operators).
ARTIFACT_CHECKERS = (Role.ADMIN, Role.DATA_SCIENTIST)


def _render(request, template, context, status=200):
    """Every registry page carries the freshness banner of the mirror."""
    context = {"freshness": selectors.registry_freshness(), **context}
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _truthy(value) -> bool:
    return str(value or "").lower() in {"1", "true", "yes", "on"}


def _can_edit(user) -> bool:
    return user_has_role(user, *EDITORS)


def _catalog_model_or_404(name: str) -> CatalogModel:
    try:
        return selectors.catalog_model_get(name=name)
    except CatalogModel.DoesNotExist:
        raise Http404(f"No catalog model named {name}") from None


# --- Model list ------------------------------------------------------------------------------


@dataclass
class AliasLink:
    registration: RegisteredModel
    alias: str
    version: int


@dataclass
class ModelRow:
    model: CatalogModel
    latest_registration: RegisteredModel | None
    aliases: list[AliasLink] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    # Cells added by REGISTRY_CATALOG_LIST_ANNOTATORS (column -> items); None: none configured.
    columns: dict | None = None

    @property
    def deleted_upstream(self) -> bool:
        return self.model.is_registered and not self.model.has_live_registration


def _model_row(model: CatalogModel) -> ModelRow:
    registrations = model.listed_registrations
    latest = next((r for r in registrations if r.pk == model.latest_version_model_id), None)
    aliases = [
        AliasLink(r, alias, version)
        for r in registrations
        for alias, version in sorted((r.aliases or {}).items())
        if isinstance(version, int)
    ]
    sources = sorted({r.source.name for r in registrations})
    return ModelRow(model, latest, aliases, sources)


# Columns whose first click sorts newest / highest first.
DESCENDING_FIRST = frozenset({"updated", "version"})


@access(ANY_ROLE)
@require_GET
def model_list(request):
    form = CatalogFilterForm(request.GET)
    form.is_valid()  # invalid fields are shown as errors and left out of the filters
    filters = form.filters()
    paginator = Paginator(selectors.catalog_model_list(filters=filters), MODELS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    rows = [_model_row(m) for m in headlines_attach(list(page.object_list))]
    annotations = catalog_list_annotations([row.model for row in rows])
    if annotations is not None:
        for row in rows:
            row.columns = annotations.get(row.model.pk, {})
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "rows": rows,
        "sort_headers": sort_headers(request, filters.sort, selectors.SORTS, DESCENDING_FIRST),
        "headline_label": headline_column_label([row.model for row in rows]),
        "default_headline_alias": selectors.default_headline_alias(),
        "tag_texts": [key if value is None else f"{key}={value}" for key, value in filters.tags],
        "filtered": any(
            request.GET.get(k) for k in form.fields if k not in ("sort", "include_deleted")
        ),
        "can_edit": _can_edit(request.user),
    }
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request and htmx.target == "model-results":
        return _render(request, "registry/_model_results.html", context)
    context.update(
        can_set_team_headlines=user_has_role(request.user, Role.ADMIN, Role.MANAGER),
        sources=selectors.source_list(),
        teams=selectors.catalog_team_choices(),
        alias_names=selectors.alias_choices(),
        alias_any=selectors.ALIAS_ANY,
    )
    return _render(request, "registry/model_list.html", context)


# --- Model page ------------------------------------------------------------------------------


def _refs_need_names(registrations: list[RegisteredModel]) -> bool:
    """source:version is ambiguous when one source holds two models of this entry."""
    sources = [r.source_id for r in registrations]
    return len(sources) != len(set(sources))


@access(ANY_ROLE)
@require_GET
def model_detail(request, name):
    model = _catalog_model_or_404(name)
    include_deleted = _truthy(request.GET.get("include_deleted"))
    every_registration = selectors.catalog_model_registrations(
        catalog_model=model, include_deleted=True
    )
    registrations = [
        r for r in every_registration if include_deleted or r.deleted_upstream_at is None
    ]
    live = [r for r in every_registration if r.deleted_upstream_at is None]
    paginator = Paginator(
        selectors.catalog_model_versions(catalog_model=model, include_deleted=include_deleted),
        VERSIONS_PER_PAGE,
    )
    page = paginator.get_page(request.GET.get("page"))
    versions = list(page.object_list)
    with_names = _refs_need_names(every_registration)
    chart = metric_chart_view(
        model, request.GET.get("metric", ""), tolerate_unknown=True, registrations=live
    )
    latest = chart.series.latest
    headline = selectors.headline_for(
        model,
        live,
        team_aliases=selectors.team_headline_aliases(),
        latest=(latest.registered_model, latest.version) if latest else (None, None),
    )
    context = {
        "model": model,
        "headline": headline,
        "metric_chart": chart,
        "registrations": registrations,
        "live_registrations": live,
        "deleted_registration_count": len(every_registration) - len(live),
        "include_deleted": include_deleted,
        "page": page,
        "versions": [
            (v, selectors.version_ref(v, with_name=with_names), selectors.version_alias_names(v))
            for v in versions
        ],
        "run_urls": {v.pk: selectors.mlflow_run_url(v) for v in versions},
        # Where each version runs (the "Deployed" cell); None: no provider, a placeholder.
        "deployed": version_list_annotations(model, versions),
        "key_metric": selectors.key_metric_name(registrations=live, versions=versions),
        "aliases": [
            AliasLink(r, alias, version)
            for r in live
            for alias, version in sorted((r.aliases or {}).items())
            if isinstance(version, int)
        ],
        "tagged_registrations": [r for r in registrations if r.tags],
        "can_edit": _can_edit(request.user),
        "sections": sections_render(request, model_page_sections(request, model)),
        "extra_badges": model_page_badges(model),
    }
    return _render(request, "registry/model_detail.html", context)


@access(ANY_ROLE)
@require_GET
def model_metrics(request, name):
    """One metric across every version of a model, on its own page (?metric=...)."""
    model = _catalog_model_or_404(name)
    # An unknown metric: 400, the message lists the known ones, and the default is shown.
    view = metric_chart_view(model, request.GET.get("metric", ""), tolerate_unknown=True)
    context = {"model": model, "metric_chart": view}
    return _render(
        request, "registry/model_metrics.html", context, status=400 if view.error else 200
    )


# --- Catalog edits ---------------------------------------------------------------------------


def _apply_service_errors(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field_name, errors in error.error_dict.items():
            form.add_error(field_name if field_name in form.fields else None, errors)
    else:
        form.add_error(None, error)


@access(roles(*EDITORS))
@require_http_methods(["GET", "POST"])
def model_create(request):
    form = CatalogModelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            model = services.catalog_model_create(
                **{k: form.cleaned_data[k] for k in ("name", *services.EDITABLE_FIELDS)},
                created_by=request.user,
            )
        except ValidationError as error:
            _apply_service_errors(form, error)
        else:
            messages.success(request, f"Catalog entry {model.name} created.")
            return redirect(model.get_absolute_url())
    form.mark_invalid_fields()
    status = 400 if form.errors else 200
    return _render(request, "registry/model_form.html", {"form": form, "model": None}, status)


@access(roles(*EDITORS))
@require_http_methods(["GET", "POST"])
def model_edit(request, name):
    model = _catalog_model_or_404(name)
    initial = {f: getattr(model, f) for f in services.EDITABLE_FIELDS}
    form = CatalogModelForm(
        request.POST or None, initial=initial, with_name=False, catalog_model=model
    )
    if request.method == "POST" and form.is_valid():
        changed = {f: form.cleaned_data[f] for f in services.EDITABLE_FIELDS}
        try:
            services.catalog_model_update(catalog_model=model, **changed)
        except ValidationError as error:
            _apply_service_errors(form, error)
        else:
            messages.success(request, f"Catalog entry {model.name} saved.")
            return redirect(model.get_absolute_url())
    form.mark_invalid_fields()
    status = 400 if form.errors else 200
    return _render(request, "registry/model_form.html", {"form": form, "model": model}, status)


# --- Team preferences (the headline alias per team) ----------------------------------------

PREFERENCE_EDITORS = (Role.ADMIN, Role.MANAGER)


@access(roles(*PREFERENCE_EDITORS))
@require_http_methods(["GET", "POST"])
def team_preferences(request):
    """Each team's headline alias: managers and admins set it; a model's own choice wins."""
    errors: dict[str, str] = {}
    if request.method == "POST":
        team = request.POST.get("team", "")
        try:
            services.team_preference_set(
                team=team,
                headline_alias=request.POST.get("headline_alias", ""),
                updated_by=request.user.get_username(),
            )
        except ValidationError as error:
            errors = {k: " ".join(v) for k, v in error.message_dict.items()}
            errors["for_team"] = team.strip()
        else:
            messages.success(request, f"Headline alias of {team.strip()} saved.")
            return redirect("registry:team-preferences")
    chosen = {p.team.lower(): p for p in selectors.team_preference_list()}
    teams = sorted(
        {t for t in selectors.catalog_team_choices() if t != selectors.UNKNOWN}
        | {p.team for p in chosen.values()},
        key=str.lower,
    )
    context = {
        "rows": [(team, chosen.get(team.lower())) for team in teams],
        "default_alias": selectors.default_headline_alias(),
        "errors": errors,
        "posted_alias": request.POST.get("headline_alias", "") if errors else "",
    }
    status = 400 if errors else 200
    return _render(request, "registry/team_preferences.html", context, status=status)


# --- Version page ----------------------------------------------------------------------------


@access(ANY_ROLE)
@require_GET
def version_detail(request, source, name, version):
    try:
        mv = selectors.model_version_get(source=source, name=name, version=version)
    except ModelVersion.DoesNotExist:
        raise Http404("No such version") from None
    catalog_model = mv.registered_model.catalog_model
    compare_choices = []
    this_ref = ""
    if catalog_model is not None:
        registrations = selectors.catalog_model_registrations(
            catalog_model=catalog_model, include_deleted=True
        )
        with_names = _refs_need_names(registrations)
        this_ref = selectors.version_ref(mv, with_name=with_names)
        others = selectors.catalog_model_versions(catalog_model=catalog_model).exclude(pk=mv.pk)
        compare_choices = [(selectors.version_ref(v, with_name=with_names), v) for v in others[:50]]
    context = {
        "version": mv,
        "registration": mv.registered_model,
        "source": mv.registered_model.source,
        "catalog_model": catalog_model,
        "mlflow_run_url": selectors.mlflow_run_url(mv),
        "upstream_run_link": mv.run_link if mv.run_link.startswith(("https://", "http://")) else "",
        "this_ref": this_ref,
        "compare_choices": compare_choices,
        "alias_names": selectors.version_alias_names(mv),
        "sections": sections_render(request, version_page_sections(request, mv)),
        "binary": selectors.binary_status(mv),
        "can_check": user_has_role(request.user, *ARTIFACT_CHECKERS),
        "path_tag": settings.ARTIFACTORY_PATH_TAG,
    }
    return _render(request, "registry/version_detail.html", context)


@access(roles(*ARTIFACT_CHECKERS))
@require_POST
def version_artifact_check(request, source, name, version):
    """ "Check now": queue the Artifactory check of this version's binary."""
    try:
        mv = selectors.model_version_get(source=source, name=name, version=version)
    except ModelVersion.DoesNotExist:
        raise Http404("No such version") from None
    if not selectors.binary_status(mv).configured:
        messages.error(request, "Artifactory is not configured: there is nothing to check with.")
    else:
        services.artifact_check_queue(version_ids=[mv.pk])
        messages.success(
            request, f"Check of v{mv.version}'s binary queued; reload in a moment for its result."
        )
    return redirect("registry:version-detail", source=source, name=name, version=version)


# --- Compare ---------------------------------------------------------------------------------


@access(ANY_ROLE)
@require_GET
def model_compare(request, name):
    model = _catalog_model_or_404(name)
    try:
        refs = selectors.version_refs_parse(request.GET.getlist("v"))
        versions = selectors.compare_versions_resolve(catalog_model=model, refs=refs)
    except selectors.CompareError as error:
        registrations = selectors.catalog_model_registrations(
            catalog_model=model, include_deleted=True
        )
        with_names = _refs_need_names(registrations)
        recent = selectors.catalog_model_versions(catalog_model=model)[:VERSIONS_PER_PAGE]
        context = {
            "model": model,
            "message": str(error),
            "choices": [(selectors.version_ref(v, with_name=with_names), v) for v in recent],
            "chosen": set(request.GET.getlist("v")),
        }
        return _render(request, "registry/compare_error.html", context, status=400)
    comparison = selectors.version_comparison(versions)
    refs_text = [str(r) for r in refs]
    baseline_urls = []
    for i in range(len(refs_text)):
        params = QueryDict(mutable=True)
        params.setlist("v", [refs_text[i], *refs_text[:i], *refs_text[i + 1 :]])
        baseline_urls.append(f"?{params.urlencode()}")
    context = {
        "model": model,
        "comparison": comparison,
        "columns": list(zip(comparison.versions, refs_text, baseline_urls, strict=True)),
        # each value's version, for the phone layout that stacks values under their version
        "version_labels": [
            f"{v.registered_model.source.name} v{v.version}" for v in comparison.versions
        ],
        "differing_params": sum(1 for p in comparison.params if p.differs),
    }
    return _render(request, "registry/compare.html", context)
