"""Who the portal is to ADO: a PAT, or Entra access tokens for a service principal.

The token provider goes through ``core.clients.confidential_client`` (the one msal factory),
and one provider per service principal and process shares msal's token cache.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.clients import confidential_client

from .errors import AdoAuthError, AdoUnavailable

#: Azure DevOps as an Entra ID resource; ``/.default`` = the permissions granted to the app.
ADO_RESOURCE_ID = "499b84ac-1321-427f-aa17-267ca6975798"
ADO_SCOPE = f"{ADO_RESOURCE_ID}/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"


@dataclass(frozen=True, repr=False)
class AdoCredentials:
    """Exactly one of a PAT or a provider of fresh Entra access tokens.

    A provider is called before every request (it should cache: msal does). A provider may
    also have an ``invalidate()`` method: the client calls it after a 401, before the one
    retry with a fresh token.
    """

    pat: str = field(default="", repr=False)
    bearer_token_provider: Callable[[], str] | None = field(default=None, repr=False)

    def __post_init__(self):
        if bool(self.pat) == (self.bearer_token_provider is not None):
            raise ValueError("AdoCredentials takes exactly one of pat or bearer_token_provider")

    @property
    def scheme(self) -> str:
        return "Basic" if self.pat else "Bearer"

    def __repr__(self) -> str:  # never the PAT
        kind = (
            "pat=<hidden>" if self.pat else f"bearer_token_provider={self.bearer_token_provider!r}"
        )
        return f"AdoCredentials({kind})"


class ServicePrincipalTokenProvider:
    """Access tokens for ADO from Entra ID's client-credentials flow, through msal.

    msal keeps the token in its in-memory cache and asks Entra ID again only when it nears
    expiry, so calling this before every request costs nothing. ``invalidate()`` drops the
    cached token (msal refuses ``force_refresh`` for this flow). The msal application (and its
    OIDC discovery request) is created on first use.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        verify: bool | str = True,
        timeout: float | tuple[float, float] = (5, 30),
    ):
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._verify = verify
        self._timeout = timeout
        self._app = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"ServicePrincipalTokenProvider(authority={self.authority!r}, "
            f"client_id={self.client_id!r})"
        )

    def _application(self):
        if self._app is None:
            try:
                self._app = confidential_client(
                    self.client_id,
                    self._client_secret,
                    self.authority,
                    timeout=self._timeout,
                    verify=self._verify,
                )
            except requests.RequestException as exc:
                raise AdoUnavailable(
                    f"Entra ID at {self.authority} could not be reached: {type(exc).__name__}"
                ) from exc
            except ValueError as exc:  # bad authority URL, unknown tenant (OIDC discovery 400)
                raise AdoAuthError(f"Entra ID authority {self.authority}: {exc}") from exc
        return self._app

    def __call__(self) -> str:
        with self._lock:
            app = self._application()
            try:
                result = app.acquire_token_for_client(scopes=[ADO_SCOPE])
            except requests.RequestException as exc:
                raise AdoUnavailable(
                    f"Entra ID token endpoint of {self.authority} could not be reached: "
                    f"{type(exc).__name__}"
                ) from exc
        if result and result.get("access_token"):
            return result["access_token"]
        result = result or {}
        raise AdoAuthError(
            result.get("error_description") or result.get("error") or "Entra ID issued no token",
            type_key=result.get("error", ""),
        )

    def invalidate(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()


_PROVIDERS: dict[tuple, ServicePrincipalTokenProvider] = {}
_PROVIDERS_LOCK = threading.Lock()


def service_principal_token_provider(
    tenant_id: str,
    client_id: str,
    client_secret: str,
    *,
    authority_host: str = DEFAULT_AUTHORITY_HOST,
    verify: bool | str = True,
) -> Callable[[], str]:
    """A provider of ADO access tokens for a service principal (client credentials).

    One provider per (tenant, client, secret, authority) and process, so every client shares
    msal's token cache: one token request per token lifetime, not one per client. ``verify``
    is passed to requests (a CA bundle path for a TLS-inspecting proxy or a test stand-in).
    Raises ``AdoAuthError`` with msal's ``error_description`` when Entra ID refuses.
    """
    digest = hashlib.sha256(client_secret.encode()).hexdigest()
    key = (tenant_id, client_id, digest, authority_host.rstrip("/").lower(), verify)
    with _PROVIDERS_LOCK:
        provider = _PROVIDERS.get(key)
        if provider is None:
            provider = ServicePrincipalTokenProvider(
                tenant_id,
                client_id,
                client_secret,
                authority_host=authority_host,
                verify=verify,
            )
            _PROVIDERS[key] = provider
        return provider


def credentials_from_settings() -> AdoCredentials:
    """``AZURE_DEVOPS_PAT`` if set, else the ``ENTRA_*`` service principal."""
    pat = getattr(settings, "AZURE_DEVOPS_PAT", "")
    if pat:
        return AdoCredentials(pat=pat)
    names = ("ENTRA_TENANT_ID", "ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET")
    values = {name: getattr(settings, name, "") for name in names}
    if all(values.values()):
        return AdoCredentials(
            bearer_token_provider=service_principal_token_provider(
                values["ENTRA_TENANT_ID"],
                values["ENTRA_CLIENT_ID"],
                values["ENTRA_CLIENT_SECRET"],
                authority_host=getattr(settings, "ENTRA_AUTHORITY_HOST", "")
                or DEFAULT_AUTHORITY_HOST,
            )
        )
    missing = [name for name, value in values.items() if not value]
    partly = f" ({', '.join(missing)} missing)" if len(missing) < len(names) else ""
    raise ImproperlyConfigured(
        "No Azure DevOps credentials: set AZURE_DEVOPS_PAT, or ENTRA_TENANT_ID, ENTRA_CLIENT_ID "
        f"and ENTRA_CLIENT_SECRET for a service principal{partly}."
    )
