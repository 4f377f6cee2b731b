"""The one way the portal builds its HTTP sessions and msal applications, so every client
(Entra sign-in, the ADO client's service principal) gets the same timeout, TLS and
authority rules."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

import msal
import requests
from msal.authority import WELL_KNOWN_AUTHORITY_HOSTS


def http_session(
    *, timeout: float | tuple[float, float], verify: bool | str = True, retries: int = 1
) -> requests.Session:
    """A session whose every request carries ``timeout`` and ``verify`` (a CA bundle path for a
    TLS-inspecting proxy or a local stand-in), retrying a failed connection ``retries`` times.

    Per request, not on the session: a session-wide ``verify`` (what msal's own ``verify=``
    sets) loses to $REQUESTS_CA_BUNDLE from the environment (requests#3829)."""
    session = requests.Session()
    session.mount("https://", requests.adapters.HTTPAdapter(max_retries=retries))
    session.request = functools.partial(session.request, verify=verify, timeout=timeout)
    return session


def is_well_known_authority(authority: str) -> bool:
    """Whether the authority is one of Microsoft's own Entra hosts (any cloud)."""
    return (urlsplit(authority).hostname or "").lower() in WELL_KNOWN_AUTHORITY_HOSTS


def confidential_client(
    client_id: str,
    client_secret: str,
    authority: str,
    *,
    timeout: float | tuple[float, float],
    verify: bool | str = True,
    token_cache: msal.TokenCache | None = None,
    http_cache: dict | None = None,
) -> msal.ConfidentialClientApplication:
    """An msal confidential client. Known Microsoft hosts skip instance discovery anyway;
    another host is configuration (a sovereign cloud, a local stand-in), trusted as given
    instead of being checked against login.microsoftonline.com.

    Raises what msal raises while it reads the authority's OIDC discovery document:
    ``requests.RequestException`` (unreachable) or ``ValueError`` (bad URL, unknown tenant)."""
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=client_secret,
        authority=authority,
        token_cache=token_cache,
        http_client=http_session(timeout=timeout, verify=verify),
        http_cache=http_cache,
        instance_discovery=None if is_well_known_authority(authority) else False,
    )
