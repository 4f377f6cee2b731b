"""Whose identity a decision reaches ADO under: the approver's own delegated Entra token, or
the portal's credentials (PAT or service principal). ADO lets one identity act once per
approval, which the rules (``one_identity``) and the delivery both have to respect."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings

from core.identity import delegated_ado_token, entra_sign_in_enabled

from ..models import Decision, OutboxMessage, OutboxState
from .audit import user_display_name

logger = logging.getLogger(__name__)

IDENTITY_PORTAL = "portal"  # the portal's own credentials (PAT or service principal)
IDENTITY_USER = "user"  # the approver's delegated Entra token
IDENTITY_FALLBACK = "fallback"  # the portal's credentials for want of the approver's token
IDENTITY_NEEDS_SIGNIN = "needs_signin"  # nothing to send with until the approver signs in


@dataclass(frozen=True)
class DeliveryIdentity:
    kind: str
    token: str | None = field(default=None, repr=False)
    reason: str = ""


def entra_account(user):
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


def is_the_approver(user, actual: dict) -> bool:
    account = entra_account(user)
    if account is None or not actual:
        return False
    if actual.get("id") and actual["id"].lower() == (account.object_id or "").lower():
        return True
    unique = (actual.get("unique_name") or "").lower()
    return bool(unique) and unique == (account.preferred_username or "").lower()


def delivery_identity(message: OutboxMessage) -> DeliveryIdentity:
    """Whose identity this decision goes to ADO under. Local accounts: the portal's. People
    who signed in with Entra: their own delegated token; without one, the portal's when the
    operator allows the fallback (and ADO has not already counted the portal on this
    approval), else the decision waits for their sign-in."""
    user = message.decision.user
    if entra_account(user) is None:
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
        if decision_sent_as_portal(d, delivered_only=True)
    ]
    if taken:
        return DeliveryIdentity(
            IDENTITY_NEEDS_SIGNIN,
            reason=f"Waiting for {name} to sign in again: {reason}, and the portal's own "
            f"identity already gave {taken[0].user_name}'s decision on this approval, which "
            "ADO counts once.",
        )
    return DeliveryIdentity(IDENTITY_FALLBACK, reason=reason)


def decision_sent_as_portal(decision: Decision, *, delivered_only: bool = False) -> bool:
    """Whether ``decision`` reached (or will reach) ADO under the portal's own identity."""
    outbox = getattr(decision, "outbox", None)
    if outbox is not None and outbox.state == OutboxState.DELIVERED:
        return (outbox.ado_outcome or {}).get("identity", IDENTITY_PORTAL) != IDENTITY_USER
    if delivered_only:
        return False
    return delivers_with_portal_identity(decision.user)


def delivers_with_portal_identity(user=None) -> bool:
    """Whether ``user``'s decisions reach ADO with the portal's own credentials (PAT or
    service principal). ADO lets one identity act once per approval, so two such decisions
    cannot both count on a check needing several approvers (rule ``one_identity``).

    Local accounts (and ``user=None``): yes. People who signed in with Entra: no, their own
    delegated token is used; only with APPROVALS_SERVICE_IDENTITY_FALLBACK on and no token to
    be had now would the portal's identity stand in."""
    if entra_account(user) is None:
        return True
    if not settings.APPROVALS_SERVICE_IDENTITY_FALLBACK:
        return False
    try:
        return not _delegated_token(user)
    except Exception:  # Entra unreachable: assume the fallback would be used
        logger.warning("could not ask Entra for %s's token", user_display_name(user))
        return True
