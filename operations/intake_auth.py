"""Who may send signals (docs/operations.md, "Signals in", Authentication).

Either a machine token (the API's default authentication: a portal API token with write
scope, an Entra ID app token) or a signed-in session (with its CSRF token) of an admin or a
data scientist; or, for senders that can only send a key or sign, the source's shared secret
from ``OPERATIONS_SIGNAL_SECRETS``, given as the ``X-Signal-Key`` header, the ``?key=``
query, the password of HTTP Basic, or an ``X-Signal-Signature: sha256=<hex>`` HMAC-SHA256 of
the raw body. A bad or missing credential is a 401 with ``WWW-Authenticate``; a principal
without the role (or a read-only token) a 403.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings

from core.errors import PortalError
from core.machine_access import READ_ONLY_MESSAGE, machine_credential
from core.roles import Role, user_has_role

SENDER_ROLES = (Role.ADMIN, Role.DATA_SCIENTIST)
REALM = "MLOps Portal signals"


@dataclass(frozen=True)
class SignalSender:
    name: str  # for RawSignal.sender
    via: str  # "shared secret", "signature", "token", "session"


class SignalAuthRefused(PortalError):
    """No credential, or one that is not right: 401 with the ways to authenticate."""

    http_status = 401
    code = "not_authenticated"

    def www_authenticate(self) -> str:
        return f'Bearer realm="{REALM}", Basic realm="{REALM}", charset="UTF-8"'


class SignalSenderForbidden(PortalError):
    http_status = 403
    code = "permission_denied"


def secrets_for(slug: str) -> list[str]:
    return list((getattr(settings, "OPERATIONS_SIGNAL_SECRETS", {}) or {}).get(slug, []))


def signature_of(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def has_shared_credential(request) -> bool:
    return bool(
        request.headers.get("X-Signal-Signature")
        or request.headers.get("X-Signal-Key")
        or request.GET.get("key")
        or _basic(request) is not None
    )


def sender_authenticate(request, slug: str, body: bytes) -> SignalSender:
    """The sender of a DRF request to the ``slug`` endpoint, or a refusal (401/403)."""
    if has_shared_credential(request):
        return _shared_secret(request, slug, body)
    user = request.user  # DRF authenticates here: a bad bearer token raises its own 401
    if not getattr(user, "is_authenticated", False):
        raise SignalAuthRefused(
            "Authentication required: send a machine token (Authorization: Bearer ...) of an "
            f"admin or data scientist with write scope, or the shared secret of {slug} as the "
            "X-Signal-Key header, the ?key= query, the HTTP Basic password, or an "
            "X-Signal-Signature: sha256=<HMAC-SHA256 of the body>."
        )
    credential = machine_credential(request)
    if not user_has_role(user, *SENDER_ROLES):
        raise SignalSenderForbidden(
            f"{user.get_username()} may not send signals: that takes the admin or data "
            "scientist role (or the source's shared secret)."
        )
    if credential is not None and not credential.may_write:
        raise SignalSenderForbidden(READ_ONLY_MESSAGE)
    if credential is not None:
        return SignalSender(f"{user.get_username()} ({credential.describe()})"[:300], "token")
    return SignalSender(user.get_username(), "session")


def _shared_secret(request, slug: str, body: bytes) -> SignalSender:
    secrets = secrets_for(slug)
    if not secrets:
        raise SignalAuthRefused(
            f"No shared secret is configured for {slug} (OPERATIONS_SIGNAL_SECRETS): use a "
            "machine token, or ask an operator to set one."
        )
    signature = request.headers.get("X-Signal-Signature")
    if signature:
        if not signature.startswith("sha256="):
            raise SignalAuthRefused(
                "X-Signal-Signature must be sha256=<hex of HMAC-SHA256(secret, body)>."
            )
        if any(hmac.compare_digest(signature, signature_of(s, body)) for s in secrets):
            return SignalSender(f"{slug} (signed with its shared secret)", "signature")
        raise SignalAuthRefused(
            f"X-Signal-Signature does not match the body signed with a shared secret of {slug}."
        )
    basic = _basic(request)
    user, key = basic if basic is not None else ("", "")
    key = request.headers.get("X-Signal-Key") or request.GET.get("key") or key
    if key and any(hmac.compare_digest(key.encode(), s.encode()) for s in secrets):
        name = f"{slug} (shared secret" + (f", user {user}" if user else "") + ")"
        return SignalSender(name[:300], "shared secret")
    raise SignalAuthRefused(f"The key is not a shared secret of {slug}.")


def _basic(request) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "\x00invalid")  # refused: never equal to a secret
    user, _, password = decoded.partition(":")
    return user, password
