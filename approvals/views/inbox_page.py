"""The inbox: pending approvals (oldest first) or the decided ones, with filters, sorting
and tab counts; htmx redraws the results alone."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.urls import reverse
from django.views.decorators.http import require_GET

from core.access import access, roles
from core.listing import sort_headers
from core.roles import Role, user_roles

from .. import selectors
from ..forms import AGE_LABELS, DECIDED_STATUSES, ApprovalFilterForm
from .base import AUDIT_ROLES, VIEW_ROLES, freshness, is_htmx, render_page
from .signoff_page import signoffs_marked

APPROVALS_PER_PAGE = 50


def _inbox_sort_headers(request, filters) -> dict:
    keys = ["environment", "model", "waiting"] + (["decided"] if filters.tab == "decided" else [])
    headers = sort_headers(request, filters.effective_sort, keys)
    # "decided" means newest first: its plain key sorts descending.
    decided = headers.get("decided")
    if decided and decided["state"]:
        decided["state"] = "descending" if decided["state"] == "ascending" else "ascending"
    return headers


def _tab_urls(request) -> dict[str, str]:
    urls = {}
    for tab in selectors.TABS:
        params = request.GET.copy()
        for name in ("page", "sort", "status", "overdue", "tab"):
            params.pop(name, None)
        if tab != "pending":
            params["tab"] = tab
        query = params.urlencode()
        urls[tab] = reverse("approvals:inbox") + (f"?{query}" if query else "")
    return urls


@access(roles(*VIEW_ROLES))
@require_GET
def inbox(request):
    form = ApprovalFilterForm(request.GET)
    form.is_valid()  # invalid fields are shown as errors and left out of the filters
    filters = form.filters()
    paginator = Paginator(selectors.approval_list(filters=filters), APPROVALS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    cutoff = selectors.overdue_cutoff()
    approvals = list(page.object_list)
    for approval in approvals:
        approval.overdue = approval.is_open and approval.created_on < cutoff
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "approvals": approvals,
        "counts": selectors.approval_tab_counts(filters=filters),
        "tab_urls": _tab_urls(request),
        "sort_headers": _inbox_sort_headers(request, filters),
        "filtered": any(
            (
                filters.environment,
                filters.model,
                filters.team,
                filters.overdue,
                filters.older_than,
                filters.status,
                filters.q,
            )
        ),
        "freshness": freshness(),
        "can_decide": Role.APPROVER in user_roles(request.user),
        # approvers select pending requests to decide together (views.bulk_page)
        "bulk_select": filters.tab == "pending" and Role.APPROVER in user_roles(request.user),
        "can_audit": bool(user_roles(request.user) & set(AUDIT_ROLES)),
    }
    htmx = getattr(request, "htmx", None)
    if is_htmx(request) and htmx.target == "approval-results":
        return render_page(request, "approvals/_inbox_results.html", context)
    context.update(
        signoffs=signoffs_marked(request, selectors.signoffs_open()),
        models=selectors.model_choices(),
        teams=selectors.team_choices(),
        ages=AGE_LABELS.items(),
        outcomes=[(s.value, s.label) for s in DECIDED_STATUSES],
    )
    return render_page(request, "approvals/inbox.html", context)
