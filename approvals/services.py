"""Everything that changes approvals: the ADO sync, decisions, the outbox, the audit trail,
notifications. Functions are keyword-only and named <entity>_<action>.

The two promises (docs/approvals.md):
- a decision is written, with its outbox message and audit row, in one transaction before
  anything is sent; refusals are audited too, in their own transaction;
- delivery is at least once and applied once: the deliverer claims the message, reads the
  approval in ADO, and PATCHes only if ADO does not already have the decision.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.client_address import client_ip
from core.identity import delegated_ado_token, entra_sign_in_enabled
from core.request_context import get_request_id
from core.roles import Role, user_roles
from pipelines.models import AdoProject, Environment, PipelineRun, RunStage

from . import client as ado
from .models import (
    OPEN_STATUSES,
    ApprovalRequest,
    ApprovalStatus,
    ApprovalSync,
    AuditAction,
    AuditEvent,
    DecidedIn,
    Decision,
    DecisionStatus,
    OutboxMessage,
    OutboxState,
)

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "portal (sync)"
DELIVERY_ACTOR = "portal (delivery)"
PORTAL_MARK = "via MLOps Portal, decision"


# Audit ----------------------------------------------------------------------------------------


def audit_record(
    *,
    action: str,
    message: str,
    actor=None,
    actor_name: str = "",
    approval: ApprovalRequest | None = None,
    decision: Decision | None = None,
    detail: dict | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one row to the audit trail (the only way rows get there)."""
    if actor is not None and not actor_name:
        actor_name = user_display_name(actor)
    return AuditEvent.objects.create(
        at=at or timezone.now(),
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=actor_name[:300],
        approval=approval,
        decision=decision,
        environment=(approval.environment if approval else "") or "",
        model_name=_model_name(approval)[:255],
        message=message,
        detail=detail or {},
        request_id=(get_request_id() or "")[:100],
    )


def _model_name(approval: ApprovalRequest | None) -> str:
    if approval is None:
        return ""
    if approval.catalog_model_id:
        return approval.catalog_model.name
    return approval.pipeline_name


def user_display_name(user) -> str:
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return full or user.get_username()


def user_identities(user) -> set[str]:
    """What ADO and MLflow may call this person: e-mail and user name, lower-cased."""
    names = {user.get_username().lower()}
    if getattr(user, "email", ""):
        names.add(user.email.lower())
    return {n for n in names if n}


# Sign-in audit (receivers of django.contrib.auth's signals and core.signals) ----------------


ENTRA_METHOD_SESSION_KEY = "portal_sign_in_method"  # portal.entra.METHOD_SESSION_KEY
LAST_ACTIVITY_SESSION_KEY = "portal_last_activity"  # SessionTimeoutMiddleware's


def _sign_in_method(request) -> str:
    """How the person signed in: "entra" through the Entra callback (or in a session it
    opened), else "local" (a user name and password)."""
    session = getattr(request, "session", None)
    if session is not None and session.get(ENTRA_METHOD_SESSION_KEY) == "entra":
        return "entra"
    match = getattr(request, "resolver_match", None)
    view = (match.view_name if match else "") or ""
    return "entra" if view.startswith("entra-") else "local"


def _request_facts(request) -> dict:
    if request is None:
        return {}
    match = getattr(request, "resolver_match", None)
    facts = {"ip": client_ip(request), "path": request.path[:300]}
    if match and match.view_name:
        facts["view"] = match.view_name
    return facts


def _through_a_page(request) -> bool:
    """A sign-in or sign-out made by a real request (a sign-in page, the Entra callback, the
    session timeout), not ``login()`` called with no request behind it (``Client.force_login``
    in tests, a shell): only the first is a person signing in, so only it is audited."""
    return request is not None and bool(getattr(request, "path", ""))


def _audit_quietly(**kwargs) -> None:
    """An audit row for a sign-in event: it never stops the sign-in (nor its transaction)."""
    try:
        with transaction.atomic():
            audit_record(**kwargs)
    except Exception:
        logger.exception("could not audit %s", kwargs.get("action"))


def sign_in_audit(sender, request=None, user=None, **kwargs) -> None:
    """``user_logged_in``: audit the sign-in, then send the user's decisions that waited for
    it (their delegated ADO token can be had again)."""
    if user is None:
        return
    if _through_a_page(request):
        method = _sign_in_method(request)
        facts = _request_facts(request)
        # A session that was already signed in as them (login() keeps its data for the same
        # user): confirming who they are, e.g. before a PROD decision.
        session = getattr(request, "session", None)
        again = facts.get("view", "") == "reauthenticate" or bool(
            session is not None and session.get(LAST_ACTIVITY_SESSION_KEY)
        )
        _audit_quietly(
            action=AuditAction.SIGN_IN,
            actor=user,
            message="Signed in ("
            + ("Microsoft Entra ID" if method == "entra" else "local account")
            + (") to confirm it is them" if again else ")"),
            detail={"method": method, "reason": "reauthenticate" if again else "sign_in", **facts},
        )
    try:
        outbox_requeue_after_sign_in(user=user)
    except Exception:  # the sign-in stands; an admin (or the next sign-in) can retry
        logger.exception("could not re-queue the decisions waiting for %s", user.pk)


def sign_out_audit(sender, request=None, user=None, **kwargs) -> None:
    """``user_logged_out``: a sign-out asked for, or the session timeout's."""
    if user is None or not getattr(user, "pk", None) or not _through_a_page(request):
        return
    reason = getattr(request, "portal_sign_out_reason", "") or "signed_out"
    text = {
        "idle_timeout": "Signed out: the session was idle too long",
        "absolute_timeout": "Signed out: the session reached its maximum length",
    }.get(reason, "Signed out")
    _audit_quietly(
        action=AuditAction.SIGN_OUT,
        actor=user,
        message=text,
        detail={"method": _sign_in_method(request), "reason": reason, **_request_facts(request)},
    )


def sign_in_failed_audit(sender, credentials=None, request=None, **kwargs) -> None:
    """``user_login_failed``: a wrong local user name or password (never the password).
    An attempt refused because sign-in is locked is recorded as ``locked_out`` instead."""
    from django.contrib.auth import get_user_model

    if getattr(request, "axes_locked_out", False):
        return

    username = str((credentials or {}).get("username") or "")[:150]
    user = None
    if username:
        model = get_user_model()
        user = model.objects.filter(**{model.USERNAME_FIELD: username}).first()
    _audit_quietly(
        action=AuditAction.SIGN_IN_DENIED,
        actor=user,
        actor_name=(user_display_name(user) if user else username) or "(no user name)",
        message=f"Sign-in refused for {username or 'an empty user name'}: wrong user name or "
        "password",
        detail={
            "method": "local",
            "reason": "bad_credentials",
            "username": username,
            "known_user": user is not None,
            **_request_facts(request),
        },
    )


SAFE_CLAIMS = ("oid", "tid", "upn", "preferred_username", "name", "email", "roles", "groups")


