"""Hook points through which higher apps add to the registry's pages.

The registry never imports the apps above it (pipelines, approvals, maturity). Instead its
views call the dotted functions named in settings:

- ``REGISTRY_MODEL_PAGE_SECTIONS``: ``f(request, catalog_model) -> list[Section]``
- ``REGISTRY_VERSION_PAGE_SECTIONS``: ``f(request, version) -> list[Section]``
- ``REGISTRY_MODEL_PAGE_BADGES``: ``f(catalog_model) -> list[Badge]``, added to the badges in
  the model page's header (e.g. its maturity level).
- ``REGISTRY_CATALOG_LIST_ANNOTATORS``: ``f(catalog_models: list) -> {model pk: {column:
  [ColumnItem, ...]}}``, one call for a whole page of the model list (so no N+1). The list knows
  the columns ``QA``, ``PROD`` and ``Maturity``.
- ``REGISTRY_VERSION_LIST_ANNOTATORS``: ``f(catalog_model, versions: list) -> {version pk:
  [ColumnItem, ...]}``, the "Deployed" cell of each row of a model page's versions table (where
  the version runs now), one call for the page.
- ``REGISTRY_VERSION_MARKERS``: ``f(catalog_model, versions: list) -> {version pk: [Marker,
  ...]}``, marks on the points of the "Metric across versions" chart and its table (e.g.
  "PROD now · AKS", "served in PROD"), one call (and one query) for every version of the
  model, however many. ``Marker(text, tone, title)``: ``tone`` is a Bootstrap colour
  (danger for PROD now, secondary for before).

When a setting is empty the page shows its own placeholder instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.module_loading import import_string
from django.utils.text import slugify

from core.home import HomeCard
from core.roles import Role

from . import selectors


@dataclass(frozen=True)
class Section:
    """A block of a registry page, rendered from ``template_name`` with ``context`` added."""

    title: str
    template_name: str
    context: dict = field(default_factory=dict)
    order: int = 100

    @property
    def slug(self) -> str:
        return slugify(self.title) or "section"


@dataclass(frozen=True)
class ColumnItem:
    """One entry of a model-list cell filled by an annotator (e.g. "v3 · AKS" in In PROD)."""

    text: str
    url: str = ""
    title: str = ""
    tone: str = ""  # a Bootstrap colour: shown as a badge of that colour (e.g. "danger")


@dataclass(frozen=True)
class Badge:
    """A badge of the model page's header; ``tone`` is a Bootstrap colour (info, warning...)."""

    text: str
    url: str = ""
    title: str = ""
    icon: str = ""  # a Bootstrap icon name, e.g. "bi-bar-chart-steps"
    tone: str = "secondary"
    testid: str = ""


@dataclass(frozen=True)
class Marker:
    """A mark on a version in the metric chart ("PROD now · AKS"); ``tone``: Bootstrap colour."""

    text: str
    tone: str = "secondary"
    title: str = ""


def _providers(setting: str) -> list:
    return [import_string(dotted) for dotted in getattr(settings, setting, None) or []]


def _sections(setting: str, *args) -> list[Section]:
    sections: list[Section] = []
    for provider in _providers(setting):
        sections.extend(provider(*args) or [])
    return sorted(sections, key=lambda s: s.order)


def model_page_sections(request, catalog_model) -> list[Section]:
    """Sections the configured providers add to a catalog model's page, in order."""
    return _sections("REGISTRY_MODEL_PAGE_SECTIONS", request, catalog_model)


def version_page_sections(request, version) -> list[Section]:
    """Sections the configured providers add to a version's page, in order."""
    return _sections("REGISTRY_VERSION_PAGE_SECTIONS", request, version)


def model_page_badges(catalog_model) -> list[Badge] | None:
    """Badges the configured providers add to a model page's header; None when none is."""
    providers = _providers("REGISTRY_MODEL_PAGE_BADGES")
    if not providers:
        return None
    return [badge for provider in providers for badge in provider(catalog_model) or []]


