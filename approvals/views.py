"""HTML views; each declares its access rule with core.access.

Pages read the mirror only (never ADO inside a request) and show how fresh it is. A decision
takes two POSTs: the first asks "are you sure", the second records it through
``services.approval_decide``; its delivery to ADO happens in a worker, and the decision box
polls until it is done. Everything works without JavaScript too (plain POST + redirect).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from datetime import UTC
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.access import SIGNED_IN, access, roles
from core.csv_export import csv_cell, csv_response
from core.listing import sort_headers
from core.roles import Role, user_roles
from core.sessions import session_authenticated_at
from pipelines.models import AdoProject
from registry.selectors import SourceFreshness

from . import selectors, services
from .forms import AGE_LABELS, DECIDED_STATUSES, ApprovalFilterForm, AuditFilterForm, DecisionForm
from .models import ApprovalRequest, AuditAction, DecisionStatus, OutboxMessage, OutboxState

# Who may read the inbox and an approval (data scientists follow their versions' approvals);
# only approvers decide (``decide`` checks it through the service, so refusals are audited);
# the audit trail is for approvers, managers and admins.
VIEW_ROLES = (Role.APPROVER, Role.MANAGER, Role.ADMIN, Role.DATA_SCIENTIST)
AUDIT_ROLES = (Role.APPROVER, Role.MANAGER, Role.ADMIN)
RETRY_ROLES = (Role.ADMIN,)

APPROVALS_PER_PAGE = 50
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


def _render(request, template, context, status=200):
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _htmx(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request


def _freshness() -> list[SourceFreshness]:
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


def _approval_or_404(pk: int) -> ApprovalRequest:
    try:
        return selectors.approval_get(pk=pk)
    except ApprovalRequest.DoesNotExist:
        raise Http404("No approval request with this id") from None


def _detail_url(approval: ApprovalRequest) -> str:
    return reverse("approvals:detail", kwargs={"pk": approval.pk})


# --- Inbox -------------------------------------------------------------------------------------


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
        "freshness": _freshness(),
        "can_decide": Role.APPROVER in user_roles(request.user),
        "can_audit": bool(user_roles(request.user) & set(AUDIT_ROLES)),
    }
    htmx = getattr(request, "htmx", None)
    if _htmx(request) and htmx.target == "approval-results":
        return _render(request, "approvals/_inbox_results.html", context)
    context.update(
        models=selectors.model_choices(),
        teams=selectors.team_choices(),
        ages=AGE_LABELS.items(),
        outcomes=[(s.value, s.label) for s in DECIDED_STATUSES],
    )
    return _render(request, "approvals/inbox.html", context)


# --- Detail and the decision box ---------------------------------------------------------------


@dataclass
class DecisionBox:
    """What the decision box shows to this user, at this moment."""

    approval: ApprovalRequest
    is_approver: bool
    rules: list = field(default_factory=list)
    my_decision: object = None
    form: DecisionForm | None = None
    confirming: bool = False
    error: str = ""
    notice: str = ""
    reauth_url: str = ""
    draft_restored: bool = False  # the choice and comment kept through a re-sign-in
    sent_as: object = None  # selectors.DecisionSender: whom ADO records the decision as

    @property
    def blocking(self) -> list:
        """Rules that forbid deciding (a stale sign-in only asks to confirm who you are)."""
        return [r for r in self.rules if not r.ok and r.code != "recent_sign_in"]

    @property
    def needs_reauth(self) -> bool:
        return any(r.code == "recent_sign_in" and not r.ok for r in self.rules)

    @property
    def can_decide(self) -> bool:
        return (
            self.is_approver
            and self.approval.is_open
            and self.my_decision is None
            and bool(self.rules)
            and not self.blocking
        )

    @property
    def sends_as_portal(self) -> bool:
        return self.sent_as is not None and not self.sent_as.own_identity

    @property
    def portal_name(self) -> str:
        return self.sent_as.name if self.sends_as_portal else ""

    @property
    def own_name(self) -> str:
        return self.sent_as.name if self.sent_as is not None and self.sent_as.own_identity else ""

    @property
    def announce(self) -> str:
        """What the page's live region reads out once htmx has redrawn the box."""
        if self.error:
            return self.error
        form = self.form
        if form is not None and form.is_bound and form.errors:
            return " ".join(str(e) for errors in form.errors.values() for e in errors)
        if self.notice:
            return self.notice
        if self.confirming and form is not None:
            verb = "approve" if form.cleaned_data["status"] == DecisionStatus.APPROVED else "reject"
            subject = " ".join(filter(None, (_subject(self.approval), self.approval.version_label)))
            kept = "Your choice and comment were kept. " if self.draft_restored else ""
            return f"{kept}Confirm to {verb} {subject} in {self.approval.environment}, or cancel."
        outbox = getattr(self.my_decision, "outbox", None)
        if outbox is not None:
            return f"Azure DevOps delivery: {outbox.get_state_display()}."
        return ""

    @property
    def polling(self) -> bool:
        outbox = getattr(self.my_decision, "outbox", None)
        return outbox is not None and outbox.state == OutboxState.QUEUED