def sign_in_denied_audit(
    sender, request=None, user=None, reason: str = "", claims: dict | None = None, **kwargs
) -> None:
    """``core.signals.sign_in_denied``: an Entra sign-in (or another) that was refused."""
    method = kwargs.get("method") or "entra"
    claims = {k: v for k, v in (claims or {}).items() if k in SAFE_CLAIMS}
    who = (
        (user_display_name(user) if user is not None and getattr(user, "pk", None) else "")
        or claims.get("name")
        or claims.get("preferred_username")
        or claims.get("upn")
        or claims.get("oid")
        or "(unknown)"
    )
    _audit_quietly(
        action=AuditAction.SIGN_IN_DENIED,
        actor=user if user is not None and getattr(user, "pk", None) else None,
        actor_name=str(who),
        message=f"Sign-in refused for {who}: {reason or 'no reason given'}",
        detail={"method": method, "reason": reason, "claims": claims, **_request_facts(request)},
    )


# Sync from ADO --------------------------------------------------------------------------------


@dataclass
class SyncResult:
    project: str
    mode: str  # poll | one
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    closed_in_ado: int = 0
    linked_runs_refreshed: int = 0
    imported: int = 0  # decided in ADO before the project's first sync (its history)
    error: str = ""
    new_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error

    def as_dict(self) -> dict:
        return {
            "project": self.project,
            "mode": self.mode,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "closed_in_ado": self.closed_in_ado,
            "linked_runs_refreshed": self.linked_runs_refreshed,
            "imported": self.imported,
            "error": self.error,
        }


def project_approvals_sync(
    *, project: AdoProject, client: ado.AdoClient | None = None, history: bool = False
) -> SyncResult:
    """Poll ADO's pending approvals (``state=pending&$expand=steps``), then re-read the ones
    the portal still holds open that ADO no longer lists, to learn how they ended. The first
    successful sync of a project also imports its recent history (``_history_import``), and
    so does ``history=True`` (``sync_approvals --history``: a project synced before that)."""
    result = SyncResult(project=project.name, mode="poll")
    started_at = timezone.now()
    client = client or ado.sync_client(project)
    first_sync = not ApprovalSync.objects.filter(
        project=project, last_succeeded_at__isnull=False
    ).exists()
    try:
        pending = list(client.list_approvals(state="pending", expand_steps=True))
        seen = {str(a.get("id", "")).lower() for a in pending}
        held_open = [
            ado_id
            for ado_id in ApprovalRequest.objects.filter(
                project=project, ado_status__in=OPEN_STATUSES
            ).values_list("ado_id", flat=True)
            if ado_id.lower() not in seen
        ]
        ended = list(client.list_approvals(approval_ids=held_open, expand_steps=True))
        for data in pending + ended:
            if data.get("id"):
                _apply_counted(project, data, client, result)
        returned = {str(a.get("id", "")).lower() for a in ended}
        for ado_id in held_open:
            if ado_id.lower() not in returned:
                _gone_unless_found(project, ado_id, client, result)
        ApprovalRequest.objects.filter(project=project, ado_id__in=seen | returned).update(
            last_synced_at=timezone.now()
        )
        if first_sync or history:
            _history_import(project, client, result)
    except ado.AdoError as exc:
        result.error = f"{exc.status or ''} {exc}".strip()[:2000]
        logger.warning("approvals sync of %s failed: %s", project.name, result.error)
    now = timezone.now()
    if result.error:
        ApprovalSync.objects.update_or_create(
            project=project,
            defaults={
                "last_started_at": started_at,
                "last_error_at": now,
                "last_error": result.error,
            },
        )
    else:
        ApprovalSync.objects.update_or_create(
            project=project,
            defaults={
                "last_started_at": started_at,
                "last_succeeded_at": now,
                "last_stats": result.as_dict(),
            },
        )
    _notify_new(result)
    return result


def _history_import(project: AdoProject, client, result: SyncResult) -> None:
    """On a project's first successful sync, the approvals ADO decided in the last
    APPROVALS_HISTORY_DAYS days join the mirror (closed, decided in ADO), so the "Decided" tab
    starts with the project's history rather than empty. ADO's query has no date filter: it
    is asked for every state (no ``state``) and the window is applied here. Upserts by id,
    so a failed first sync that is run again imports each approval once."""
    cutoff = timezone.now() - timedelta(days=settings.APPROVALS_HISTORY_DAYS)
    for data in client.list_approvals(expand_steps=True):
        status = str(data.get("status") or "")
        if not data.get("id") or status in OPEN_STATUSES or status not in ApprovalStatus.values:
            continue
        decided_at = _when(data.get("lastModifiedOn")) or _when(data.get("createdOn"))
        if decided_at is None or decided_at < cutoff:
            continue
        known = ApprovalRequest.objects.filter(
            project=project, ado_id=str(data["id"]).lower()
        ).exists()
        _apply_counted(project, data, client, result)
        result.imported += 0 if known else 1


def _gone_unless_found(project, ado_id: str, client, result: SyncResult) -> None:
    """ADO no longer lists an approval the portal holds open: ask for it by id, and if ADO
    answers 404 (its run was deleted), close it here as gone, so it does not wait forever."""
    try:
        data = client.get_approval(ado_id, expand_steps=True)
    except ado.AdoNotFound:
        approval_gone(project=project, ado_id=ado_id)
        result.closed_in_ado += 1
        return
    _apply_counted(project, data, client, result)


def approval_gone(*, project: AdoProject, ado_id: str) -> None:
    with transaction.atomic():
        request = (
            ApprovalRequest.objects.select_for_update(of=("self",))
            .filter(project=project, ado_id=ado_id)
            .first()
        )
        if request is None or request.ado_status not in OPEN_STATUSES:
            return
        request.ado_status = ApprovalStatus.UNDEFINED
        if request.status in OPEN_STATUSES:
            request.status = ApprovalStatus.UNDEFINED
            request.decided_at = timezone.now()
            request.decided_in = DecidedIn.ADO
        request.save()
        audit_record(
            action=AuditAction.APPROVAL_CHANGED_IN_ADO,
            actor_name=SYSTEM_ACTOR,
            approval=request,
            message="Azure DevOps no longer has this approval (404): its run was deleted or "
            "moved; nothing is left to decide.",
            detail={"ado_status": "gone"},
        )


def approval_refresh(
    *, project: AdoProject, approval_id: str, client: ado.AdoClient | None = None
) -> SyncResult:
    """Re-read one approval (what an approval-pending / -completed service hook asks for)."""
    result = SyncResult(project=project.name, mode="one")
    client = client or ado.sync_client(project)
    try:
        data = client.get_approval(approval_id, expand_steps=True)
        _apply_counted(project, data, client, result)
    except ado.AdoNotFound:
        result.error = f"approval {approval_id} not found in ADO"
    except ado.AdoError as exc:
        result.error = f"{exc.status or ''} {exc}".strip()[:2000]
    _notify_new(result)
    return result


def _notify_new(result: SyncResult) -> None:
    if result.new_ids and settings.APPROVALS_NOTIFY:
        from .tasks import notify_new_approvals

        ids = list(result.new_ids)
        transaction.on_commit(lambda: _enqueue(notify_new_approvals, ids))


