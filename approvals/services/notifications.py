"""Notices about approvals: by e-mail to the approvers ADO names (or the portal's approvers),
and to a Teams channel when APPROVALS_TEAMS_WEBHOOK_URL is set; each kind once per approval
and channel (a unique row in ``Notification``), when one arrives and before one expires."""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.roles import Role

from ..models import OPEN_STATUSES, ApprovalRequest, AuditAction, Notification
from .audit import approval_model_name, audit_record
from .gates import environment_rules
from .refusals import Rule

logger = logging.getLogger(__name__)


def approval_recipients(approval: ApprovalRequest) -> list[str]:
    """Who to tell: the named approvers ADO lists (by e-mail), else the portal's approvers."""
    named = sorted(
        {
            a["unique_name"].lower()
            for a in approval.assigned_approvers
            if not a.get("is_group") and "@" in (a.get("unique_name") or "")
        }
    )
    if named and not any(a.get("is_group") for a in approval.assigned_approvers):
        return named
    approvers = (
        get_user_model()
        .objects.filter(is_active=True, groups__name=Role.APPROVER)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    return sorted({*named, *(e.lower() for e in approvers)})


def _approval_url(approval: ApprovalRequest) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse(
        "approvals:detail", kwargs={"pk": approval.pk}
    )


def waiting_rules(approval: ApprovalRequest) -> list[Rule]:
    """The gates that block the request now or warn about it (a soak time, a freeze window):
    any rule of ``environment_rules`` that fails or warns, whatever its code."""
    if not approval.environment:
        return []
    rules = environment_rules(
        catalog_model=approval.catalog_model,
        model_version=approval.model_version,
        run=approval.run,
        environment=approval.environment,
        now=timezone.now(),
    )
    return [r for r in rules if not r.ok or r.warning]


def rule_title(rule: Rule) -> str:
    """A rule's name from its code ("soak_time": "Soak time"), with when it stops waiting."""
    title = rule.code.replace("_", " ").capitalize()
    return f"{title} until {rule.until:%Y-%m-%d %H:%M} UTC" if rule.until else title


def rule_notice(rule: Rule) -> str:
    """One line a notification says about a rule that blocks or warns: its name, its message
    and, when it waits, until when."""
    verb = "warns" if rule.ok else "blocks it"
    line = f"{rule.code.replace('_', ' ').capitalize()} {verb}: {rule.message}"
    if rule.until and f"{rule.until:%Y-%m-%d %H:%M} UTC" not in rule.message:
        line += f" (until {rule.until:%Y-%m-%d %H:%M} UTC)"
    return line


def _notification_text(approval: ApprovalRequest, kind: str) -> tuple[str, str]:
    what = approval_model_name(approval) or approval.pipeline_name or "a model"
    version = f" version {approval.model_version.version}" if approval.model_version_id else ""
    env = approval.environment or "an environment"
    if kind == "expiring":
        subject = f"[MLOps Portal] {env} approval for {what}{version} expires soon"
        lead = (
            f"The {env} approval for {what}{version} expires at "
            f"{approval.expires_at:%Y-%m-%d %H:%M} UTC; ADO skips the stage if nobody decides."
        )
    else:
        subject = f"[MLOps Portal] {env} approval requested for {what}{version}"
        lead = f"Run {approval.run_name} of {approval.pipeline_name} waits for a {env} approval."
    waiting = waiting_rules(approval)
    blocking = [r for r in waiting if not r.ok]
    if blocking:
        subject += " (waits: " + "; ".join(rule_title(r) for r in blocking) + ")"
    body = "\n\n".join(
        part
        for part in (
            lead,
            "\n".join(rule_notice(r) for r in waiting),
            f"Requested by: {approval.requested_by}" if approval.requested_by else "",
            f"Instructions: {approval.instructions}" if approval.instructions else "",
            f"Review and decide: {_approval_url(approval)}",
        )
        if part
    )
    return subject, body


def _notify(approval: ApprovalRequest, kind: str) -> dict:
    """Send one kind of notice about one approval on each configured channel, once."""
    sent = {}
    subject, body = _notification_text(approval, kind)
    channels = ["email"] + (["teams"] if settings.APPROVALS_TEAMS_WEBHOOK_URL else [])
    for channel in channels:
        try:
            with transaction.atomic():
                note = Notification.objects.create(approval=approval, kind=kind, channel=channel)
        except IntegrityError:
            continue  # already sent (or being sent) by another worker
        recipients = approval_recipients(approval) if channel == "email" else []
        error = ""
        try:
            if channel == "email":
                if recipients:
                    send_mail(subject, body, None, recipients, fail_silently=False)
                else:
                    error = "no recipient has an e-mail address"
            else:
                _teams_post(subject, body, approval)
        except Exception as exc:  # SMTP or Teams down: recorded, not retried forever
            error = f"{type(exc).__name__}: {exc}"[:2000]
            logger.warning("%s notification for approval %s failed: %s", channel, approval.pk, exc)
        Notification.objects.filter(pk=note.pk).update(
            recipients=recipients, sent_at=None if error else timezone.now(), error=error
        )
        if not error:
            audit_record(
                action=AuditAction.NOTIFICATION_SENT,
                actor_name="portal (notifications)",
                approval=approval,
                message=f"{channel.capitalize()} notice '{kind}' sent"
                + (f" to {', '.join(recipients)}" if recipients else ""),
                detail={"channel": channel, "kind": kind, "recipients": recipients},
            )
        sent[channel] = error or "sent"
    return sent


def _teams_post(subject: str, body: str, approval: ApprovalRequest) -> None:
    """Post to a Teams incoming webhook (a MessageCard: accepted by classic and workflow
    webhooks alike)."""
    card = {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": subject,
        "themeColor": "DC3545" if approval.is_prod else "FFC107",
        "title": subject,
        "text": body.replace("\n\n", "<br><br>"),
        "potentialAction": [
            {
                "@type": "OpenUri",
                "name": "Open in the MLOps Portal",
                "targets": [{"os": "default", "uri": _approval_url(approval)}],
            }
        ],
    }
    response = requests.post(settings.APPROVALS_TEAMS_WEBHOOK_URL, json=card, timeout=10)
    if response.status_code >= 300:
        raise RuntimeError(f"Teams answered HTTP {response.status_code}: {response.text[:200]}")


def notifications_send_new(*, approval_ids: list[int]) -> dict:
    result = {}
    for approval in ApprovalRequest.objects.filter(
        pk__in=approval_ids, status__in=OPEN_STATUSES
    ).select_related("catalog_model", "model_version"):
        result[approval.pk] = _notify(approval, "arrived")
    return result


def notifications_send_expiring() -> dict:
    """Warn about open requests that expire within APPROVALS_EXPIRY_WARNING_HOURS."""
    now = timezone.now()
    soon = now + timedelta(hours=settings.APPROVALS_EXPIRY_WARNING_HOURS)
    result = {}
    for approval in (
        ApprovalRequest.objects.filter(
            status__in=OPEN_STATUSES, expires_at__gt=now, expires_at__lte=soon
        )
        .exclude(notifications__kind="expiring")
        .select_related("catalog_model", "model_version")
    ):
        result[approval.pk] = _notify(approval, "expiring")
    return result
