"""What the approvals pages share: who may read them, how a page answers (htmx or whole),
the mirror's freshness banner, and the approval a URL names.

Pages read the mirror only (never ADO inside a request) and show how fresh it is.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from core.roles import Role
from pipelines.models import AdoProject
from registry.selectors import SourceFreshness

from .. import selectors
from ..models import ApprovalRequest

# Who may read the inbox and an approval (data scientists follow their versions' approvals);
# only approvers decide (``decide`` checks it through the service, so refusals are audited);
# the audit trail is for approvers, managers and admins.
VIEW_ROLES = (Role.APPROVER, Role.MANAGER, Role.ADMIN, Role.DATA_SCIENTIST)
AUDIT_ROLES = (Role.APPROVER, Role.MANAGER, Role.ADMIN)
RETRY_ROLES = (Role.ADMIN,)


def render_page(request, template, context, status=200):
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def is_htmx(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def freshness() -> list[SourceFreshness]:
    """How fresh the approvals mirror of each enabled ADO project is (its last poll)."""
    rows = []
    for project in AdoProject.objects.filter(enabled=True).select_related("approval_sync"):
        state = getattr(project, "approval_sync", None)
        rows.append(
            SourceFreshness(
                project.name,
                False,
                state.last_succeeded_at if state else None,
                state.last_error_at if state else None,
                state.last_error if state else "",
                system="Azure DevOps",
                admin_url=reverse("admin:pipelines_adoproject_change", args=[project.pk]),
            )
        )
    return rows


def approval_or_404(pk: int) -> ApprovalRequest:
    try:
        return selectors.approval_get(pk=pk)
    except ApprovalRequest.DoesNotExist:
        raise Http404("No approval request with this id") from None


def detail_url(approval: ApprovalRequest) -> str:
    return reverse("approvals:detail", kwargs={"pk": approval.pk})