def _apply_counted(project, data: dict, client, result: SyncResult) -> None:
    outcome = approval_apply(project=project, data=data, client=client, result=result)
    if outcome == "created":
        result.created += 1
    elif outcome == "unchanged":
        result.unchanged += 1
    else:
        result.updated += 1
        if outcome == "closed":
            result.closed_in_ado += 1
    if outcome == "created":
        request = ApprovalRequest.objects.filter(
            project=project, ado_id=str(data["id"]).lower()
        ).first()
        if request is not None:
            result.new_ids.append(request.pk)


def _when(value) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.utc)
    return parsed


def _identity(ref: dict | None) -> dict:
    ref = ref or {}
    return {
        "id": str(ref.get("id") or ""),
        "name": str(ref.get("displayName") or ref.get("uniqueName") or ""),
        "unique_name": str(ref.get("uniqueName") or ""),
        "is_group": bool(ref.get("isContainer"))
        or str(ref.get("descriptor") or "").startswith("vssgp."),
    }


def _steps(data: dict) -> list[dict]:
    steps = []
    for step in data.get("steps") or []:
        actual = step.get("actualApprover")
        steps.append(
            {
                "assigned": _identity(step.get("assignedApprover")),
                "actual": _identity(actual) if actual else None,
                "status": str(step.get("status") or ""),
                "comment": str(step.get("comment") or ""),
                "order": step.get("order") or 0,
                "initiated_on": step.get("initiatedOn") or "",
                "last_modified_on": step.get("lastModifiedOn") or "",
            }
        )
    return steps


def _link(project, build_id: int | None, approval_id: str, client, result=None) -> tuple:
    """(run, stage) of an approval: the run from ``pipeline.owner.id``, the stage from the
    run's timeline (the stage whose checkpoint holds this approval). Re-reads the run once
    when the mirror does not know it yet."""
    if build_id is None:
        return None, None
    for attempt in (1, 2):
        run = (
            PipelineRun.objects.filter(pipeline__project=project, ado_id=build_id)
            .select_related("pipeline__catalog_model", "model_version")
            .first()
        )
        stage = None
        if run is not None:
            stage = next(
                (
                    s
                    for s in run.stages.all()
                    if approval_id in [str(i).lower() for i in s.approval_ids]
                ),
                None,
            )
        if (run is not None and stage is not None) or attempt == 2 or client is None:
            return run, stage
        from pipelines.services import run_refresh

        run_refresh(project=project, build_id=build_id, client=client)
        if result is not None:
            result.linked_runs_refreshed += 1
    return None, None


def approval_apply(
    *, project: AdoProject, data: dict, client=None, result: SyncResult | None = None
) -> str:
    """Upsert one approval from ADO's JSON; return created | updated | closed | unchanged.

    A decision made in the portal keeps the request closed while ADO still says pending (it
    is on its way); anything ADO decided itself is recorded as a change in ADO.
    """
    approval_id = str(data["id"]).lower()
    owner = ((data.get("pipeline") or {}).get("owner")) or {}
    try:
        build_id = int(owner.get("id")) if owner.get("id") is not None else None
    except (TypeError, ValueError):
        build_id = None
    existing = (
        ApprovalRequest.objects.filter(project=project, ado_id=approval_id)
        .select_related("run__pipeline__catalog_model", "run__model_version", "stage")
        .first()
    )
    needs_link = existing is None or existing.run_id is None or existing.stage_id is None
    run, stage = (
        _link(project, build_id, approval_id, client, result)
        if needs_link
        else (existing.run, existing.stage)
    )
    steps = _steps(data)
    ado_status = str(data.get("status") or ApprovalStatus.UNDEFINED)
    if ado_status not in ApprovalStatus.values:
        ado_status = ApprovalStatus.UNDEFINED
    created_on = _when(data.get("createdOn")) or timezone.now()
    values = {
        "build_id": build_id,
        "ado_status": ado_status,
        "instructions": str(data.get("instructions") or ""),
        "min_required_approvers": max(int(data.get("minRequiredApprovers") or 0), 0)
        or max(len(steps), 1),
        "execution_order": str(data.get("executionOrder") or "")[:20],
        "assigned_approvers": [s["assigned"] for s in steps],
        "blocked_approvers": [_identity(b) for b in data.get("blockedApprovers") or []],
        "steps": steps,
        "created_on": created_on,
        "last_modified_on": _when(data.get("lastModifiedOn")),
        "expires_at": created_on + timedelta(minutes=settings.APPROVALS_TIMEOUT_MINUTES),
    }
    pipeline_ref = data.get("pipeline") or {}
    if run is not None:
        values.update(
            run=run,
            pipeline_name=run.pipeline.name[:300],
            run_name=run.name[:300],
            catalog_model=run.pipeline.catalog_model,
            model_version=run.model_version,
            requested_by=run.requested_by[:300],
            requested_by_id=run.requested_by_id[:300],
        )
    else:
        values.update(
            pipeline_name=str(pipeline_ref.get("name") or "")[:300],
            run_name=str(owner.get("name") or "")[:300],
        )
    if stage is not None:
        values.update(stage=stage, stage_name=stage.name[:300], environment=stage.environment)
    if existing is not None and not any(
        _differs(getattr(existing, k), v) for k, v in values.items()
    ):
        return "unchanged"  # the common case of a poll: one query, no lock, no write

    with transaction.atomic():
        request = (
            ApprovalRequest.objects.select_for_update(of=("self",))
            .filter(project=project, ado_id=approval_id)
            .first()
        )
        now = timezone.now()
        if request is None:
            request = ApprovalRequest(project=project, ado_id=approval_id, last_synced_at=now)
            for key, value in values.items():
                setattr(request, key, value)
            request.status = ado_status
            if ado_status not in OPEN_STATUSES:
                _close_from_ado(request, steps)
            try:
                with transaction.atomic():
                    request.save()
            except IntegrityError:
                return "unchanged"  # a concurrent sync created it
            audit_record(
                action=AuditAction.APPROVAL_REQUESTED,
                actor_name=request.requested_by or SYSTEM_ACTOR,
                approval=request,
                message=(
                    f"{request.environment or 'An'} approval requested in ADO for "
                    f"{request.pipeline_name or 'a pipeline'} run {request.run_name}".strip()
                ),
                detail={"ado_status": ado_status, "build_id": build_id},
                at=created_on,
            )
            return "created"

        if ado_status in OPEN_STATUSES and request.ado_status not in OPEN_STATUSES:
            # ADO never reopens an approval: this JSON was read before it closed (a replayed
            # hook, a poll racing a hook). Applying it would regress what ADO said, and the
            # next read would record ADO's decision a second time.
            return "unchanged"
        changed = [k for k, v in values.items() if _differs(getattr(request, k), v)]
        for key in changed:
            setattr(request, key, values[key])
        outcome = "updated" if changed else "unchanged"
        if ado_status not in OPEN_STATUSES and "ado_status" in changed:
            outcome = _ado_closed(request, steps, ado_status)
        elif ado_status in OPEN_STATUSES and request.status not in OPEN_STATUSES:
            # ADO still waits: a portal decision on its way, or one ADO refused (kept closed).
            pass
        elif ado_status in OPEN_STATUSES:
            request.status = ado_status
        request.last_synced_at = now
        request.save()
        return outcome


