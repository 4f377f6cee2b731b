"""HTML views; each declares its access rule with core.access.

The dashboard is for managers and readable by every role. Its filters live in the URL (a plain
GET form), so a filtered view can be shared, exported as CSV and works without JavaScript; the
charts are drawn by a static script from the numbers the page also shows as tables.
"""

from __future__ import annotations

from datetime import UTC
from urllib.parse import urlencode

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from core.access import access, roles
from core.csv_export import csv_cell, csv_response
from core.listing import sort_headers
from core.roles import Role

from . import selectors
from .models import LEVEL_NAMES, LEVELS, ModelMaturity

# Managers are the audience; every role may read the portfolio and the catalogue.
VIEW_ROLES = (Role.MANAGER, Role.APPROVER, Role.DATA_SCIENTIST, Role.ADMIN)

MODELS_PER_PAGE = 50
TREND_WEEKS = 52
CHANGE_WEEKS = 4
SORT_KEYS = ("name", "team", "level", "assessed")

# How the portal's levels relate to the public models (reference §D.1), for the help text.
LEVEL_ANCHORS = {
    0: "Microsoft level 0 (no MLOps)",
    1: "Microsoft level 1",
    2: "Microsoft level 2",
    3: "Microsoft level 3",
    4: "Not a Microsoft level: Google's continuous training, started by new data",
    5: "Microsoft level 4 (full MLOps, automated operations)",
}
LEVEL_CHOICES = [(str(level), f"L{level} {LEVEL_NAMES[level]}") for level in (0, *LEVELS)] + [
    (selectors.UNASSESSED, "Not assessed yet")
]

CSV_COLUMNS = (
    "model",
    "team",
    "kind",
    "serving",
    "level",
    "assessed_level",
    "unconfirmed_up_to",
    "assessed_on_declared_evidence",
    "declared_level",
    "disagreement",
    "declaration_reason",
    "next_level",
    "next_criterion",
    "next_criterion_title",
    "next_result",
    "next_fix",
    "checked_at",
)


class DashboardFilterForm(forms.Form):
    """The dashboard's filters; a value it does not understand is shown and left out."""

    team = forms.CharField(required=False, max_length=100)
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *selectors.KIND_CHOICES])
    serving = forms.ChoiceField(
        required=False, choices=[("", "Any serving"), *selectors.SERVING_CHOICES]
    )
    level = forms.ChoiceField(required=False, choices=[("", "Any level"), *LEVEL_CHOICES])
    disagreement = forms.BooleanField(required=False, label="Disagreement only")
    q = forms.CharField(required=False, max_length=200, label="Search")
    sort = forms.ChoiceField(required=False, choices=[(key, key) for key in selectors.SORTS])
    by = forms.ChoiceField(
        required=False, label="Stack by", choices=[(g, g) for g in selectors.GROUPINGS]
    )

    def _value(self, name: str):
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        return self.cleaned_data.get(name) or ""

    def filters(self) -> selectors.PortfolioFilters:
        return selectors.PortfolioFilters(
            team=self._value("team").strip(),
            kind=self._value("kind"),
            serving=self._value("serving"),
            level=self._value("level"),
            disagreement=bool(self._value("disagreement")),
            q=self._value("q").strip(),
            sort=self._value("sort"),
        )

    @property
    def grouping(self) -> str:
        return self._value("by") or "team"


def _filter_form(request) -> DashboardFilterForm:
    form = DashboardFilterForm(request.GET)
    form.is_valid()  # invalid fields are shown as errors and left out of the filters
    return form


def _with_query(url: str, params: dict[str, str]) -> str:
    return f"{url}?{urlencode(params)}" if params else url


def _signed(value: float | None) -> str:
    if value is None:
        return ""
    return "±0" if value == 0 else f"{value:+g}".replace("-", "\u2212")


def _summary(filters: selectors.PortfolioFilters, distribution, trend, base: str) -> dict:
    """The cards above the charts, from the numbers the charts show (one extra count)."""
    average = distribution.average
    change = trend.change_since(CHANGE_WEEKS)
    by = {"by": distribution.by} if distribution.by != "team" else {}
    return {
        "assessed": distribution.total,
        "average": None if average is None else round(average, 1),
        "change": change,
        "change_text": _signed(change),
        "disagreement_url": _with_query(base, {**filters.as_query(), **by, "disagreement": "1"}),
        "change_weeks": CHANGE_WEEKS,
        "disagreements": selectors.disagreement_count(filters=filters),
        "unassessed": distribution.unassessed,
    }


