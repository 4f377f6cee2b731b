"""Post-deployment sign-off for PROD (classic releases' post-deployment approval): when a PROD
deployment succeeds and its policy says ``signoff_required``, a SignOff opens, and an approver
who did not deploy closes it: signed off, or flagged with a comment. Opened from the pipelines
sync's ``runs_changed`` signal (approvals listens; pipelines does not know it), audited and
notified."""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.roles import Role, user_roles
from core.tasks import enqueue_after_commit
from pipelines.models import Environment, RunStage

from ..models import ApprovalRequest, AuditAction, SignOff, SignOffStatus
from .audit import audit_record, user_display_name, user_identities
from .policies import approval_policy_for
from .refusals import DecisionRefused

logger = logging.getLogger(__name__)
NOTIFY_TASK = "approvals.notify_signoff"


def signoffs_on_runs_changed(sender=None, run_ids=(), **kwargs) -> None:
    """``pipelines.signals.runs_changed`` receiver: open the sign-offs those runs call for."""
    signoffs_open(run_ids=list(run_ids))


def signoffs_open(*, run_ids: list[int]) -> list[SignOff]:
    """A SignOff for each succeeded PROD stage of these runs whose policy asks for one (once
    per stage, however often the sync reports the run)."""
    stages = (
        RunStage.objects.filter(
            run_id__in=run_ids, environment=Environment.PROD, result="succeeded", signoff=None
        )
        .select_related("run__pipeline__catalog_model", "run__model_version")
        .order_by("pk")
    )
    opened = []
    for stage in stages:
        catalog_model = stage.run.pipeline.catalog_model
        policy = approval_policy_for(catalog_model=catalog_model, environment=Environment.PROD)
        if policy.signoff_required:
            signoff = _open(stage, catalog_model)
            if signoff is not None:
                opened.append(signoff)
    return opened


def _open(stage: RunStage, catalog_model) -> SignOff | None:
    run = stage.run
    approval = (
        ApprovalRequest.objects.filter(run=run, environment=Environment.PROD)
        .select_related("catalog_model")
        .order_by("-created_on")
        .first()
    )
    try:
        with transaction.atomic():
            signoff = SignOff.objects.create(
                stage=stage,
                run=run,
                approval=approval,
                catalog_model=catalog_model,
                model_version=run.model_version,
                environment=Environment.PROD,
                deployed_at=stage.finished_at,
                deployed_by=(run.requested_by_id or run.requested_by)[:300],
            )
            audit_record(
                action=AuditAction.SIGNOFF_OPENED,
                actor_name="portal (sign-off)",
                approval=approval,
                environment=Environment.PROD,
                model_name=catalog_model.name if catalog_model else "",
                message=f"Post-deployment sign-off opened for {_what(signoff)}",
                detail={"signoff": signoff.pk, "run": run.pk, "stage": stage.name},
            )
    except IntegrityError:  # another sync opened it first
        return None
    enqueue_after_commit(NOTIFY_TASK, signoff.pk)
    return signoff


def _what(signoff: SignOff) -> str:
    name = signoff.catalog_model.name if signoff.catalog_model_id else signoff.run.name
    return " ".join(filter(None, (name, signoff.version_label, f"(run {signoff.run.name})")))


def _is_deployer(signoff: SignOff, user) -> bool:
    run = signoff.run
    return bool(
        (signoff.deployed_by and signoff.deployed_by.lower() in user_identities(user))
        or (run.triggered_by_id and run.triggered_by_id == user.pk)
    )


def signoff_close_rules(*, signoff: SignOff, user) -> list[tuple[str, str]]:
    """Why this person may not close this sign-off now (code, message); empty: they may."""
    if Role.APPROVER not in user_roles(user):
        return [("not_an_approver", "Only approvers close a post-deployment sign-off.")]
    if not signoff.is_open:
        status = signoff.get_status_display().lower()
        return [("already_closed", f"Already {status} by {signoff.closed_by_name or 'someone'}.")]
    if _is_deployer(signoff, user):
        return [("deployer", "You deployed this run, so someone else signs it off.")]
    return []


