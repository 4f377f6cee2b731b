"""What maturity adds to other apps' pages: the registry's, through its hook settings, and
the managers' home cards (``PORTAL_HOME_CARD_PROVIDERS``, core/home.py).

``REGISTRY_MODEL_PAGE_SECTIONS`` (the "Maturity" section), ``REGISTRY_MODEL_PAGE_BADGES`` (the
level in the header) and ``REGISTRY_CATALOG_LIST_ANNOTATORS`` (the model list's "Maturity"
column) name the functions below (see registry/sections.py): the registry calls them without
importing this app.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from core.home import HomeCard
from core.roles import Role, user_has_role
from registry.models import CatalogModel
from registry.sections import Badge, ColumnItem, Section

from . import selectors
from .forms import DeclarationForm
from .models import LEVEL_NAMES, LEVELS, MaturityRecord, ModelMaturity, Result, Source

# Who may declare a level (the service checks it too), and who may ask for an assessment now.
DECLARE_ROLES = (Role.MANAGER,)
ASSESS_ROLES = (Role.MANAGER, Role.ADMIN)
SECTION_ORDER = 30


def can_declare(user) -> bool:
    return user_has_role(user, *DECLARE_ROLES)


def can_assess(user) -> bool:
    return user_has_role(user, *ASSESS_ROLES)


def model_maturity_url(catalog_model: CatalogModel) -> str:
    """The model page, at its maturity section."""
    return reverse("registry:model-detail", kwargs={"name": catalog_model.name}) + "#maturity"


# --- Model page section --------------------------------------------------------------------


@dataclass
class HistoryEntry:
    """One record of the timeline, with the move it made against the record before it of
    the same source (assessed against assessed, declared against declared)."""

    record: MaturityRecord
    previous_level: int | None
    first: bool

    @property
    def declared(self) -> bool:
        return self.record.source == Source.DECLARED

    @property
    def withdrawn(self) -> bool:
        return self.declared and self.record.level is None

    @property
    def direction(self) -> str:
        """up, down, same or first (the first record of its source)."""
        if self.first or self.record.level is None or self.previous_level is None:
            return "first"
        if self.record.level > self.previous_level:
            return "up"
        if self.record.level < self.previous_level:
            return "down"
        return "same"


def history_entries(history: list[MaturityRecord]) -> list[HistoryEntry]:
    """The records newest first, each knowing the level it moved from."""
    entries = []
    oldest_first = list(reversed(history))
    last: dict[str, int | None] = {}
    for record in oldest_first:
        first = record.source not in last
        entries.append(HistoryEntry(record, last.get(record.source), first))
        last[record.source] = record.level
    return list(reversed(entries))


@dataclass
class LevelGroup:
    """The criteria of one level of the latest assessment (the collapsible "all criteria")."""

    level: int
    name: str
    items: list[selectors.ChecklistItem]
    held: bool

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.result] = counts.get(item.result, 0) + 1
        return counts


def level_groups(view: selectors.ModelMaturityView) -> list[LevelGroup]:
    assessed_level = view.assessed.level if view.assessed else 0
    return [
        LevelGroup(
            level=level,
            name=LEVEL_NAMES[level],
            items=[i for i in view.checklist if i.level == level],
            held=level <= assessed_level,
        )
        for level in LEVELS
    ]


def model_page(request, catalog_model: CatalogModel) -> list[Section]:
    """ "Maturity": assessed and declared levels, the next level's checklist, the history,
    and, for managers, the declaration form."""
    view = selectors.model_maturity(catalog_model=catalog_model)
    unmeasured_items = []
    if view.assessed and view.assessed.unmeasured_level:
        unmeasured_items = [
            item
            for item in view.checklist
            if item.level == view.assessed.unmeasured_level and item.result == Result.NOT_MEASURED
        ]
    declaring = can_declare(request.user)
    initial = {"level": str(view.declared.level)} if view.declared else {}
    return [
        Section(
            "Maturity",
            "maturity/_model_section.html",
            {
                "catalog_model": catalog_model,
                "view": view,
                "status": view.status,
                "assessed": view.assessed,
                "declared": view.declared,
                "next_level": view.next_level,
                "next_level_name": LEVEL_NAMES.get(view.next_level or 0, ""),
                "next_items": view.next_checklist,
                "level_groups": level_groups(view) if view.assessed else [],
                "history": history_entries(view.history),
                "unmeasured_items": unmeasured_items,
                "can_declare": declaring,
                "can_assess": can_assess(request.user),
                "form": (
                    DeclarationForm(initial=initial, can_withdraw=view.declared is not None)
                    if declaring
                    else None
                ),
                "dashboard_url": dashboard_url(),
            },
            order=SECTION_ORDER,
        )
    ]


def dashboard_url() -> str:
    return reverse("maturity:dashboard")


# --- Header badge and list column ----------------------------------------------------------


def _disagreement_title(status: ModelMaturity) -> str:
    return (
        f"A manager declared level {status.declared_level}; the assessment finds level "
        f"{status.assessed_level}."
    )


def model_badges(catalog_model: CatalogModel) -> list[Badge]:
    """The maturity level in the model page's header, linking to the section."""
    status = ModelMaturity.objects.filter(pk=catalog_model.pk).first()
    url = model_maturity_url(catalog_model)
    if status is None or status.level is None:
        return [
            Badge(
                "maturity not assessed",
                url=url,
                title="No assessment yet; the nightly assessment will give it a level.",
                icon="bi-bar-chart-steps",
                tone="secondary",
                testid="maturity-badge",
            )
        ]
    if status.assessed_level is None:
        text, title = f"L{status.level} declared", f"Declared level {status.level}, not assessed"
    else:
        text = f"maturity L{status.assessed_level}"
        title = f"Assessed level {status.assessed_level}: {LEVEL_NAMES[status.assessed_level]}"
    badges = [
        Badge(text, url=url, title=title, icon="bi-bar-chart-steps", tone="dark",
              testid="maturity-badge")
    ]  # fmt: skip
    if status.disagreement:
        badges.append(
            Badge(
                f"declared L{status.declared_level}",
                url=url,
                title=_disagreement_title(status),
                icon="bi-exclamation-triangle",
                tone="warning",
                testid="maturity-disagreement-badge",
            )
        )
    return badges