@dataclass(frozen=True)
class RenderedSection:
    section: Section
    html: str

    @property
    def title(self) -> str:
        return self.section.title

    @property
    def slug(self) -> str:
        return self.section.slug


def sections_render(request, sections: list[Section]) -> list[RenderedSection]:
    """Render each section's template with its context (and the request's, for CSRF and user)."""
    return [
        RenderedSection(s, render_to_string(s.template_name, s.context, request=request))
        for s in sections
    ]


def catalog_list_annotations(catalog_models: list) -> dict[int, dict[str, list[ColumnItem]]] | None:
    """Per catalog model pk, the extra cells of the model list; None when none is configured."""
    providers = _providers("REGISTRY_CATALOG_LIST_ANNOTATORS")
    if not providers:
        return None
    merged: dict[int, dict[str, list[ColumnItem]]] = {}
    for provider in providers:
        for pk, columns in (provider(catalog_models) or {}).items():
            row = merged.setdefault(pk, {})
            for column, items in columns.items():
                row.setdefault(column, []).extend(items)
    return merged


def version_list_annotations(catalog_model, versions: list) -> dict[int, list[ColumnItem]] | None:
    """Per version pk, where it runs now (the "Deployed" cell); None when none is configured."""
    providers = _providers("REGISTRY_VERSION_LIST_ANNOTATORS")
    if not providers:
        return None
    merged: dict[int, list[ColumnItem]] = {}
    for provider in providers:
        for pk, items in (provider(catalog_model, versions) or {}).items():
            merged.setdefault(pk, []).extend(items)
    return merged


def version_markers(catalog_model, versions: list) -> dict[int, list[Marker]] | None:
    """Per version pk, the marks the configured providers add; None when none is configured."""
    providers = _providers("REGISTRY_VERSION_MARKERS")
    if not providers:
        return None
    merged: dict[int, list[Marker]] = {}
    for provider in providers:
        for pk, items in (provider(catalog_model, versions) or {}).items():
            merged.setdefault(pk, []).extend(items)
    return merged


# --- The data scientists' home card (PORTAL_HOME_CARD_PROVIDERS, core/home.py) ---------------


def home_team(user) -> selectors.TeamModels | None:
    """The user's team's models (None without a user), read once per request: this card and
    the pipelines' "Running now" both need them. A user's team is that of the models they own."""
    if user is None:
        return None
    team = getattr(user, "_portal_home_team", None)
    if team is None:
        team = user._portal_home_team = selectors.team_models_for(user)
    return team


def home_cards(user, held_roles: frozenset[str]) -> list[HomeCard]:
    """ "Your team's models", for data scientists."""
    if Role.DATA_SCIENTIST not in held_roles:
        return []
    team = home_team(user)
    link = reverse("registry:model-list")
    if team is not None and len(team.teams) == 1:
        link += "?" + urlencode({"team": team.teams[0]})
    return [
        HomeCard(
            "team-models",
            Role.DATA_SCIENTIST,
            "Your team's models",
            _team_models_empty_text(user, team),
            tuple(team.models) if team is not None else (),
            summary={"teams": team.teams, "total": team.total} if team and team.models else {},
            link=link,
            link_label=f"All {team.teams[0]} models" if "?" in link else "All models",
            order=10,
        )
    ]


def _team_models_empty_text(user, team) -> str:
    """Why the card is empty: the portal does not know the user's team, or it has no model."""
    if team is None or not team.owns_any:
        who = ", ".join(sorted(selectors.owner_names(user))) if user is not None else ""
        return (
            f"No catalog model names you ({who}) among its owners, so the portal does not know "
            "your team. Ask an editor to add you to your models' owners (model page, Edit)."
        )
    return (
        f"No model of {', '.join(team.teams) or 'yours'} is in the catalog now (deleted "
        "upstream, or not synced yet)."
    )
