"""The history page of a model: the timeline, "what served at", the history table and its CSV.

Reads the deployment history (selectors_history) and the registry's (registry.selectors);
every role may read it, data scientists may request a rollback to a version that served.
"""

from __future__ import annotations

import datetime as dt

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from core.access import ANY_ROLE, access
from core.csv_export import csv_cell, csv_response
from core.roles import Role, user_has_role
from registry import selectors as registry_selectors
from registry.models import CatalogModel
from registry.models.history import ALIAS_KINDS

from . import selectors_history as history
from .forms_history import RANGE_LABELS, HistoryFilterForm, ServingForm
from .history_chart import chart_build, chart_svg

ROWS_PER_PAGE = 50
ROLLBACK_ROLES = (Role.DATA_SCIENTIST,)
CSV_COLUMNS = [
    "time_utc", "lane", "kind", "event", "version", "run", "approved_by", "window",
    "until_utc",
]  # fmt: skip


def rollback_base(catalog_model: CatalogModel) -> str:
    """The model's rollback request page (a version's link adds ``?version=<pk>``)."""
    return reverse("pipelines:rollback-request", kwargs={"name": catalog_model.name})


def _alias_answers(catalog_model: CatalogModel, at: dt.datetime) -> list:
    """What each alias the syncs ever saw on the model pointed at then (the registry's
    answer: a version, none, or unknown inside a window between two syncs)."""
    aliases = (
        registry_selectors.registry_events(catalog_model, kinds=ALIAS_KINDS)
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()
    )
    return [registry_selectors.alias_at(catalog_model, alias, at) for alias in aliases]


def _serving(request, catalog_model: CatalogModel) -> dict:
    if "at" not in request.GET:
        return {"serving_form": ServingForm(), "asked": False}
    # The page's filter bar has its own "environment": the question's is "serve_env".
    form = ServingForm(
        {"environment": request.GET.get("serve_env", "PROD"), "at": request.GET.get("at", "")}
    )
    context = {"serving_form": form, "asked": True}
    if form.is_valid():
        at = form.cleaned_data["at"]
        context.update(
            serving_at=at,
            serving_environment=form.cleaned_data["environment"],
            serving=history.serving_at(catalog_model, form.cleaned_data["environment"], at),
            aliases_at=_alias_answers(catalog_model, at),
        )
    return context


def _with_rollback(rows: list, request, catalog_model: CatalogModel) -> None:
    base = rollback_base(catalog_model) if user_has_role(request.user, *ROLLBACK_ROLES) else ""
    for row in rows:
        row.rollback_url = (
            f"{base}?version={row.rollback_version_pk}" if base and row.rollback_version_pk else ""
        )


@access(ANY_ROLE)
@require_GET
def model_history(request, name):
    catalog_model = get_object_or_404(CatalogModel, name=name)
    filters = HistoryFilterForm(request.GET)
    filters.is_valid()  # what is not understood is shown and left out
    now = timezone.now()
    since = now - dt.timedelta(days=filters.days) if filters.days is not None else None
    placed = history.placed_records(list(history.deployment_records(catalog_model)), since)
    lanes = history.timeline_lanes(catalog_model, placed, since=since)
    chart = chart_build(lanes, now, filters.days)
    rows = history.history_rows(
        catalog_model,
        placed,
        environment=filters.value("environment"),
        kind=filters.value("kind"),
    )
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    page_rows = list(page.object_list)
    _with_rollback(page_rows, request, catalog_model)
    context = {
        "catalog_model": catalog_model,
        "filters": filters,
        "range_key": filters.range_key,
        "ranges": RANGE_LABELS.items(),
        "chart": chart,
        "timeline_svg": chart_svg(
            chart,
            labelledby="timeline-heading timeline-desc",
            description=f"What served in each lane from {chart.start:%Y-%m-%d %H:%M} to "
            f"{chart.end:%Y-%m-%d %H:%M} UTC; the history table below lists the same events.",
        ),
        "lanes": lanes,
        "page": page,
        "rows": page_rows,
        "kinds": history.HISTORY_KINDS.items(),
        "selected_environment": filters.value("environment"),
        "selected_kind": filters.value("kind"),
        "filtered": bool(filters.value("environment") or filters.value("kind")),
        **_serving(request, catalog_model),
    }
    status = 400 if context["serving_form"].errors else 200
    return render(request, "pipelines/history.html", context, status=status)


def _stamp(value) -> str:
    return value.astimezone(dt.UTC).isoformat() if value else ""


@access(ANY_ROLE)
@require_GET
def model_history_csv(request, name):
    """Every row of the history table under the page's filters (not just one page)."""
    catalog_model = get_object_or_404(CatalogModel, name=name)
    filters = HistoryFilterForm(request.GET)
    filters.is_valid()
    placed = history.placed_records(list(history.deployment_records(catalog_model)))
    rows = history.history_rows(
        catalog_model,
        placed,
        environment=filters.value("environment"),
        kind=filters.value("kind"),
    )
    return csv_response(
        f"history-{catalog_model.name}",
        CSV_COLUMNS,
        (
            [
                _stamp(row.time),
                csv_cell(row.lane),
                row.kind,
                csv_cell(row.event),
                csv_cell(row.version),
                csv_cell(row.run_name),
                csv_cell("; ".join(row.approved_by)),
                csv_cell(row.window),
                _stamp(row.until),
            ]
            for row in rows
        ),
    )
