"""Sign-in with Microsoft Entra ID: the one module that talks to Entra, through msal.

- ``initiate`` starts the authorization-code flow (msal adds PKCE, state and nonce) and keeps
  the flow in the session; ``complete`` redeems the code (msal checks state, nonce and, for a
  fresh sign-in, ``auth_time`` against ``max_age``) and returns the signed-in user, matched by
  tenant and object id (never by e-mail), with name, e-mail and roles refreshed
  (portal/entra_users.py).
- The same sign-in asks for the Azure DevOps resource, so the user's MSAL token cache (kept
  encrypted in ``EntraAccount``, server-side) yields a delegated ADO token later:
  ``delegated_ado_token(user)`` is what the approvals outbox calls from the worker.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from urllib.parse import urlencode

import msal
import requests
from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from core import clients
from core.identity import entra_sign_in_enabled
from core.sessions import AUTHENTICATED_AT_SESSION_KEY

from .entra_users import EntraUnavailable, SignInFailed, user_from_claims
from .models import EntraAccount, EntraSession

logger = logging.getLogger(__name__)

# The answer comes back in the query string, not form_post: the session cookie is SameSite=Lax,
# so a cross-site form POST would arrive without it (and without the flow). The code is
# single-use and bound to the flow's PKCE verifier, and the callback answers with a redirect
# under Referrer-Policy same-origin, so the code does not linger.
warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")

ADO_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"  # Azure DevOps, in every tenant
ADO_SCOPE = f"{ADO_RESOURCE}/.default"
# msal adds openid, profile and offline_access; the access token is for Azure DevOps.
SCOPES = [ADO_SCOPE]
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
MULTI_TENANT = {"common", "organizations", "consumers"}

FLOWS_SESSION_KEY = "portal_entra_flows"  # {state: {"flow", "next", "reauth_user"}}
METHOD_SESSION_KEY = "portal_sign_in_method"
LOGOUT_HINT_SESSION_KEY = "portal_entra_logout_hint"
ENTRA = "entra"
SESSION_STARTED_KEY = "portal_session_started_at"  # SessionTimeoutMiddleware.STARTED_KEY
MAX_PENDING_FLOWS = 5  # sign-ins started in other tabs of the same browser
CLOCK_SKEW_SECONDS = 120
USER_BACKEND = "django.contrib.auth.backends.ModelBackend"

# msal keeps discovery answers here for a day (and throttles repeated errors briefly).
_http_cache: dict = {}


# CONFIGURATION
# ------------------------------------------------------------------------------


is_enabled = entra_sign_in_enabled


def local_accounts_enabled() -> bool:
    return bool(getattr(settings, "LOCAL_ACCOUNTS_ENABLED", True)) or not is_enabled()


def authority() -> str:
    configured = (getattr(settings, "ENTRA_AUTHORITY", "") or "").rstrip("/")
    return configured or f"{DEFAULT_AUTHORITY_HOST}/{settings.ENTRA_TENANT_ID}"


def http_session() -> requests.Session:
    """The HTTP client msal and the discovery reads use: Entra's CA bundle and timeout."""
    return clients.http_session(
        timeout=getattr(settings, "ENTRA_TIMEOUT_SECONDS", 10.0),
        verify=settings.ENTRA_CA_BUNDLE or True,
    )


def build_app(token_cache: msal.TokenCache | None = None) -> msal.ConfidentialClientApplication:
    """A confidential client for the configured tenant (discovery answers are cached)."""
    url = authority()
    try:
        return clients.confidential_client(
            settings.ENTRA_CLIENT_ID,
            settings.ENTRA_CLIENT_SECRET,
            url,
            timeout=getattr(settings, "ENTRA_TIMEOUT_SECONDS", 10.0),
            verify=settings.ENTRA_CA_BUNDLE or True,
            token_cache=token_cache,
            http_cache=_http_cache,
        )
    except (requests.RequestException, ValueError, OSError) as exc:
        logger.warning("Entra ID authority %s unusable: %s", url, exc)
        raise EntraUnavailable("Microsoft Entra ID could not be reached", "unavailable") from exc


def redirect_uri(request) -> str:
    return settings.ENTRA_REDIRECT_URI or request.build_absolute_uri(reverse("entra-callback"))


# TOKEN CACHE AT REST (encrypted with a key derived from SECRET_KEY)
# ------------------------------------------------------------------------------