def signoff_close(
    *, signoff_id: int, user, status: str, comment: str = "", via: str = "web"
) -> SignOff:
    """Close a sign-off (audited; refusals too): signed off, or flagged with a comment."""
    comment = (comment or "").strip()
    if not SignOff.objects.filter(pk=signoff_id).exists():
        raise SignOff.DoesNotExist(signoff_id)
    try:
        if Role.APPROVER not in user_roles(user):
            raise DecisionRefused(
                "not_an_approver", "Only approvers close a post-deployment sign-off."
            )
        if status not in (SignOffStatus.SIGNED_OFF, SignOffStatus.FLAGGED):
            raise DecisionRefused("invalid_status", "Choose sign off or flag.", http_status=400)
        if status == SignOffStatus.FLAGGED and not comment:
            raise DecisionRefused(
                "comment_required",
                "Flagging needs a comment saying what is wrong.",
                http_status=400,
            )
        if "\x00" in comment:
            raise DecisionRefused("bad_comment", "No NUL characters, please.", http_status=400)
        if len(comment) > settings.APPROVALS_COMMENT_MAX_LENGTH:
            raise DecisionRefused("comment_too_long", "The comment is too long.", http_status=400)
        with transaction.atomic():
            signoff = (
                SignOff.objects.select_for_update(of=("self",))
                .select_related("run", "catalog_model", "model_version", "approval")
                .get(pk=signoff_id)
            )
            for code, message in signoff_close_rules(signoff=signoff, user=user):
                status_code = 409 if code == "already_closed" else 403
                raise DecisionRefused(code, message, http_status=status_code)
            signoff.status = status
            signoff.closed_at = timezone.now()
            signoff.closed_by = user
            signoff.closed_by_name = user_display_name(user)[:300]
            signoff.comment = comment
            signoff.save(
                update_fields=["status", "closed_at", "closed_by", "closed_by_name", "comment"]
            )
            verb = "Signed off" if status == SignOffStatus.SIGNED_OFF else "Flagged"
            audit_record(
                action=AuditAction.SIGNOFF_CLOSED,
                actor=user,
                approval=signoff.approval,
                environment=signoff.environment,
                model_name=signoff.catalog_model.name if signoff.catalog_model_id else "",
                message=f"{verb} the PROD deployment of {_what(signoff)}"
                + (f": {comment}" if comment else ""),
                detail={"signoff": signoff.pk, "status": status, "via": via},
            )
            if status == SignOffStatus.FLAGGED:
                enqueue_after_commit(NOTIFY_TASK, signoff.pk)
    except DecisionRefused as refusal:
        _refusal_record(signoff_id, user, status, refusal, via)
        raise
    return signoff


def _refusal_record(signoff_id, user, status, refusal, via) -> None:
    signoff = SignOff.objects.filter(pk=signoff_id).select_related("approval").first()
    audit_record(
        action=AuditAction.SIGNOFF_REFUSED,
        actor=user,
        approval=signoff.approval if signoff else None,
        environment=signoff.environment if signoff else "",
        message=f"Refused to close sign-off #{signoff_id}: {refusal.message}",
        detail={"signoff": signoff_id, "code": refusal.code, "status": status, "via": via},
    )


# --- Notifications ----------------------------------------------------------------------------


def _signoff_url(signoff: SignOff) -> str:
    base = settings.PORTAL_BASE_URL.rstrip("/")
    if signoff.approval_id:
        return base + reverse("approvals:detail", kwargs={"pk": signoff.approval_id})
    return base + reverse("approvals:inbox")


def _signoff_text(signoff: SignOff) -> tuple[str, str]:
    what = _what(signoff)
    if signoff.status == SignOffStatus.FLAGGED:
        subject = f"[MLOps Portal] PROD deployment of {what} flagged"
        lead = f"{signoff.closed_by_name} flagged the PROD deployment: {signoff.comment}"
    else:
        subject = f"[MLOps Portal] Sign off the PROD deployment of {what}"
        lead = (
            f"{what} was deployed to PROD"
            + (f" at {signoff.deployed_at:%Y-%m-%d %H:%M} UTC" if signoff.deployed_at else "")
            + ". Its policy asks an approver who did not deploy it to sign it off, or flag it."
        )
    return subject, f"{lead}\n\nOpen it: {_signoff_url(signoff)}"


def signoff_notify(*, signoff_id: int) -> dict:
    """Tell the approvers (e-mail, and Teams when configured) that a sign-off waits for them,
    or that one was flagged; the open notice goes out once (``notified_at``)."""
    signoff = (
        SignOff.objects.select_related("run", "catalog_model", "model_version")
        .filter(pk=signoff_id)
        .first()
    )
    if signoff is None or not settings.APPROVALS_NOTIFY:
        return {}
    if signoff.is_open and signoff.notified_at is not None:
        return {"email": "already sent"}
    subject, body = _signoff_text(signoff)
    recipients = sorted(
        {
            e.lower()
            for e in get_user_model()
            .objects.filter(is_active=True, groups__name=Role.APPROVER)
            .exclude(email="")
            .values_list("email", flat=True)
        }
    )
    error = ""
    try:
        if recipients:
            send_mail(subject, body, None, recipients, fail_silently=False)
        if settings.APPROVALS_TEAMS_WEBHOOK_URL:
            card = {"@type": "MessageCard", "summary": subject, "title": subject, "text": body}
            requests.post(settings.APPROVALS_TEAMS_WEBHOOK_URL, json=card, timeout=10)
    except Exception as exc:  # SMTP or Teams down: recorded on the row
        error = f"{type(exc).__name__}: {exc}"[:2000]
        logger.warning("sign-off %s notification failed: %s", signoff.pk, exc)
    SignOff.objects.filter(pk=signoff.pk).update(notified_at=timezone.now(), notify_error=error)
    if not error:
        audit_record(
            action=AuditAction.NOTIFICATION_SENT,
            actor_name="portal (notifications)",
            approval=signoff.approval,
            environment=signoff.environment,
            message=f"Sign-off notice sent to {', '.join(recipients) or 'nobody'}",
            detail={"signoff": signoff.pk, "status": signoff.status, "recipients": recipients},
        )
    return {"email": error or "sent", "recipients": recipients}