def _differs(current, new) -> bool:
    if hasattr(current, "pk") or hasattr(new, "pk"):
        return getattr(current, "pk", current) != getattr(new, "pk", new)
    return current != new


def _decider(steps: list[dict], status: str) -> dict | None:
    acted = [s for s in steps if s.get("actual") and s.get("status") == status]
    acted.sort(key=lambda s: s.get("last_modified_on") or "")
    return acted[-1] if acted else None


def _close_from_ado(request: ApprovalRequest, steps: list[dict]) -> None:
    step = _decider(steps, request.ado_status)
    request.status = request.ado_status
    request.decided_at = (
        _when(step.get("last_modified_on")) if step else None
    ) or request.last_modified_on
    request.decided_by = ((step or {}).get("actual") or {}).get("name", "")[:300]
    request.decided_in = DecidedIn.ADO


def _ado_closed(request: ApprovalRequest, steps: list[dict], ado_status: str) -> str:
    """ADO closed the approval. If the portal decided the same way, that is ADO confirming
    it; otherwise ADO (a person there, a timeout, a cancel) decided, and the page says so."""
    portal_decided = request.decided_in == DecidedIn.PORTAL
    # Confirmed only if a step that decided it carries the portal's mark: the same outcome
    # from someone else in ADO (before our PATCH arrived) is ADO's decision, not ours.
    ours = any(
        s.get("status") == ado_status and PORTAL_MARK in (s.get("comment") or "") for s in steps
    )
    if portal_decided and request.status == ado_status and ours:
        audit_record(
            action=AuditAction.APPROVAL_CONFIRMED,
            actor_name=SYSTEM_ACTOR,
            approval=request,
            message=f"ADO shows the approval {ado_status}, as decided in the portal.",
            detail={"ado_status": ado_status},
        )
        return "updated"
    before = request.status
    _close_from_ado(request, steps)
    step = _decider(steps, ado_status)
    who = request.decided_by or "ADO"
    comment = (step or {}).get("comment", "")
    label = ApprovalStatus(ado_status).label.lower()
    audit_record(
        action=AuditAction.APPROVAL_CHANGED_IN_ADO,
        actor_name=who,
        approval=request,
        message=(
            f"{label.capitalize()} in Azure DevOps"
            + (f" by {who}" if request.decided_by else "")
            + (f": {comment}" if comment else "")
            + (f" (the portal had it {before})" if portal_decided else "")
        ),
        detail={"ado_status": ado_status, "previous_status": before, "comment": comment},
        at=request.decided_at,
    )
    return "closed"


# Decisions ------------------------------------------------------------------------------------


class DecisionRefused(Exception):
    """A decision the rules do not allow; ``code`` is stable, ``message`` is for people."""

    def __init__(self, code: str, message: str, *, http_status: int = 403):
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


class ReauthenticationRequired(DecisionRefused):
    def __init__(self, message: str):
        super().__init__("reauthentication_required", message, http_status=401)


@dataclass(frozen=True)
class Rule:
    """One rule the decision box lists: whether it lets this user decide, and why."""

    code: str
    ok: bool
    message: str

    def refusal(self) -> DecisionRefused:
        """What a failed rule answers, the same for the page and the API."""
        if self.code == "recent_sign_in":
            return ReauthenticationRequired(self.message)
        status = 409 if self.code in CONFLICT_RULES else 403
        return DecisionRefused(self.code, self.message, http_status=status)


NOT_AN_APPROVER = "Only people with the approver role can decide."

# Rules that fail because of the request's state, not the person: HTTP 409.
CONFLICT_RULES = frozenset({"already_decided", "already_decided_by_you", "one_identity", "expired"})


def decision_rules(
    *, approval: ApprovalRequest, user, authenticated_at: datetime | None = None
) -> list[Rule]:
    """Every rule that applies to ``user`` deciding ``approval``, in the order they are
    checked. The page lists them; ``approval_decide`` refuses at the first that fails."""
    rules: list[Rule] = []
    held = user_roles(user)
    if Role.APPROVER not in held:
        rules.append(Rule("not_an_approver", False, NOT_AN_APPROVER))
        return rules
    rules.append(Rule("approver_role", True, "You hold the approver role."))

    if approval.status not in OPEN_STATUSES:
        if approval.decided_in == DecidedIn.PORTAL:
            message = (
                f"Already {approval.get_status_display().lower()} by "
                f"{approval.decided_by or 'someone'}; nothing left to decide."
            )
        else:
            message = (
                f"This approval is already {approval.get_status_display().lower()} in Azure "
                "DevOps" + (f" (by {approval.decided_by})" if approval.decided_by else "") + "."
            )
        rules.append(Rule("already_decided", False, message))
        return rules
    now = timezone.now()
    if approval.expires_at and approval.expires_at <= now:
        rules.append(
            Rule(
                "expired",
                False,
                "This approval has expired: ADO skips the stage when its check times out.",
            )
        )
        return rules
    mine = {d.user_id: d for d in approval.decisions.all()}.get(user.pk)
    if mine is not None:
        rules.append(
            Rule(
                "already_decided_by_you",
                False,
                f"You already {mine.get_status_display().lower()} this request.",
            )
        )
        return rules
    others = [d for d in approval.decisions.all() if d.user_id != user.pk]
    if others and delivers_with_portal_identity(user):
        shared = [d for d in others if _decision_sent_as_portal(d)]
        if shared:
            rules.append(
                Rule(
                    "one_identity",
                    False,
                    f"{shared[0].user_name} already decided here, and the portal sends both "
                    "decisions to Azure DevOps under its own identity, which ADO counts once "
                    "per approval: give yours in Azure DevOps itself (or sign in with "
                    "Microsoft, so the portal sends it under your name).",
                )
            )
            return rules

    identities = user_identities(user)
    blocked = [
        b for b in approval.blocked_approvers if (b.get("unique_name") or "").lower() in identities
    ]
    if blocked:
        rules.append(
            Rule("blocked_approver", False, "ADO lists you as a blocked approver for this check.")
        )
    named_users = [a for a in approval.assigned_approvers if not a.get("is_group")]
    has_groups = any(a.get("is_group") for a in approval.assigned_approvers)
    if named_users and not has_groups:
        assigned = any((a.get("unique_name") or "").lower() in identities for a in named_users)
        who = ", ".join(a.get("name") or a.get("unique_name") for a in named_users)
        rules.append(
            Rule(
                "assigned_approver",
                assigned,
                "ADO assigns this approval to you."
                if assigned
                else f"ADO assigns this approval to {who}; you are not one of them.",
            )
        )
    else:
        rules.append(
            Rule(
                "assigned_approver",
                True,
                "ADO assigns this approval to an approver group; the approver role covers it.",
            )
        )

    run = approval.run
    queued_by_me = False
    if run is not None:
        queued_by_me = bool(
            (run.requested_by_id and run.requested_by_id.lower() in identities)
            or (run.triggered_by_id and run.triggered_by_id == user.pk)
        )
    elif approval.requested_by_id:
        queued_by_me = approval.requested_by_id.lower() in identities
    rules.append(
        Rule(
            "requester",
            not queued_by_me,
            "You queued this run, so you cannot approve it (separation of duties)."
            if queued_by_me
            else "You did not queue this run.",
        )
    )
    version = approval.model_version
    if version is not None:
        created_by_me = bool(version.user_id and version.user_id.lower() in identities)
        rules.append(
            Rule(
                "version_creator",
                not created_by_me,
                f"You created version {version.version}, so you cannot approve its deployment "
                "(separation of duties)."
                if created_by_me
                else "You did not create this model version.",
            )
        )

    if approval.environment == Environment.PROD:
        qa_ok = qa_succeeded(approval)
        rules.append(
            Rule(
                "qa_first",
                qa_ok,
                "QA succeeded for this version."
                if qa_ok
                else "PROD can be approved only after QA succeeded for the same version.",
            )
        )
        fresh = _signed_in_recently(authenticated_at)
        minutes = settings.APPROVALS_PROD_REAUTH_MINUTES
        rules.append(
            Rule(
                "recent_sign_in",
                fresh,
                f"You signed in within the last {minutes} minutes."
                if fresh
                else f"A PROD decision needs a sign-in within the last {minutes} minutes: "
                "confirm it is you, and you come back here.",
            )
        )
    return rules