def _subject(approval: ApprovalRequest) -> str:
    return approval.catalog_model.name if approval.catalog_model_id else approval.pipeline_name


def _reauth_url(approval: ApprovalRequest) -> str:
    return reverse("reauthenticate") + "?" + urlencode({"next": _detail_url(approval)})


def _decision_box(request, approval: ApprovalRequest, **kwargs) -> DecisionBox:
    is_approver = Role.APPROVER in user_roles(request.user)
    rules = []
    if is_approver:
        rules = services.decision_rules(
            approval=approval,
            user=request.user,
            authenticated_at=session_authenticated_at(request),
        )
    mine = (
        approval.decisions.filter(user=request.user).select_related("outbox").first()
        if request.user.is_authenticated
        else None
    )
    return DecisionBox(
        approval=approval,
        is_approver=is_approver,
        rules=rules,
        my_decision=mine,
        reauth_url=_reauth_url(approval),
        sent_as=selectors.decision_sender(request.user, approval) if is_approver else None,
        **kwargs,
    )


# A PROD decision asked for a fresh sign-in: its choice and comment wait in the session (never
# in a URL) and fill the decision box again when the approver comes back.
DRAFT_SESSION_KEY = "approvals_decision_draft"
DRAFT_MAX_AGE = dt.timedelta(hours=1)


def _draft_keep(request, approval: ApprovalRequest, form: DecisionForm) -> None:
    if not form.is_valid():
        return
    request.session[DRAFT_SESSION_KEY] = {
        "approval": approval.pk,
        "status": form.cleaned_data["status"],
        "comment": form.cleaned_data["comment"],
        "saved_at": timezone.now().isoformat(),
    }


def _draft_take(request, approval: ApprovalRequest) -> dict:
    """The box's arguments that restore this approval's kept draft (used once), or none."""
    draft = request.session.get(DRAFT_SESSION_KEY)
    if not isinstance(draft, dict) or draft.get("approval") != approval.pk:
        return {}
    del request.session[DRAFT_SESSION_KEY]
    saved_at = parse_datetime(str(draft.get("saved_at") or ""))
    if saved_at is None or timezone.now() - saved_at > DRAFT_MAX_AGE or not approval.is_open:
        return {}
    form = DecisionForm({"status": draft.get("status"), "comment": draft.get("comment") or ""})
    if not form.is_valid():
        return {}
    fresh = services.decision_rules(
        approval=approval, user=request.user, authenticated_at=session_authenticated_at(request)
    )
    if all(rule.ok for rule in fresh):
        return {"form": form, "confirming": True, "draft_restored": True}
    return {"form": form, "draft_restored": True}


def _header_context(approval: ApprovalRequest) -> dict:
    now = timezone.now()
    expires_at = approval.expires_at
    warning = settings.APPROVALS_EXPIRY_WARNING_HOURS * 3600
    return {
        "overdue": selectors.is_overdue(approval),
        "expired": bool(approval.is_open and expires_at and expires_at <= now),
        "expiring_soon": bool(
            approval.is_open
            and expires_at
            and now < expires_at
            and (expires_at - now).total_seconds() < warning
        ),
    }


def _detail_context(request, approval: ApprovalRequest, box: DecisionBox) -> dict:
    held = user_roles(request.user)
    return {
        "approval": approval,
        "box": box,
        "evidence": selectors.approval_evidence(approval),
        "stages": selectors.approval_stages(approval),
        "decisions": selectors.approval_decisions(approval),
        "audit": selectors.approval_audit(approval),
        "is_admin": Role.ADMIN in held,
        "can_audit": bool(held & set(AUDIT_ROLES)),
        "freshness": _freshness(),
        **_header_context(approval),
    }


def _box_response(request, approval: ApprovalRequest, status: int = 200, **box_kwargs):
    """The decision box alone (htmx), or the whole detail page around it."""
    box = _decision_box(request, approval, **box_kwargs)
    if _htmx(request):
        context = {
            "approval": approval,
            "box": box,
            "decisions": selectors.approval_decisions(approval),
            "is_admin": Role.ADMIN in user_roles(request.user),
            **_header_context(approval),
        }
        return _render(request, "approvals/_decision_box_swap.html", context, status)
    return _render(
        request, "approvals/detail.html", _detail_context(request, approval, box), status
    )


@access(roles(*VIEW_ROLES))
@require_GET
def detail(request, pk):
    approval = _approval_or_404(pk)
    box = _decision_box(request, approval, **_draft_take(request, approval))
    return _render(request, "approvals/detail.html", _detail_context(request, approval, box))


