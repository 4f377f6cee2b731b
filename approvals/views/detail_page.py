"""An approval's page and its decision box. A decision takes two POSTs: the first asks "are
you sure", the second records it through ``services.approval_decide``; its delivery to ADO
happens in a worker, and the decision box polls until it is done. Everything works without
JavaScript too (plain POST + redirect).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from core.access import SIGNED_IN, access, roles
from core.roles import Role, user_roles
from core.sessions import session_authenticated_at

from .. import selectors, services
from ..forms import DecisionForm
from ..models import ApprovalRequest, DecisionStatus, OutboxMessage, OutboxState
from ..sections import approval_detail_sections
from .base import (
    AUDIT_ROLES,
    RETRY_ROLES,
    VIEW_ROLES,
    approval_or_404,
    detail_url,
    freshness,
    is_htmx,
    render_page,
)
from .signoff_page import signoffs_marked


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
    policy: object = None  # services.EffectivePolicy of the approval's model and environment

    @property
    def blocking(self) -> list:
        """Rules that forbid deciding (a stale sign-in only asks to confirm who you are; a
        promotion gate only forbids approving)."""
        return [
            r for r in self.rules if not r.ok and r.code != "recent_sign_in" and not r.approve_only
        ]

    @property
    def gated(self) -> list:
        """Promotion gates that refuse an approval now: the box offers only a rejection."""
        return [r for r in self.rules if not r.ok and r.approve_only]

    @property
    def warnings(self) -> list:
        """Rules met, but worth saying (a soak time in warn mode)."""
        return [r for r in self.rules if r.ok and r.warning]

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


def _decision_box(request, approval: ApprovalRequest, **kwargs) -> DecisionBox:
    is_approver = Role.APPROVER in user_roles(request.user)
    rules, policy = [], None
    if is_approver:
        rules = services.decision_rules(
            approval=approval,
            user=request.user,
            authenticated_at=session_authenticated_at(request),
        )
        if approval.environment:
            policy = services.approval_policy_for(
                catalog_model=approval.catalog_model, environment=approval.environment
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
        reauth_url=services.reauthenticate_url(approval.pk),
        sent_as=selectors.decision_sender(request.user, approval) if is_approver else None,
        policy=policy,
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
        "freshness": freshness(),
        "extra_sections": approval_detail_sections(request, approval),
        "signoffs": signoffs_marked(request, selectors.signoffs_for_approval(approval)),
        **_header_context(approval),
    }


def _box_response(request, approval: ApprovalRequest, status: int = 200, **box_kwargs):
    """The decision box alone (htmx), or the whole detail page around it."""
    box = _decision_box(request, approval, **box_kwargs)
    if is_htmx(request):
        context = {
            "approval": approval,
            "box": box,
            "decisions": selectors.approval_decisions(approval),
            "is_admin": Role.ADMIN in user_roles(request.user),
            **_header_context(approval),
        }
        return render_page(request, "approvals/_decision_box_swap.html", context, status)
    return render_page(
        request, "approvals/detail.html", _detail_context(request, approval, box), status
    )


@access(roles(*VIEW_ROLES))
@require_GET
def detail(request, pk):
    approval = approval_or_404(pk)
    box = _decision_box(request, approval, **_draft_take(request, approval))
    return render_page(request, "approvals/detail.html", _detail_context(request, approval, box))


@access(roles(*VIEW_ROLES))
@require_GET
def decision_box(request, pk):
    """The decision box alone: htmx polls it while a decision is on its way to ADO."""
    approval = approval_or_404(pk)
    if not is_htmx(request):
        return redirect(detail_url(approval))
    return _box_response(request, approval)


def _reauth_redirect(request, approval: ApprovalRequest):
    messages.info(
        request,
        "A PROD decision needs a recent sign-in: sign in again, then decide.",
    )
    url = services.reauthenticate_url(approval.pk)
    if is_htmx(request):
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
    approval = approval_or_404(pk)
    status = request.POST.get("status", "")
    try:
        services.decision_role_check(
            approval_id=approval.pk, user=request.user, status=status, via="web"
        )
    except services.DecisionRefused as refusal:
        if not user_roles(request.user) & set(VIEW_ROLES):
            # They may not read the approval either: the 403 page (core.errors' middleware).
            raise
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
    approval = approval_or_404(pk)  # its status may have closed
    if is_htmx(request):
        return _box_response(request, approval, notice=notice)
    messages.success(request, notice)
    return redirect(detail_url(approval))


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
        next_url = detail_url(message.approval)
    try:
        services.outbox_retry(message_id=message.pk, user=request.user)
    except services.DecisionRefused as refusal:
        approval = approval_or_404(message.approval_id)
        box = _decision_box(request, approval)
        context = _detail_context(request, approval, box)
        context["page_error"] = refusal.message
        return render_page(request, "approvals/detail.html", context, refusal.http_status)
    messages.success(
        request, f"Delivery #{message.pk} queued again: a worker will send it to Azure DevOps."
    )
    return redirect(next_url)