def delivers_with_portal_identity(user=None) -> bool:
    """Whether ``user``'s decisions reach ADO with the portal's own credentials (PAT or
    service principal). ADO lets one identity act once per approval, so two such decisions
    cannot both count on a check needing several approvers (rule ``one_identity``).

    Local accounts (and ``user=None``): yes. People who signed in with Entra: no, their own
    delegated token is used; only with APPROVALS_SERVICE_IDENTITY_FALLBACK on and no token to
    be had now would the portal's identity stand in."""
    if _entra_account(user) is None:
        return True
    if not settings.APPROVALS_SERVICE_IDENTITY_FALLBACK:
        return False
    try:
        return not _delegated_token(user)
    except Exception:  # Entra unreachable: assume the fallback would be used
        logger.warning("could not ask Entra for %s's token", user_display_name(user))
        return True


def _signed_in_recently(authenticated_at: datetime | None) -> bool:
    if authenticated_at is None:
        return False
    window = timedelta(minutes=settings.APPROVALS_PROD_REAUTH_MINUTES)
    return timezone.now() - authenticated_at <= window


def qa_succeeded(approval: ApprovalRequest) -> bool:
    """QA went through for the same version: this run's QA stage, or (for a registered
    version) any run's QA stage that deployed it."""
    stages = RunStage.objects.filter(environment=Environment.QA, result="succeeded")
    if approval.model_version_id:
        match = Q(run__model_version_id=approval.model_version_id)
        if approval.run_id:
            match |= Q(run_id=approval.run_id)
        return stages.filter(match).exists()
    if approval.run_id:
        return stages.filter(run_id=approval.run_id).exists()
    return False


def decision_role_check(*, approval_id: int, user, status: str = "", via: str = "web") -> None:
    """Refuse (audited) anyone without the approver role before their input is read, so the
    page and the API answer a wrong role's attempt with the same 403 and the same audit row."""
    if Role.APPROVER in user_roles(user):
        return
    refusal = DecisionRefused("not_an_approver", NOT_AN_APPROVER)
    decision_refusal_record(
        approval_id=approval_id, user=user, status=status, refusal=refusal, via=via
    )
    raise refusal


def _decision_input_check(status: str, comment: str) -> None:
    if status not in DecisionStatus.values:
        raise DecisionRefused("invalid_status", "Choose approve or reject.", http_status=400)
    if status == DecisionStatus.REJECTED and not comment:
        raise DecisionRefused(
            "comment_required", "A rejection needs a comment saying why.", http_status=400
        )
    if len(comment) > settings.APPROVALS_COMMENT_MAX_LENGTH:
        raise DecisionRefused(
            "comment_too_long",
            f"Keep the comment under {settings.APPROVALS_COMMENT_MAX_LENGTH} characters.",
            http_status=400,
        )


def _decision_rules_check(approval: ApprovalRequest, user, authenticated_at) -> None:
    for rule in decision_rules(approval=approval, user=user, authenticated_at=authenticated_at):
        if not rule.ok:
            raise rule.refusal()


def approval_decide(
    *,
    approval_id: int,
    user,
    status: str,
    comment: str = "",
    authenticated_at: datetime | None = None,
    via: str = "web",
    dry_run: bool = False,
) -> Decision | None:
    """Record a person's decision with its outbox message and audit row, in one transaction,
    and queue its delivery. Raises ``DecisionRefused`` (audited) when a rule says no.

    ``dry_run``: check and audit exactly the same, but record nothing and return None (the
    page's "are you sure?" step, so its refusals are recorded like every other)."""
    comment = (comment or "").strip()
    try:
        _decision_input_check(status, comment)
        if dry_run:
            approval = ApprovalRequest.objects.select_related(
                "run", "model_version", "catalog_model"
            ).get(pk=approval_id)
            _decision_rules_check(approval, user, authenticated_at)
            return None
        with transaction.atomic():
            approval = (
                ApprovalRequest.objects.select_for_update(of=("self",))
                .select_related("run", "model_version", "catalog_model")
                .get(pk=approval_id)
            )
            _decision_rules_check(approval, user, authenticated_at)
            decision = _decision_write(approval, user, status, comment, via)
    except DecisionRefused as refusal:
        decision_refusal_record(
            approval_id=approval_id, user=user, status=status, refusal=refusal, via=via
        )
        raise
    message_id = decision.outbox.pk
    transaction.on_commit(lambda: outbox_enqueue(message_id=message_id))
    return decision


def _decision_write(approval, user, status, comment, via) -> Decision:
    now = timezone.now()
    name = user_display_name(user)
    decision = Decision.objects.create(
        approval=approval,
        user=user,
        user_name=name[:300],
        status=status,
        comment=comment,
        request_id=(get_request_id() or "")[:100],
        via=via,
    )
    ado_comment = f"{comment}\n\n— {name} ({PORTAL_MARK} {decision.pk})".strip()
    message = OutboxMessage.objects.create(
        decision=decision,
        approval=approval,
        payload=[{"approvalId": approval.ado_id, "status": status, "comment": ado_comment}],
        next_attempt_at=now,
    )
    approvals_so_far = approval.decisions.filter(status=DecisionStatus.APPROVED).count()
    closes = status == DecisionStatus.REJECTED or (
        approvals_so_far >= approval.min_required_approvers
    )
    if closes:
        approval.status = status
        approval.decided_at = now
        approval.decided_by = name[:300]
        approval.decided_in = DecidedIn.PORTAL
        approval.save(update_fields=["status", "decided_at", "decided_by", "decided_in"])
    verb = "Approved" if status == DecisionStatus.APPROVED else "Rejected"
    audit_record(
        action=AuditAction.DECISION_MADE,
        actor=user,
        approval=approval,
        decision=decision,
        message=" ".join(filter(None, (verb, approval.environment, "deployment")))
        + (f": {comment}" if comment else ""),
        detail={
            "status": status,
            "outbox_message": message.pk,
            "approvals_so_far": approvals_so_far,
            "required": approval.min_required_approvers,
            "closes_request": closes,
            "via": via,
        },
        at=now,
    )
    return decision