@access(roles(*VIEW_ROLES))
@require_GET
def decision_box(request, pk):
    """The decision box alone: htmx polls it while a decision is on its way to ADO."""
    approval = _approval_or_404(pk)
    if not _htmx(request):
        return redirect(_detail_url(approval))
    return _box_response(request, approval)


def _reauth_redirect(request, approval: ApprovalRequest):
    messages.info(
        request,
        "A PROD decision needs a recent sign-in: sign in again, then decide.",
    )
    url = _reauth_url(approval)
    if _htmx(request):
        response = HttpResponse(status=200)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


# Signed-in users reach the view, which refuses other roles itself: the refusal is then
# recorded in the audit trail exactly as the API's is (services.decision_role_check).
@access(SIGNED_IN)
@require_POST
def decide(request, pk):
    """First POST: check and ask to confirm. POST with ``confirm``: record the decision.
    Both ask the same service (a dry run first), which audits every refusal the same way for
    the page and the API."""
    approval = _approval_or_404(pk)
    status = request.POST.get("status", "")
    try:
        services.decision_role_check(
            approval_id=approval.pk, user=request.user, status=status, via="web"
        )
    except services.DecisionRefused as refusal:
        if not user_roles(request.user) & set(VIEW_ROLES):  # may not read the approval either
            return render(request, "403.html", {"message": refusal.message}, status=403)
        return _box_response(request, approval, refusal.http_status, error=refusal.message)
    form = DecisionForm(request.POST)
    if request.POST.get("edit"):  # "Change" on the confirmation: back to the form, comment kept
        return _box_response(request, approval, form=DecisionForm(initial=request.POST.dict()))
    confirmed = form.is_valid() and form.confirmed
    comment = request.POST.get("comment", "")
    try:
        services.approval_decide(
            approval_id=approval.pk,
            user=request.user,
            status=status,
            comment=comment,
            authenticated_at=session_authenticated_at(request),
            via="web",
            dry_run=not confirmed,
        )
    except services.ReauthenticationRequired:
        _draft_keep(request, approval, form)
        return _reauth_redirect(request, approval)
    except services.DecisionRefused as refusal:
        if not form.is_valid():  # the form shows the same refusal beside its field
            return _box_response(request, approval, refusal.http_status, form=form)
        return _box_response(
            request, approval, refusal.http_status, form=form, error=refusal.message
        )
    except ApprovalRequest.DoesNotExist:
        raise Http404("No approval request with this id") from None
    if not form.is_valid():  # the service took it, the form did not: say so, record nothing
        return _box_response(request, approval, 400, form=form)
    if not confirmed:
        return _box_response(request, approval, form=form, confirming=True)
    verb = "Approved" if status == DecisionStatus.APPROVED else "Rejected"
    what = " ".join(
        part
        for part in (
            _subject(approval),
            approval.version_label,
            f"in {approval.environment}" if approval.environment else "",
        )
        if part
    )
    notice = f"{verb}: {what}. The decision is on its way to Azure DevOps."
    approval = _approval_or_404(pk)  # its status may have closed
    if _htmx(request):
        return _box_response(request, approval, notice=notice)
    messages.success(request, notice)
    return redirect(_detail_url(approval))


@access(roles(*RETRY_ROLES))
@require_POST
def outbox_retry(request, pk):
    """An admin sends a failed delivery back to the queue."""
    message = OutboxMessage.objects.filter(pk=pk).select_related("approval").first()
    if message is None:
        raise Http404("No outbox message with this id")
    next_url = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = _detail_url(message.approval)
    try:
        services.outbox_retry(message_id=message.pk, user=request.user)
    except services.DecisionRefused as refusal:
        approval = _approval_or_404(message.approval_id)
        box = _decision_box(request, approval)
        context = _detail_context(request, approval, box)
        context["page_error"] = refusal.message
        return _render(request, "approvals/detail.html", context, refusal.http_status)
    messages.success(
        request, f"Delivery #{message.pk} queued again: a worker will send it to Azure DevOps."
    )
    return redirect(next_url)


# --- Audit trail -------------------------------------------------------------------------------


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
        "freshness": _freshness(),
    }
    htmx = getattr(request, "htmx", None)
    if _htmx(request) and htmx.target == "audit-results":
        return _render(request, "approvals/_audit_results.html", context)
    context.update(actions=AuditAction.choices, models=selectors.model_choices())
    return _render(request, "approvals/audit.html", context)


@access(roles(*AUDIT_ROLES))
@require_GET
def audit_csv(request):
    """The filtered audit trail as CSV (every row, streamed)."""
    _, qs = _audit_rows(request)
    return _audit_csv(qs)