def _rows(statuses, catalogue) -> list[dict]:
    rows = []
    for status in statuses:
        model = status.catalog_model
        declared = status.declared_record if status.declared_level is not None else None
        rows.append(
            {
                "status": status,
                "model": model,
                "url": reverse("registry:model-detail", kwargs={"name": model.name}) + "#maturity",
                "team": model.effective_team,
                "kind": model.effective_kind,
                "serving": model.effective_serving,
                "declared_reason": declared.reason if declared else "",
                "declared_by": declared.made_by if declared else "",
                "level_name": LEVEL_NAMES.get(status.level, ""),
                "next": selectors.next_step(status, catalogue),
            }
        )
    return rows


def _level_help() -> list[dict]:
    return [
        {"level": level, "name": LEVEL_NAMES[level], "anchor": LEVEL_ANCHORS[level]}
        for level in (0, *LEVELS)
    ]


@access(roles(*VIEW_ROLES))
@require_GET
def dashboard(request):
    form = _filter_form(request)
    filters = form.filters()
    by = form.grouping
    distribution = selectors.distribution(filters=filters, by=by)
    trend = selectors.trend(filters=filters, weeks=TREND_WEEKS)
    paginator = Paginator(selectors.portfolio_rows(filters=filters), MODELS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    query = filters.as_query()
    base = reverse("maturity:dashboard")
    by_urls = {
        grouping: _with_query(base, {**query, **({"by": grouping} if grouping != "team" else {})})
        for grouping in selectors.GROUPINGS
    }
    filtered = any(v for k, v in query.items() if k != "sort")
    context = {
        "form": form,
        "filters": filters,
        "by": by,
        "by_urls": by_urls,
        "distribution": distribution,
        "distribution_chart": {**distribution.chart(), "by": by},
        "group_totals": [distribution.group_total(g) for g in distribution.groups],
        "trend": trend,
        "trend_chart": trend.chart(),
        "trend_levels": [f"L{level}" for level in (0, *LEVELS)],
        "summary": _summary(filters, distribution, trend, base),
        "page": page,
        "rows": _rows(page.object_list, selectors.criteria_by_code()),
        "sort_headers": sort_headers(request, filters.effective_sort, SORT_KEYS),
        "filtered": filtered,
        "anything_assessed": ModelMaturity.objects.filter(level__isnull=False).exists(),
        "csv_url": _with_query(reverse("maturity:dashboard-csv"), query),
        "teams": selectors.team_choices(),
        "kinds": selectors.KIND_CHOICES,
        "servings": selectors.SERVING_CHOICES,
        "levels": LEVEL_CHOICES,
        "level_help": _level_help(),
        "trend_weeks": TREND_WEEKS,
    }
    return render(request, "maturity/dashboard.html", context)


# --- CSV ---------------------------------------------------------------------------------------


def _csv_line(status, catalogue) -> list:
    model = status.catalog_model
    declared = status.declared_record if status.declared_level is not None else None
    step = selectors.next_step(status, catalogue)

    def level(value):
        return "" if value is None else value

    return [
        csv_cell(model.name),
        csv_cell(model.effective_team),
        csv_cell(model.effective_kind),
        csv_cell(model.effective_serving),
        level(status.level),
        level(status.assessed_level),
        level(status.unmeasured_level),
        "yes" if status.declared_evidence else "no",
        level(status.declared_level),
        "yes" if status.disagreement else "no",
        csv_cell(declared.reason if declared else ""),
        step.level if step else "",
        csv_cell(step.code if step else ""),
        csv_cell(step.title if step else ""),
        step.result if step else "",
        csv_cell(step.fix if step else ""),
        status.checked_at.astimezone(UTC).isoformat() if status.checked_at else "",
    ]


@access(roles(*VIEW_ROLES))
@require_GET
def dashboard_csv(request):
    """Every model matching the dashboard's filters (not just one page), streamed."""
    filters = _filter_form(request).filters()
    statuses = selectors.portfolio_rows(filters=filters)
    catalogue = selectors.criteria_by_code()
    return csv_response(
        "maturity",
        CSV_COLUMNS,
        (_csv_line(status, catalogue) for status in statuses.iterator(chunk_size=2000)),
    )


# --- Criteria catalogue ------------------------------------------------------------------------


@access(roles(*VIEW_ROLES))
@require_GET
def criteria(request):
    by_level: dict[int, list] = {level: [] for level in LEVELS}
    for criterion in selectors.criteria_list():
        by_level.setdefault(criterion.level, []).append(criterion)
    levels = [
        {
            "level": level,
            "name": LEVEL_NAMES[level],
            "anchor": LEVEL_ANCHORS[level],
            "criteria": by_level[level],
        }
        for level in sorted(by_level)
    ]
    return render(request, "maturity/criteria.html", {"levels": levels})