def decision_refusal_record(
    *, approval_id, user, status: str, refusal: DecisionRefused, via: str
) -> None:
    """The audit row of a refused decision attempt: the one way the page's and the API's
    refusals (bad input, a rule, a wrong role) are recorded."""
    approval = (
        ApprovalRequest.objects.filter(pk=approval_id).select_related("catalog_model").first()
    )
    what = f"Refused to record '{status}'" if status else "Refused a decision"
    try:
        audit_record(
            action=AuditAction.DECISION_REFUSED,
            actor=user,
            approval=approval,
            message=f"{what}: {refusal.message}",
            detail={"code": refusal.code, "status": status, "via": via},
        )
    except Exception:  # the refusal stands even if its audit row cannot be written
        logger.exception("could not audit a refused decision on approval %s", approval_id)


# Outbox ---------------------------------------------------------------------------------------


def _enqueue(task, *args) -> bool:
    """Publish a task; if the broker is down, say so and let the sweep pick it up later.

    ``ignore_result``: nobody reads these results (the outbox row is the record), and with a
    result backend on a Redis that is down, subscribing to the result retries for 20 s in
    the request that made the decision before failing."""
    try:
        task.apply_async(args=args, retry=False, ignore_result=True)
        return True
    except Exception as exc:  # broker down: the message waits in the database
        logger.warning("could not queue %s%r (%s); the outbox sweep will", task.name, args, exc)
        return False


def outbox_enqueue(*, message_id: int) -> bool:
    from .tasks import deliver_decision

    return _enqueue(deliver_decision, message_id)


@dataclass(frozen=True)
class DeliveryOutcome:
    state: str  # an OutboxState, or "busy" (someone else holds it) / "missing"
    retry_in: float | None = None  # seconds, when it should be tried again
    detail: str = ""


def _backoff(attempts: int, retry_after: float | None) -> float:
    base = settings.APPROVALS_DELIVERY_BACKOFF_SECONDS
    cap = settings.APPROVALS_DELIVERY_BACKOFF_MAX_SECONDS
    delay = min(cap, base * (2 ** max(attempts - 1, 0)))
    delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter
    return max(delay, retry_after or 0)


def _claim(message_id: int) -> tuple[OutboxMessage | None, float | None]:
    """Take the message for one delivery attempt (a conditional UPDATE, so two workers can
    never both hold it). Returns (message, None) or (None, seconds until it may be free)."""
    now = timezone.now()
    claim = timedelta(seconds=settings.APPROVALS_DELIVERY_CLAIM_SECONDS)
    from django.db.models import F

    taken = (
        OutboxMessage.objects.filter(pk=message_id, state=OutboxState.QUEUED)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + claim, attempts=F("attempts") + 1, last_attempt_at=now)
    )
    if taken:
        message = OutboxMessage.objects.select_related(
            "decision__user", "approval__project", "approval__catalog_model"
        ).get(pk=message_id)
        return message, None
    current = OutboxMessage.objects.filter(pk=message_id).first()
    if current is None or current.state != OutboxState.QUEUED:
        return None, None
    wait = (current.claimed_until - now).total_seconds() if current.claimed_until else 1.0
    return None, max(wait, 1.0)


def _ours(data: dict, message: OutboxMessage) -> dict | None:
    """The step of ADO's approval that carries this decision, if ADO already has it."""
    mark = f"{PORTAL_MARK} {message.decision_id})"
    for step in data.get("steps") or []:
        if mark in str(step.get("comment") or ""):
            return step
        for entry in step.get("history") or []:
            if mark in str(entry.get("comment") or ""):
                return step
    return None


IDENTITY_PORTAL = "portal"  # the portal's own credentials (PAT or service principal)
IDENTITY_USER = "user"  # the approver's delegated Entra token
IDENTITY_FALLBACK = "fallback"  # the portal's credentials for want of the approver's token
IDENTITY_NEEDS_SIGNIN = "needs_signin"  # nothing to send with until the approver signs in


@dataclass(frozen=True)
class DeliveryIdentity:
    kind: str
    token: str | None = field(default=None, repr=False)
    reason: str = ""


def _entra_account(user):
    """The user's Entra identity (portal.models.EntraAccount), or None for local accounts and
    while Entra sign-in is not configured (then everyone's decisions go as the portal's)."""
    if user is None or not getattr(user, "pk", None):
        return None
    if not entra_sign_in_enabled():
        return None
    return getattr(user, "entra_account", None)  # the missing one-to-one raises AttributeError


def _delegated_token(user) -> str | None:
    """The user's ADO access token from their server-side MSAL cache (refreshed as needed)."""
    return delegated_ado_token(user)


def _is_the_approver(user, actual: dict) -> bool:
    account = _entra_account(user)
    if account is None or not actual:
        return False
    if actual.get("id") and actual["id"].lower() == (account.object_id or "").lower():
        return True
    unique = (actual.get("unique_name") or "").lower()
    return bool(unique) and unique == (account.preferred_username or "").lower()


def _delivery_identity(message: OutboxMessage) -> DeliveryIdentity:
    """Whose identity this decision goes to ADO under. Local accounts: the portal's. People
    who signed in with Entra: their own delegated token; without one, the portal's when the
    operator allows the fallback (and ADO has not already counted the portal on this
    approval), else the decision waits for their sign-in."""
    user = message.decision.user
    if _entra_account(user) is None:
        return DeliveryIdentity(IDENTITY_PORTAL)
    token = _delegated_token(user)
    if token:
        return DeliveryIdentity(IDENTITY_USER, token=token)
    name = message.decision.user_name
    reason = f"no Azure DevOps token for {name}: their sign-in has lapsed or was revoked"
    if not settings.APPROVALS_SERVICE_IDENTITY_FALLBACK:
        return DeliveryIdentity(
            IDENTITY_NEEDS_SIGNIN,
            reason=f"Waiting for {name} to sign in again: {reason}. Once they do, it is sent "
            "under their own name.",
        )
    taken = [
        d
        for d in message.approval.decisions.exclude(pk=message.decision_id).select_related(
            "outbox", "user"
        )
        if _decision_sent_as_portal(d, delivered_only=True)
    ]
    if taken:
        return DeliveryIdentity(
            IDENTITY_NEEDS_SIGNIN,
            reason=f"Waiting for {name} to sign in again: {reason}, and the portal's own "
            f"identity already gave {taken[0].user_name}'s decision on this approval, which "
            "ADO counts once.",
        )
    return DeliveryIdentity(IDENTITY_FALLBACK, reason=reason)