def catalog_levels(catalog_models: list) -> dict[int, dict[str, list[ColumnItem]]]:
    """The "Maturity" cell of a page of the model list, in one query."""
    found = selectors.levels_for([m.pk for m in catalog_models])
    cells: dict[int, dict[str, list[ColumnItem]]] = {}
    for model in catalog_models:
        status = found.get(model.pk)
        url = model_maturity_url(model)
        if status is None or status.level is None:
            items = [ColumnItem("—", url=url, title="Not assessed yet")]
        elif status.assessed_level is None:
            items = [
                ColumnItem(
                    f"L{status.declared_level} (declared)",
                    url=url,
                    title=f"Declared level {status.declared_level}; not assessed yet",
                )
            ]
        else:
            items = [
                ColumnItem(
                    f"L{status.assessed_level}",
                    url=url,
                    title=f"Assessed: {LEVEL_NAMES[status.assessed_level]}",
                )
            ]
            if status.disagreement:
                items.append(
                    ColumnItem(
                        f"≠ declared L{status.declared_level}",
                        url=url,
                        title=_disagreement_title(status),
                    )
                )
        cells[model.pk] = {"Maturity": items}
    return cells


# --- Managers' home cards (PORTAL_HOME_CARD_PROVIDERS, core/home.py) -------------------------

# The dashboard's level colours (static/maturity/dashboard.css, Okabe-Ito), for the SVG bar.
LEVEL_COLOURS = {
    0: "#6c757d",
    1: "#d55e00",
    2: "#e69f00",
    3: "#56b4e9",
    4: "#0072b2",
    5: "#009e73",
}
HOME_TREND_WEEKS = 4


@dataclass
class BarSegment:
    level: int
    name: str
    count: int
    x: float  # where it starts on a 0-100 scale
    width: float
    colour: str


def home_portfolio() -> dict:
    """The "Portfolio maturity" card: models per level as a bar, the average level and its
    change over the last four weeks; empty when no model has a level."""
    filters = selectors.PortfolioFilters()
    dist = selectors.distribution(filters=filters)
    levels = (0, *LEVELS)
    counts = {lv: dist.level_total(lv) for lv in levels}
    assessed = sum(counts.values())
    if not assessed:
        return {}
    segments, x = [], 0.0
    for lv in levels:
        if lv == 0 and not counts[0]:
            continue
        width = round(100 * counts[lv] / assessed, 2)
        segments.append(BarSegment(lv, LEVEL_NAMES[lv], counts[lv], x, width, LEVEL_COLOURS[lv]))
        x = round(x + width, 2)
    # A few weeks of snapshots are enough for a change over four (the home page stays light);
    # one spare week covers the days before this week's snapshot is taken.
    trend = selectors.trend(filters=filters, weeks=HOME_TREND_WEEKS + 2)
    return {
        "segments": segments,
        "assessed": assessed,
        "unassessed": dist.unassessed,
        "average": round(dist.average, 2),
        "change": trend.change_since(HOME_TREND_WEEKS),
        "weeks": HOME_TREND_WEEKS,
        "disagreements": selectors.disagreement_count(filters=filters),
    }


def home_dropped(limit: int = 8) -> tuple:
    """The "Models whose level dropped" card: the last 30 days' drops, newest first."""
    return tuple(selectors.dropped_models(limit=limit))


def home_cards(user, held_roles: frozenset[str]) -> list[HomeCard]:
    """The managers' "Portfolio maturity" and "Models whose level dropped"."""
    if Role.MANAGER not in held_roles:
        return []
    dashboard = dashboard_url()
    return [
        HomeCard(
            "maturity-portfolio",
            Role.MANAGER,
            "Portfolio maturity",
            "The distribution of models over MLOps maturity levels 1 to 5, and its change "
            "since last month, will appear here once models are assessed.",
            summary=home_portfolio(),
            link=dashboard,
            link_label="Open the maturity dashboard",
            order=10,
        ),
        HomeCard(
            "maturity-dropped",
            Role.MANAGER,
            "Models whose level dropped",
            "Models whose assessed maturity level went down in the last 30 days will be "
            "flagged here. None has dropped.",
            home_dropped(),
            link=dashboard,
            link_label="Open the maturity dashboard",
            order=20,
        ),
    ]
