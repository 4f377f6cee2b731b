"""Template helpers of the approvals pages: environment, decision and delivery badges."""

from __future__ import annotations

from urllib.parse import urlencode

from django import template
from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from core.identity import entra_sign_in_enabled
from core.templatetags.portal_ui import status_badge

from .. import services
from ..models import ApprovalStatus, OutboxState

register = template.Library()

# (badge colour key of portal_ui.STATUS_COLOURS, short label) per delivery state.
DELIVERY_BADGES = {
    OutboxState.QUEUED: ("queued", "Queued"),
    OutboxState.DELIVERED: ("delivered", "Delivered"),
    OutboxState.FAILED: ("failed", "Failed"),
    OutboxState.ALREADY_DECIDED: ("skipped", "Already decided in ADO"),
    OutboxState.NEEDS_SIGNIN: ("waiting", "Needs your sign-in"),
    OutboxState.HELD: ("waiting", "Held until a second approver"),
    OutboxState.WITHDRAWN: ("canceled", "Not sent (rejected)"),
}


@register.simple_tag
def environment_badge(environment: str):
    """QA blue, PROD red (as on the pipelines pages); unknown grey."""
    colour = {"QA": "text-bg-primary", "PROD": "text-bg-danger"}.get(
        environment or "", "text-bg-secondary"
    )
    return format_html(
        '<span class="badge {} environment-badge">{}</span>', colour, environment or "?"
    )


@register.simple_tag
def approval_badge(approval):
    status = approval.status
    label = ApprovalStatus(status).label if status in ApprovalStatus.values else status
    return status_badge(status, label.lower())


@register.simple_tag
def delivery_badge(outbox):
    """The delivery state of a decision's outbox message ("—" when it has none)."""
    if outbox is None:
        return format_html('<span class="text-body-secondary">{}</span>', "—")
    key, label = DELIVERY_BADGES.get(outbox.state, ("unknown", outbox.state))
    if outbox.state == OutboxState.QUEUED and outbox.attempts and outbox.last_error:
        label = "Retrying"
    return status_badge(key, label)


VERDICTS = {
    "better": ("succeeded", "better"),
    "worse": ("failed", "worse"),
    "same": ("skipped", "same"),
}


@register.simple_tag
def verdict_badge(verdict: str):
    """Better green, worse red, same grey; nothing to compare: a dash."""
    if verdict not in VERDICTS:
        return format_html(
            '<span class="text-body-secondary" title="{}">—</span>', "No value to compare"
        )
    key, label = VERDICTS[verdict]
    return status_badge(key, label)


@register.filter
def approval_subject(approval) -> str:
    """What the approval deploys: the catalog model's name, else the pipeline's."""
    if approval.catalog_model_id:
        return approval.catalog_model.name
    return approval.pipeline_name or "(unknown pipeline)"


@register.simple_tag
def sign_in_again_url(approval) -> str:
    """Where "Sign in again" goes for a decision waiting for its approver's sign-in: the
    Microsoft sign-in, coming back to this approval (the sign-in page when Entra is off)."""
    back = reverse("approvals:detail", kwargs={"pk": approval.pk})
    try:
        start = reverse("entra-sign-in") if entra_sign_in_enabled() else ""
    except NoReverseMatch:
        start = ""
    return f"{start or resolve_url(settings.LOGIN_URL)}?{urlencode({'next': back})}"


@register.filter
def sent_as_portal(decision) -> bool:
    """Whether this decision reaches ADO under the portal's own identity (then ADO counts the
    portal once per approval) rather than the approver's own."""
    return services.decision_sent_as_portal(decision)
