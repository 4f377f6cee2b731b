"""The approvals audit trail: filtered, sorted, paginated, and as CSV (every row, streamed)."""

from __future__ import annotations

from datetime import UTC

from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.views.decorators.http import require_GET, require_http_methods

from core.access import access, roles
from core.csv_export import csv_cell, csv_response
from core.listing import sort_headers

from .. import selectors
from ..forms import AuditFilterForm
from ..models import AuditAction
from .base import AUDIT_ROLES, freshness, is_htmx, render_page

AUDIT_PER_PAGE = 50
AUDIT_SORTS = {
    "-at": ("-at", "-pk"),
    "at": ("at", "pk"),
    "action": ("action", "-at", "-pk"),
    "-action": ("-action", "-at", "-pk"),
}
AUDIT_CSV_COLUMNS = (
    "at",
    "action",
    "actor",
    "environment",
    "model",
    "approval_id",
    "message",
    "request_id",
)


def _audit_rows(request):
    form = AuditFilterForm(request.GET)
    form.is_valid()
    qs = selectors.audit_list(filters=form.filters()).order_by(*AUDIT_SORTS[form.sort_key])
    return form, qs


def _audit_csv(qs) -> StreamingHttpResponse:
    return csv_response(
        "approvals-audit",
        AUDIT_CSV_COLUMNS,
        (
            [
                event.at.astimezone(UTC).isoformat(),
                event.action,
                csv_cell(event.actor_name),
                event.environment,
                csv_cell(event.model_name),
                event.approval_id or "",
                csv_cell(event.message),
                csv_cell(event.request_id),
            ]
            for event in qs.iterator(chunk_size=2000)
        ),
    )


@access(roles(*AUDIT_ROLES))
@require_http_methods(["GET", "HEAD"])
def audit(request):
    form, qs = _audit_rows(request)
    if request.GET.get("format") == "csv":
        return _audit_csv(qs)
    paginator = Paginator(qs, AUDIT_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    filters = form.filters()
    context = {
        "form": form,
        "filters": filters,
        "sort": form.sort_key,
        "page": page,
        "events": list(page.object_list),
        "sort_headers": sort_headers(request, form.sort_key, ["at", "action"], frozenset({"at"})),
        "filtered": any(
            (
                filters.action,
                filters.actor,
                filters.environment,
                filters.model,
                filters.approval,
                filters.since,
                filters.until,
            )
        ),
        "freshness": freshness(),
    }
    htmx = getattr(request, "htmx", None)
    if is_htmx(request) and htmx.target == "audit-results":
        return render_page(request, "approvals/_audit_results.html", context)
    context.update(actions=AuditAction.choices, models=selectors.model_choices())
    return render_page(request, "approvals/audit.html", context)


@access(roles(*AUDIT_ROLES))
@require_GET
def audit_csv(request):
    """The filtered audit trail as CSV (every row, streamed)."""
    _, qs = _audit_rows(request)
    return _audit_csv(qs)