def _decision_sent_as_portal(decision: Decision, *, delivered_only: bool = False) -> bool:
    """Whether ``decision`` reached (or will reach) ADO under the portal's own identity."""
    outbox = getattr(decision, "outbox", None)
    if outbox is not None and outbox.state == OutboxState.DELIVERED:
        return (outbox.ado_outcome or {}).get("identity", IDENTITY_PORTAL) != IDENTITY_USER
    if delivered_only:
        return False
    return delivers_with_portal_identity(decision.user)


def outbox_deliver(*, message_id: int, client: ado.AdoClient | None = None) -> DeliveryOutcome:
    """One delivery attempt: claim, read the approval in ADO, PATCH only if needed, record."""
    message, busy_for = _claim(message_id)
    if message is None:
        if busy_for is not None:
            return DeliveryOutcome("busy", retry_in=busy_for)
        return DeliveryOutcome("missing")
    approval = message.approval
    try:
        client = client or ado.delivery_client(approval.project)
    except ImproperlyConfigured as exc:  # no credentials: visible, not a silent loop
        return _failed(message, f"The portal has no ADO credentials: {exc}")
    sent = False
    identity: DeliveryIdentity | None = None
    try:
        current = client.get_approval(approval.ado_id, expand_steps=True)
        step = _ours(current, message)
        if step is None and current.get("status") in OPEN_STATUSES:
            try:
                identity = _delivery_identity(message)
            except Exception as exc:  # Entra unreachable: try again later, nothing sent
                logger.warning("no delegated token for outbox message %s: %s", message.pk, exc)
                return _retry_later(
                    message, f"Microsoft Entra ID did not answer ({type(exc).__name__})", None
                )
            if identity.kind == IDENTITY_NEEDS_SIGNIN:
                return _needs_signin(message, identity.reason)
            sent = True
            answer = client.update_approvals(list(message.payload), bearer_token=identity.token)
            current = next(
                (a for a in answer if str(a.get("id", "")).lower() == approval.ado_id), current
            )
            step = _ours(current, message) or {"status": message.decision.status}
        if step is not None:
            return _delivered(message, current, step, sent, identity)
        return _already_decided(message, current)
    except ado.AdoBadRequest as exc:
        # ADO refused the PATCH: most often someone decided it in ADO in the meantime.
        try:
            current = client.get_approval(approval.ado_id, expand_steps=True)
        except ado.AdoError:
            current = None
        step = _ours(current, message) if current is not None else None
        if step is not None:
            return _delivered(message, current, step, sent, identity)
        if current is not None and current.get("status") not in OPEN_STATUSES:
            return _already_decided(message, current)
        return _failed(message, f"ADO refused the decision: {exc}")
    except ado.AdoNotFound as exc:
        return _failed(message, f"ADO no longer has this approval (deleted or moved): {exc}")
    except ado.AdoAuthError as exc:
        if sent and identity is not None and identity.kind == IDENTITY_USER:
            name = message.decision.user_name
            if exc.status == 401:
                return _needs_signin(
                    message,
                    f"Azure DevOps did not accept {name}'s sign-in ({exc}); signing in again "
                    "sends the decision.",
                )
            return _failed(
                message,
                f"Azure DevOps refused {name}'s own permission to decide this approval ({exc}).",
            )
        return _failed(
            message,
            f"ADO refused the portal's credentials ({exc}); fix them, then retry the delivery.",
        )
    except (ado.AdoThrottled, ado.AdoUnavailable) as exc:
        return _retry_later(message, str(exc), exc.retry_after)
    except ado.AdoError as exc:
        return _retry_later(message, str(exc), exc.retry_after)


def _attempt_audit(message, action, text, detail=None) -> None:
    audit_record(
        action=action,
        actor_name=DELIVERY_ACTOR,
        approval=message.approval,
        decision=message.decision,
        message=text,
        detail={"outbox_message": message.pk, "attempt": message.attempts, **(detail or {})},
    )


def _delivered(
    message: OutboxMessage,
    current: dict,
    step: dict,
    sent: bool,
    identity: DeliveryIdentity | None = None,
) -> DeliveryOutcome:
    actual = _identity(step.get("actualApprover")) if step.get("actualApprover") else {}
    if identity is not None and sent:
        sent_as = IDENTITY_USER if identity.kind == IDENTITY_USER else IDENTITY_PORTAL
    else:  # found in ADO by its marker: whose name ADO shows says how it went
        sent_as = IDENTITY_USER if _is_the_approver(message.decision.user, actual) else "portal"
    outcome = {
        "ado_status": current.get("status"),
        "step_status": step.get("status"),
        "actual_approver": actual.get("name") or actual.get("unique_name") or "",
        "actual_approver_id": actual.get("id") or "",
        "patched_now": sent,
        "identity": sent_as,
    }
    if identity is not None and identity.kind == IDENTITY_FALLBACK and sent:
        outcome["fallback_reason"] = identity.reason
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxState.DELIVERED,
            delivered_at=timezone.now(),
            claimed_until=None,
            last_error="",
            ado_outcome=outcome,
        )
        _attempt_audit(
            message,
            AuditAction.DELIVERY_DELIVERED,
            "Delivered to Azure DevOps"
            + (f" as {outcome['actual_approver']}" if outcome["actual_approver"] else "")
            + ("" if sent else " (ADO already had it; nothing re-sent)"),
            outcome,
        )
        if "fallback_reason" in outcome:
            _attempt_audit(
                message,
                AuditAction.DELIVERY_FALLBACK,
                f"Sent with the portal's own identity instead of {message.decision.user_name}'s "
                f"({identity.reason}); ADO shows the portal as the approver, and "
                f"{message.decision.user_name}'s name is in the comment.",
                {"reason": identity.reason, "actual_approver": outcome["actual_approver"]},
            )
    approval_apply(project=message.approval.project, data=current)
    return DeliveryOutcome(OutboxState.DELIVERED)


def _needs_signin(message: OutboxMessage, reason: str) -> DeliveryOutcome:
    """The approver's own token cannot be had: the decision waits, not swept, until they
    sign in again (``outbox_requeue_after_sign_in``)."""
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxState.NEEDS_SIGNIN, claimed_until=None, last_error=reason[:2000]
        )
        _attempt_audit(message, AuditAction.DELIVERY_NEEDS_SIGNIN, reason[:2000])
    logger.info("outbox message %s waits for its approver's sign-in: %s", message.pk, reason)
    return DeliveryOutcome(OutboxState.NEEDS_SIGNIN, detail=reason)


