"""Sign-ins in the audit trail: receivers of django.contrib.auth's signals and of
``core.signals.sign_in_denied`` (connected in ``approvals.apps``). A sign-in also sends the
person's decisions that waited for it (their delegated ADO token can be had again)."""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.db import transaction

from core.client_address import client_ip

from ..models import AuditAction
from .audit import audit_record, user_display_name
from .outbox import outbox_requeue_after_sign_in

logger = logging.getLogger(__name__)


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
