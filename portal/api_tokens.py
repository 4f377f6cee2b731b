"""Portal API tokens: made by a person (or an admin for them) for a script, shown once and
kept only as a SHA-256 digest, acting as their owner with the owner's roles (``read`` scope:
reads only; ``write``: also the writes the owner's role allows), until they expire or are
revoked. Creating, revoking and a refused use go to the audit trail through
``core.signals.api_access_event`` (approvals records it); a use is recorded on the token at
most once a minute (``last_used_at``, ``last_used_ip``) with an audit row each time.

A token reads ``mlpt_<key id><secret>``: the prefix tells it from an Entra ID access token
(a JWT) in ``Authorization: Bearer``, the key id (8 characters) names it to people and the
audit trail without revealing it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.client_address import client_ip
from core.errors import PortalError
from core.machine_access import PORTAL_TOKEN, CredentialRefused, MachineCredential
from core.signals import api_access_event

from .models import ApiToken, ApiTokenScope

PREFIX = "mlpt_"
KEY_ID_LENGTH = 8
USE_RECORD_INTERVAL = timedelta(minutes=1)


class TokenRequestInvalid(PortalError):
    """A token request the form should have caught (bad scope or lifetime)."""

    code = "invalid_token_request"


def digest_of(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def is_portal_token(raw: str) -> bool:
    return raw.startswith(PREFIX)


def lifetime_days_default() -> int:
    return settings.PORTAL_API_TOKEN_DEFAULT_DAYS


def lifetime_days_max() -> int:
    return settings.PORTAL_API_TOKEN_MAX_DAYS


def _facts(token: ApiToken) -> dict:
    return {
        "kind": PORTAL_TOKEN,
        "token_id": token.key_id,
        "token_name": token.name,
        "scope": token.scope,
        "owner": token.user.get_username(),
    }


def token_create(
    *,
    user,
    name: str,
    scope: str = ApiTokenScope.READ,
    days: int | None = None,
    by=None,
    request=None,
) -> tuple[ApiToken, str]:
    """Make a token for ``user`` (by them, or by an admin ``by``) and return it with its
    plain text, which is never stored and cannot be shown again."""
    name = (name or "").strip()
    if not name:
        raise TokenRequestInvalid("Give the token a name saying what it is for.")
    if scope not in ApiTokenScope.values:
        raise TokenRequestInvalid("The scope is read or write.")
    days = lifetime_days_default() if days is None else days
    if not 1 <= days <= lifetime_days_max():
        raise TokenRequestInvalid(f"A token lives from 1 to {lifetime_days_max()} days.")
    for _attempt in range(3):  # a key id already taken (eight random characters: rare)
        raw = PREFIX + secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user,
                    name=name[:100],
                    key_id=raw[len(PREFIX) : len(PREFIX) + KEY_ID_LENGTH],
                    digest=digest_of(raw),
                    scope=scope,
                    created_by=by or user,
                    expires_at=timezone.now() + timedelta(days=days),
                )
            break
        except IntegrityError:
            continue
    else:
        raise PortalError("The token could not be made; try again.", code="token_conflict")
    api_access_event.send(
        sender=ApiToken,
        request=request,
        event="token_created",
        user=user,
        actor=by or user,
        reason="",
        message=f"API token {token.key_id}… '{token.name}' ({token.scope}) made for "
        f"{user.get_username()}, expiring {token.expires_at:%Y-%m-%d}",
        facts={**_facts(token), "expires_at": token.expires_at.isoformat()},
    )
    return token, raw


def token_revoke(*, token: ApiToken, by, request=None) -> bool:
    """Revoke a token (audited); False when it was revoked already."""
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=by
    )
    if not updated:
        return False
    token.refresh_from_db()
    api_access_event.send(
        sender=ApiToken,
        request=request,
        event="token_revoked",
        user=token.user,
        actor=by,
        reason="",
        message=f"API token {token.key_id}… '{token.name}' of {token.user.get_username()} revoked",
        facts=_facts(token),
    )
    return True


def tokens_of(user):
    return ApiToken.objects.filter(user=user).select_related("revoked_by", "created_by")


def token_authenticate(raw: str, request) -> tuple[object, MachineCredential]:
    """The owner and credential of a presented token, or ``CredentialRefused`` (audited)."""
    token = ApiToken.objects.select_related("user").filter(digest=digest_of(raw)).first()
    now = timezone.now()
    if token is None:
        raise refused(request, None, "unknown_token", "This API token is not known to the portal.")
    if token.is_revoked:
        raise refused(
            request,
            token,
            "revoked",
            f"This API token ({token.key_id}…) was revoked on {token.revoked_at:%Y-%m-%d %H:%M} "
            "UTC; make a new one on your API tokens page.",
        )
    if token.is_expired(now):
        raise refused(
            request,
            token,
            "expired",
            f"This API token ({token.key_id}…) expired on {token.expires_at:%Y-%m-%d %H:%M} "
            "UTC; make a new one on your API tokens page.",
        )
    if not token.user.is_active:
        raise refused(
            request, token, "inactive", "The account this API token belongs to is disabled."
        )
    ip = client_ip(request) or None
    _record_use(token, ip, now, request)
    credential = MachineCredential(
        kind=PORTAL_TOKEN,
        token_id=token.key_id,
        label=f"{token.key_id}… '{token.name}'",
        scope=token.scope,
        facts={"token_name": token.name, "scope": token.scope},
    )
    return token.user, credential


def _record_use(token: ApiToken, ip: str | None, now, request) -> None:
    """Last use on the row, and an audit row, at most once a minute per token (a conditional
    UPDATE: concurrent calls record it once)."""
    recorded = (
        ApiToken.objects.filter(pk=token.pk)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - USE_RECORD_INTERVAL))
        .update(last_used_at=now, last_used_ip=ip)
    )
    if recorded:
        api_access_event.send(
            sender=ApiToken,
            request=request,
            event="used",
            user=token.user,
            actor=None,
            reason="",
            message=f"API token {token.key_id}… '{token.name}' used",
            facts=_facts(token),
        )


def refused(request, token: ApiToken | None, reason: str, message: str) -> CredentialRefused:
    """The refusal to raise, audited (at most once a minute per token and reason, so a script
    retrying a dead token does not flood the trail)."""
    facts = _facts(token) if token is not None else {"kind": PORTAL_TOKEN}
    announce_refusal(
        request,
        user=token.user if token is not None else None,
        reason=reason,
        message=f"API call refused: {message}",
        facts=facts,
        once_key=f"{token.key_id if token else client_ip(request)}:{reason}",
    )
    return CredentialRefused(message, code=reason)


def announce_refusal(request, *, user, reason: str, message: str, facts: dict, once_key: str):
    """Send ``api_access_event`` for a refused token, once a minute per ``once_key`` (the
    shared cache decides; without it every refusal is announced)."""
    try:
        first = cache.add(f"api-refused:{once_key}"[:200], 1, timeout=60)
    except Exception:  # the cache is down: audit anyway
        first = True
    if first:
        api_access_event.send(
            sender=ApiToken,
            request=request,
            event="refused",
            user=user,
            actor=None,
            reason=reason,
            message=message,
            facts=facts,
        )