def outbox_requeue_after_sign_in(*, user) -> list[int]:
    """``user`` signed in again: their decisions waiting for it go back to the queue."""
    requeued = []
    with transaction.atomic():
        waiting = list(
            OutboxMessage.objects.select_for_update(of=("self",))
            .filter(state=OutboxState.NEEDS_SIGNIN, decision__user=user)
            .select_related("approval__catalog_model", "decision")
        )
        now = timezone.now()
        for message in waiting:
            message.state = OutboxState.QUEUED
            message.next_attempt_at = now
            message.claimed_until = None
            message.save(update_fields=["state", "next_attempt_at", "claimed_until"])
            audit_record(
                action=AuditAction.DELIVERY_RETRY_REQUESTED,
                actor=user,
                approval=message.approval,
                decision=message.decision,
                message="Signed in again: the decision that waited for it is sent now.",
                detail={"outbox_message": message.pk, "after": "sign_in"},
            )
            requeued.append(message.pk)
    for message_id in requeued:
        transaction.on_commit(lambda message_id=message_id: outbox_enqueue(message_id=message_id))
    return requeued


def _already_decided(message: OutboxMessage, current: dict) -> DeliveryOutcome:
    status = str(current.get("status") or "")
    steps = _steps(current)
    who = ((_decider(steps, status) or {}).get("actual") or {}).get("name", "")
    label = ApprovalStatus(status).label.lower() if status in ApprovalStatus.values else status
    text = f"Not sent: the approval was already {label} in Azure DevOps" + (
        f" by {who}" if who else ""
    )
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxState.ALREADY_DECIDED,
            claimed_until=None,
            last_error=text,
            ado_outcome={"ado_status": status, "decided_by": who},
        )
        _attempt_audit(message, AuditAction.DELIVERY_ALREADY_DECIDED, text, {"ado_status": status})
    approval_apply(project=message.approval.project, data=current)
    return DeliveryOutcome(OutboxState.ALREADY_DECIDED, detail=text)


def _failed(message: OutboxMessage, reason: str) -> DeliveryOutcome:
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxState.FAILED, claimed_until=None, last_error=reason[:2000]
        )
        _attempt_audit(message, AuditAction.DELIVERY_FAILED, reason[:2000])
    logger.warning("delivery of outbox message %s failed: %s", message.pk, reason)
    return DeliveryOutcome(OutboxState.FAILED, detail=reason)


def _retry_later(message: OutboxMessage, reason: str, retry_after: float | None):
    delay = _backoff(message.attempts, retry_after)
    with transaction.atomic():
        OutboxMessage.objects.filter(pk=message.pk).update(
            claimed_until=None,
            last_error=reason[:2000],
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        _attempt_audit(
            message,
            AuditAction.DELIVERY_ATTEMPT,
            f"Attempt {message.attempts} did not reach ADO ({reason[:300]}); "
            f"next try in {delay:.0f} s.",
            {"retry_in_seconds": round(delay, 1)},
        )
    logger.info("outbox message %s: %s; retrying in %.1f s", message.pk, reason, delay)
    return DeliveryOutcome(OutboxState.QUEUED, retry_in=delay, detail=reason)


def outbox_sweep() -> list[int]:
    """Re-queue messages that have been due for over a minute with no worker on them: their
    task was lost (broker down when it was queued, a worker killed mid-delivery)."""
    now = timezone.now()
    stuck_since = now - timedelta(seconds=settings.APPROVALS_OUTBOX_STUCK_SECONDS)
    ids = list(
        OutboxMessage.objects.filter(state=OutboxState.QUEUED, next_attempt_at__lte=stuck_since)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
    requeued = []
    for message_id in ids:
        # Due again a minute from now, so the next sweep does not queue it twice meanwhile.
        OutboxMessage.objects.filter(pk=message_id).update(next_attempt_at=now)
        if outbox_enqueue(message_id=message_id):
            requeued.append(message_id)
    if requeued:
        logger.info("outbox sweep re-queued %d message(s): %s", len(requeued), requeued)
    return requeued


def outbox_retry(*, message_id: int, user) -> OutboxMessage:
    """An admin's retry of a failed delivery: back to the queue, audited."""
    if Role.ADMIN not in user_roles(user):  # the page, the API and the admin agree
        raise DecisionRefused(
            "not_an_admin", "Only an admin can retry a failed delivery.", http_status=403
        )
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(of=("self",))
            .select_related("approval__catalog_model", "decision")
            .get(pk=message_id)
        )
        if message.state != OutboxState.FAILED:
            raise DecisionRefused(
                "not_failed",
                f"Only a failed delivery can be retried; this one is "
                f"{message.get_state_display().lower()}.",
                http_status=409,
            )
        message.state = OutboxState.QUEUED
        message.next_attempt_at = timezone.now()
        message.claimed_until = None
        message.save(update_fields=["state", "next_attempt_at", "claimed_until"])
        audit_record(
            action=AuditAction.DELIVERY_RETRY_REQUESTED,
            actor=user,
            approval=message.approval,
            decision=message.decision,
            message=f"Retry of the failed delivery requested (last error: {message.last_error})",
            detail={"outbox_message": message.pk},
        )
    transaction.on_commit(lambda: outbox_enqueue(message_id=message_id))
    return message


# Schedules ------------------------------------------------------------------------------------


def projects_sync_enqueue() -> list[int]:
    """Beat's entry point: one approvals sync task per enabled ADO project."""
    from .tasks import sync_project_approvals

    ids = list(AdoProject.objects.filter(enabled=True).values_list("pk", flat=True))
    for project_id in ids:
        _enqueue(sync_project_approvals, project_id)
    return ids


def hook_received(sender, *, project: AdoProject, event_type: str, resource: dict, **kwargs):
    """pipelines' hook endpoint accepted an approval event: re-read that approval (or, when
    the payload names none, poll the project). The payload itself is never trusted."""
    if not event_type.startswith("ms.vss-pipelinechecks-events."):
        return
    from .tasks import refresh_approval, sync_project_approvals

    approval_id = str(((resource or {}).get("approval") or {}).get("id") or "")
    if approval_id:
        _enqueue(refresh_approval, project.pk, approval_id)
    else:
        _enqueue(sync_project_approvals, project.pk)


# Notifications --------------------------------------------------------------------------------


def approval_recipients(approval: ApprovalRequest) -> list[str]:
    """Who to tell: the named approvers ADO lists (by e-mail), else the portal's approvers."""
    from django.contrib.auth import get_user_model

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
    from django.urls import reverse

    return settings.PORTAL_BASE_URL.rstrip("/") + reverse(
        "approvals:detail", kwargs={"pk": approval.pk}
    )


def _notification_text(approval: ApprovalRequest, kind: str) -> tuple[str, str]:
    what = _model_name(approval) or approval.pipeline_name or "a model"
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
    body = "\n\n".join(
        part
        for part in (
            lead,
            f"Requested by: {approval.requested_by}" if approval.requested_by else "",
            f"Instructions: {approval.instructions}" if approval.instructions else "",
            f"Review and decide: {_approval_url(approval)}",
        )
        if part
    )
    return subject, body


def _notify(approval: ApprovalRequest, kind: str) -> dict:
    """Send one kind of notice about one approval on each configured channel, once."""
    from django.core.mail import send_mail

    sent = {}
    subject, body = _notification_text(approval, kind)
    channels = ["email"] + (["teams"] if settings.APPROVALS_TEAMS_WEBHOOK_URL else [])
    for channel in channels:
        from .models import Notification

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
    import requests

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
