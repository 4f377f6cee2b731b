"""Whether people sign in with Microsoft Entra ID, and their delegated Azure DevOps token.

The sign-in itself (and the encrypted token caches it keeps) belongs to the portal, the top
layer; the approvals outbox, below it, needs only the token. So the portal registers its
provider here when it starts (``portal.apps``) and the apps ask this module, never the portal.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

_delegated_token_provider: Callable[[object], str | None] | None = None


def entra_sign_in_enabled() -> bool:
    return bool(
        settings.ENTRA_TENANT_ID and settings.ENTRA_CLIENT_ID and settings.ENTRA_CLIENT_SECRET
    )


def delegated_token_provider_register(provider: Callable[[object], str | None]) -> None:
    global _delegated_token_provider
    _delegated_token_provider = provider


def delegated_ado_token(user) -> str | None:
    """An ADO access token acting as ``user`` (a User or its pk), or None when there is none
    (no provider registered, no Entra sign-in, refresh refused, Entra unreachable)."""
    if _delegated_token_provider is None:
        return None
    return _delegated_token_provider(user)