def _fernet() -> Fernet:
    digest = hashlib.sha256(b"portal.entra.token-cache:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _seal(serialized: str) -> str:
    return _fernet().encrypt(serialized.encode()).decode()


def _unseal(sealed: str) -> str | None:
    try:
        return _fernet().decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None  # e.g. SECRET_KEY rotated: the user signs in again


# SIGN-IN
# ------------------------------------------------------------------------------


def initiate(
    request,
    next_url: str = "",
    *,
    max_age: int | None = None,
    prompt: str | None = None,
    login_hint: str | None = None,
    reauth_user_id: int | None = None,
) -> str:
    """Start a sign-in: keep the flow in the session and return Entra's authorize URL."""
    app = build_app()
    flow = app.initiate_auth_code_flow(
        SCOPES,
        redirect_uri=redirect_uri(request),
        max_age=max_age,
        prompt=prompt,
        login_hint=login_hint,
    )
    flows = dict(request.session.get(FLOWS_SESSION_KEY) or {})
    flows[flow["state"]] = {"flow": flow, "next": next_url, "reauth_user": reauth_user_id}
    request.session[FLOWS_SESSION_KEY] = dict(list(flows.items())[-MAX_PENDING_FLOWS:])
    return flow["auth_uri"]


@dataclass
class SignIn:
    user: object
    claims: dict
    next_url: str
    roles: frozenset[str]
    reauth_user_id: int | None = None
    unmapped: list[str] = field(default_factory=list)


def complete(request) -> SignIn:
    """Redeem the authorization code Entra sent back and sign the user in to the database
    (not yet to the session: the view calls ``login``). Raises SignInFailed."""
    pending = _pending_flow(request)
    cache = msal.SerializableTokenCache()
    app = build_app(cache)
    result = _redeem(app, pending["flow"], request.GET.dict())
    claims = result.get("id_token_claims") or {}
    _check_claims(claims)

    account = _msal_account(app, claims["oid"])
    user, roles, unmapped = user_from_claims(
        claims,
        sealed_cache=_seal(cache.serialize()),
        home_account_id=(account or {}).get("home_account_id", ""),
    )
    if pending.get("reauth_user") and pending["reauth_user"] != user.pk:
        raise SignInFailed(
            "you confirmed with a different account from the one signed in here; "
            "sign out first to switch accounts",
            "different_account",
            claims=claims,
            user=user,
        )
    return SignIn(
        user=user,
        claims=claims,
        next_url=pending.get("next") or "",
        roles=roles,
        reauth_user_id=pending.get("reauth_user"),
        unmapped=unmapped,
    )


def _pending_flow(request) -> dict:
    """The sign-in this answer belongs to, taken out of the session (a flow is used once,
    whatever happens); refuses an answer of no sign-in of this browser, or Entra's error."""
    state = request.GET.get("state", "")
    flows = dict(request.session.get(FLOWS_SESSION_KEY) or {})
    pending = flows.pop(state, None) if state else None
    if flows:
        request.session[FLOWS_SESSION_KEY] = flows
    else:
        request.session.pop(FLOWS_SESSION_KEY, None)
    if pending is None:
        raise SignInFailed(
            "this answer does not belong to a sign-in started in this browser "
            "(it was already used, it is from another browser, or it is an old link)",
            "state_mismatch",
        )
    if request.GET.get("error"):
        description = request.GET.get("error_description") or request.GET["error"]
        raise SignInFailed(
            f"Microsoft Entra ID said: {description.splitlines()[0][:300]}", "entra_error"
        )
    return pending


def _redeem(app, flow: dict, answer: dict) -> dict:
    """msal's token answer for the code, its refusals told as SignInFailed."""
    try:
        result = app.acquire_token_by_auth_code_flow(flow, answer)
    except ValueError as exc:  # state mismatch, missing code...
        raise SignInFailed(
            f"the answer did not match this sign-in ({exc})", "state_mismatch"
        ) from exc
    except RuntimeError as exc:  # msal's nonce and max_age checks
        text = str(exc)
        if "max_age" in text:
            reason = "Microsoft did not confirm a fresh sign-in (the last one is too old)"
            code = "stale_sign_in"
        elif "nonce" in text:
            reason = "the id token does not belong to this sign-in (nonce mismatch)"
            code = "nonce_mismatch"
        else:
            reason, code = "the id token failed a check", "invalid_token"
        raise SignInFailed(reason, code) from exc
    except requests.RequestException as exc:
        raise EntraUnavailable("Microsoft Entra ID could not be reached", "unavailable") from exc
    if "error" in result:
        description = (result.get("error_description") or "").splitlines()
        detail = description[0][:300] if description else ""
        raise SignInFailed(f"{result['error']}{': ' + detail if detail else ''}", "token_error")
    return result


def _check_claims(claims: dict) -> None:
    """What msal no longer checks in the id token (it came straight from the token endpoint
    over verified TLS, so its signature is not re-checked)."""
    if not claims:
        raise SignInFailed("Microsoft Entra ID sent no id token", "invalid_token")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if settings.ENTRA_CLIENT_ID not in audiences:
        raise SignInFailed(
            "the id token was issued to another application", "invalid_token", claims=claims
        )
    now = time.time()
    if claims.get("exp") is None or now - CLOCK_SKEW_SECONDS > claims["exp"]:
        raise SignInFailed("the id token has expired", "expired_token", claims=claims)
    if not claims.get("oid") or not claims.get("tid"):
        raise SignInFailed(
            "the id token does not say who you are (no oid or tid)", "invalid_token", claims=claims
        )
    tenant = settings.ENTRA_TENANT_ID.lower()
    if tenant not in MULTI_TENANT and claims["tid"].lower() != tenant:
        raise SignInFailed(
            "your account belongs to another organization (tenant)", "wrong_tenant", claims=claims
        )


def _msal_account(app, object_id: str) -> dict | None:
    for account in app.get_accounts():
        if account.get("local_account_id") == object_id:
            return account
    return None


def mark_session(request, sign_in: SignIn) -> None:
    """After ``login``: remember how and when this session proved who it is."""
    claims = sign_in.claims
    request.session[METHOD_SESSION_KEY] = ENTRA
    auth_time = claims.get("auth_time") or claims.get("iat")
    when = timezone.now()
    if auth_time:
        when = min(when, datetime.fromtimestamp(int(auth_time), tz=UTC))
    request.session[AUTHENTICATED_AT_SESSION_KEY] = when.isoformat()
    # The session itself began now, however old the single-sign-on session's auth_time is
    # (portal.middleware.SessionTimeoutMiddleware counts the absolute limit from the later).
    request.session[SESSION_STARTED_KEY] = int(time.time())
    if claims.get("login_hint"):
        request.session[LOGOUT_HINT_SESSION_KEY] = claims["login_hint"]
    if claims.get("sid") and request.session.session_key:
        EntraSession.objects.create(
            sid=claims["sid"], session_key=request.session.session_key, user=sign_in.user
        )


def signed_in_with_entra(request) -> bool:
    return is_enabled() and request.session.get(METHOD_SESSION_KEY) == ENTRA


# SIGN-OUT
# ------------------------------------------------------------------------------

_metadata_cache: dict[str, tuple[float, dict]] = {}


def openid_configuration() -> dict:
    """The tenant's OIDC discovery document, cached an hour: sign-out's end-session endpoint,
    and the issuer and signing keys (``jwks_uri``) the API checks access tokens against."""
    url = f"{authority()}/v2.0/.well-known/openid-configuration"
    cached = _metadata_cache.get(url)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    response = http_session().get(url)
    response.raise_for_status()
    metadata = response.json()
    _metadata_cache[url] = (time.monotonic() + 3600, metadata)
    return metadata


def end_session_url(post_logout_redirect_uri: str, logout_hint: str | None = None) -> str:
    """Entra's end-session endpoint, coming back to ``post_logout_redirect_uri``."""
    try:
        endpoint = openid_configuration().get("end_session_endpoint")
    except (requests.RequestException, ValueError) as exc:
        logger.warning("Entra ID metadata unavailable for sign-out: %s", exc)
        endpoint = None
    endpoint = endpoint or f"{authority()}/oauth2/v2.0/logout"
    query = {"post_logout_redirect_uri": post_logout_redirect_uri}
    if logout_hint:
        query["logout_hint"] = logout_hint
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"


def end_sessions_of_sid(sid: str) -> int:
    """Front-channel logout: end every portal session that Entra session opened."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    rows = list(EntraSession.objects.filter(sid=sid))
    for row in rows:
        store(session_key=row.session_key).delete()
    EntraSession.objects.filter(pk__in=[r.pk for r in rows]).delete()
    return len(rows)


def forget_session(session_key: str | None) -> None:
    if session_key:
        EntraSession.objects.filter(session_key=session_key).delete()


# DELEGATED AZURE DEVOPS TOKEN (for the worker)
# ------------------------------------------------------------------------------


def delegated_ado_token(user) -> str | None:
    """An Azure DevOps access token acting as ``user`` (a User or its pk), from the token
    cache their last Entra sign-in left, refreshed silently when needed. None when it
    cannot be had: never signed in with Entra, refresh refused (revoked, expired, consent
    withdrawn), or Entra unreachable."""
    if not is_enabled() or user is None:
        return None
    user_id = getattr(user, "pk", user)
    record = EntraAccount.objects.filter(user_id=user_id).first()
    if record is None or not record.token_cache:
        return None
    serialized = _unseal(record.token_cache)
    if serialized is None:
        logger.warning("Token cache of user %s cannot be read (SECRET_KEY changed?)", user_id)
        return None
    cache = msal.SerializableTokenCache()
    cache.deserialize(serialized)
    try:
        app = build_app(cache)
        account = _msal_account(app, record.object_id)
        if account is None:
            return None
        result = app.acquire_token_silent_with_error(SCOPES, account=account)
    except (EntraUnavailable, requests.RequestException, ValueError, RuntimeError) as exc:
        logger.warning("No delegated ADO token for user %s: %s", user_id, exc)
        return None
    if cache.has_state_changed:
        EntraAccount.objects.filter(pk=record.pk).update(
            token_cache=_seal(cache.serialize()), updated_at=timezone.now()
        )
    if not result or "access_token" not in result:
        logger.info(
            "No delegated ADO token for user %s: %s",
            user_id,
            (result or {}).get("error", "nothing cached"),
        )
        return None
    return result["access_token"]
