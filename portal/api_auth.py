"""Machine access to the API: DRF authentication classes for ``Authorization: Bearer``.

- ``PortalTokenAuthentication``: a portal API token (``mlpt_…``, portal/api_tokens.py).
- ``EntraTokenAuthentication``: any other bearer token is taken for an Entra ID access token
  of a service principal or managed identity (client credentials). PyJWT checks its RS256
  signature against the tenant's keys (the ``jwks_uri`` of the OIDC discovery document that
  the sign-in reads, fetched through ``core.clients.http_session`` with Entra's CA bundle and
  cached), its issuer (the tenant's v2.0 issuer, or its v1.0 ``sts.windows.net`` one), its
  audience (``ENTRA_API_AUDIENCES``, by default the portal's client id and
  ``api://<client id>``), ``exp`` and ``nbf``; the tenant must be the portal's and the token
  app-only (a person's delegated token, with ``scp``, is refused: people use the portal or a
  portal API token). The caller becomes the portal user of that service principal (created
  on its first call, matched by tenant and object id, no password), whose roles are the ones
  its ``roles`` claim maps to, exactly as the sign-in maps app roles (ENTRA_ROLE_CLAIMS).

Both answer a refused token with 401 and a sentence saying why (``CredentialRefused``), the
refusal audited; a request with no bearer token goes on to the session. A use is recorded on
the token or the service principal at most once a minute (with an audit row).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from core.client_address import client_ip
from core.errors import PortalError
from core.machine_access import ENTRA_APP, WRITE, CredentialRefused, MachineCredential
from core.signals import api_access_event

from . import api_tokens, entra
from .entra_users import role_groups_set, roles_from_claims
from .models import ServicePrincipal

logger = logging.getLogger(__name__)

BEARER = "bearer"
CLOCK_SKEW_SECONDS = 60
JWKS_LIFETIME_SECONDS = 3600
JWKS_REFRESH_MIN_SECONDS = 60  # an unknown key id re-reads the keys at most this often
MULTI_TENANT = {"common", "organizations", "consumers"}


def bearer_token(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != BEARER:
        return None
    return value.strip() or None


class PortalTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer mlpt_…``: a portal API token (portal/api_tokens.py)."""

    def authenticate(self, request):
        raw = bearer_token(request)
        if raw is None or not api_tokens.is_portal_token(raw):
            return None
        return api_tokens.token_authenticate(raw, request)


class EntraUnreachable(PortalError):
    http_status = 503
    code = "entra_unavailable"


class EntraTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <JWT>``: an Entra ID app-only access token (module docstring)."""

    def authenticate(self, request):
        raw = bearer_token(request)
        if raw is None or api_tokens.is_portal_token(raw):
            return None
        claims = validated_claims(raw, request)
        user, principal = service_principal_user(claims, request)
        credential = MachineCredential(
            kind=ENTRA_APP,
            token_id=str(claims.get("uti") or ""),
            label=f"of app {principal.app_id or principal.object_id}",
            scope=WRITE,  # what it may write is what its roles allow
            facts={"app_id": principal.app_id, "object_id": principal.object_id},
        )
        return user, credential


# VALIDATION
# ------------------------------------------------------------------------------


def audiences() -> list[str]:
    configured = [a for a in getattr(settings, "ENTRA_API_AUDIENCES", []) if a]
    if configured:
        return configured
    client_id = settings.ENTRA_CLIENT_ID
    return [client_id, f"api://{client_id}"] if client_id else []


def _tenant() -> str:
    return (settings.ENTRA_TENANT_ID or "").lower()


def issuers(metadata: dict) -> list[str]:
    """The tenant's v2.0 issuer (from discovery) and its v1.0 one."""
    tenant = _tenant()
    found = [str(metadata.get("issuer") or "").replace("{tenantid}", tenant)]
    found.append(f"https://sts.windows.net/{tenant}/")
    return [i for i in found if i]


_jwks_lock = threading.Lock()
_jwks_cache: dict[str, tuple[float, float, jwt.PyJWKSet]] = {}  # uri -> (expires, read, set)


def _signing_key(kid: str | None, metadata: dict):
    uri = metadata.get("jwks_uri")
    if not uri:
        raise EntraUnreachable("Microsoft Entra ID's metadata names no signing keys.")
    now = time.monotonic()
    with _jwks_lock:
        expires, read_at, keys = _jwks_cache.get(uri, (0.0, 0.0, None))
        known = keys is not None and any(k.key_id == kid for k in keys.keys)
        if (
            keys is None
            or now > expires
            or (not known and now - read_at > JWKS_REFRESH_MIN_SECONDS)
        ):
            try:
                response = entra.http_session().get(uri)
                response.raise_for_status()
                keys = jwt.PyJWKSet.from_dict(response.json())
            except (requests.RequestException, ValueError, jwt.PyJWTError) as exc:
                logger.warning("Entra ID signing keys unavailable at %s: %s", uri, exc)
                raise EntraUnreachable(
                    "Microsoft Entra ID's signing keys could not be read; try again shortly."
                ) from exc
            _jwks_cache[uri] = (now + JWKS_LIFETIME_SECONDS, now, keys)
    for key in keys.keys:
        if key.key_id == kid:
            return key
    return None


def validated_claims(raw: str, request) -> dict:
    """The claims of a valid app-only access token for this portal, or ``CredentialRefused``
    (audited) saying what is wrong with it."""

    def refuse(reason: str, message: str, claims: dict | None = None):
        unverified = {
            k: (claims or {}).get(k) for k in ("appid", "azp", "oid", "tid", "iss", "aud")
        }
        api_tokens.announce_refusal(
            request,
            user=None,
            reason=reason,
            message=f"API call refused: {message}",
            facts={
                "kind": ENTRA_APP,
                "unverified_claims": {k: v for k, v in unverified.items() if v},
            },
            once_key=f"entra:{api_tokens.digest_of(raw)[:16]}:{reason}",
        )
        return CredentialRefused(message, code=reason)

    try:
        header = jwt.get_unverified_header(raw)
        unverified = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise refuse(
            "malformed_token",
            "The bearer token is neither a portal API token (mlpt_…) nor a JWT.",
        ) from None
    # A tenant of its own and an audience (ENTRA_CLIENT_ID or ENTRA_API_AUDIENCES) suffice:
    # machine access needs no client secret, so it works without the people's sign-in too.
    if not _tenant() or _tenant() in MULTI_TENANT or not audiences():
        raise refuse(
            "entra_not_configured",
            "This portal accepts no Entra ID access tokens (Entra ID is not configured for "
            "one tenant); use a portal API token.",
            unverified,
        )
    allowed_audiences = audiences()
    try:
        metadata = entra.openid_configuration()
    except (requests.RequestException, ValueError) as exc:
        logger.warning("Entra ID metadata unavailable for an API token: %s", exc)
        raise EntraUnreachable(
            "Microsoft Entra ID could not be reached to check the token; try again shortly."
        ) from exc
    if header.get("alg") != "RS256":
        raise refuse("bad_signature", "The access token is not signed with RS256.", unverified)
    key = _signing_key(header.get("kid"), metadata)
    if key is None:
        raise refuse(
            "bad_signature",
            "The access token is signed with a key that is not one of the tenant's.",
            unverified,
        )
    try:
        claims = jwt.decode(
            raw,
            key,
            algorithms=["RS256"],
            audience=allowed_audiences,
            issuer=issuers(metadata),
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["exp", "iss", "aud", "oid", "tid"]},
        )
    except jwt.ExpiredSignatureError:
        raise refuse(
            "expired_token", "The access token has expired; get a new one.", unverified
        ) from None
    except jwt.ImmatureSignatureError:
        raise refuse(
            "token_not_yet_valid", "The access token is not valid yet (nbf).", unverified
        ) from None
    except jwt.InvalidAudienceError:
        raise refuse(
            "wrong_audience",
            f"The access token is for another API (aud {unverified.get('aud')!r}); ask for "
            f"a token with the scope {allowed_audiences[-1]}/.default.",
            unverified,
        ) from None
    except jwt.InvalidIssuerError:
        raise refuse(
            "wrong_issuer",
            f"The access token was issued by {unverified.get('iss')!r}, not by this portal's "
            "Entra ID tenant.",
            unverified,
        ) from None
    except jwt.InvalidSignatureError:
        raise refuse(
            "bad_signature", "The access token's signature does not verify.", unverified
        ) from None
    except jwt.MissingRequiredClaimError as exc:
        raise refuse(
            "invalid_token", f"The access token has no '{exc.claim}' claim.", unverified
        ) from None
    except jwt.PyJWTError as exc:
        raise refuse(
            "invalid_token", f"The access token is not valid ({exc}).", unverified
        ) from None
    if str(claims["tid"]).lower() != _tenant():
        raise refuse("wrong_tenant", "The access token is of another tenant.", claims)
    if claims.get("scp"):
        raise refuse(
            "delegated_token",
            "This is a person's delegated token; the API takes app-only tokens (client "
            "credentials) from Entra ID. People use the portal or a portal API token.",
            claims,
        )
    return claims


# THE SERVICE PRINCIPAL'S USER
# ------------------------------------------------------------------------------


def service_principal_user(claims: dict, request) -> tuple[object, ServicePrincipal]:
    """The portal user of the token's service principal (made on its first call, no password),
    its roles those the ``roles`` claim maps to; its use recorded at most once a minute."""
    tid, oid = str(claims["tid"]).lower(), str(claims["oid"]).lower()
    app_id = str(claims.get("azp") or claims.get("appid") or "")[:64]
    claimed = sorted(str(r) for r in claims.get("roles") or [])
    roles, _unmapped = roles_from_claims(claims)
    principal = None
    for _attempt in range(2):  # two first calls at once: one creates, the other finds it
        try:
            with transaction.atomic():
                principal = (
                    ServicePrincipal.objects.select_related("user")
                    .filter(tenant_id=tid, object_id=oid)
                    .first()
                )
                if principal is None:
                    user_model = get_user_model()
                    user = user_model(
                        username=_free_username(oid),
                        first_name="Service principal",
                        last_name=app_id[:150],
                    )
                    user.set_unusable_password()
                    user.save()
                    principal = ServicePrincipal.objects.create(
                        user=user, tenant_id=tid, object_id=oid, app_id=app_id
                    )
                    role_groups_set(user, roles)
                    principal.claimed_roles, principal.roles_from_entra = claimed, sorted(roles)
                    principal.save(update_fields=["claimed_roles", "roles_from_entra"])
                elif principal.claimed_roles != claimed or principal.app_id != app_id:
                    role_groups_set(principal.user, roles)
                    principal.claimed_roles, principal.roles_from_entra = claimed, sorted(roles)
                    principal.app_id = app_id
                    principal.save(update_fields=["claimed_roles", "roles_from_entra", "app_id"])
            break
        except IntegrityError:
            continue
    if principal is None:
        raise CredentialRefused("The service principal could not be recorded; try again.")
    user = principal.user
    facts = {
        "kind": ENTRA_APP,
        "app_id": app_id,
        "object_id": oid,
        "tenant_id": tid,
        "token_id": str(claims.get("uti") or ""),
        "roles": claimed,
    }
    if not user.is_active:
        api_tokens.announce_refusal(
            request,
            user=user,
            reason="inactive",
            message="API call refused: this service principal's portal account is disabled",
            facts=facts,
            once_key=f"sp:{principal.pk}:inactive",
        )
        raise CredentialRefused(
            "This service principal's portal account is disabled; ask a portal admin.",
            code="inactive",
        )
    now = timezone.now()
    recorded = (
        ServicePrincipal.objects.filter(pk=principal.pk)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - timedelta(minutes=1)))
        .update(
            last_used_at=now,
            last_used_ip=client_ip(request) or None,
            last_token_id=facts["token_id"][:100],
        )
    )
    if recorded:
        api_access_event.send(
            sender=ServicePrincipal,
            request=request,
            event="used",
            user=user,
            actor=None,
            reason="",
            message=f"Entra ID access token of app {app_id or oid} used "
            f"(roles: {', '.join(claimed) or 'none'})",
            facts=facts,
        )
    return user, principal


def _free_username(oid: str) -> str:
    user_model = get_user_model()
    username = f"sp-{oid}"[:150]
    if user_model.objects.filter(username=username).exists():  # same oid in another tenant
        username = f"sp-{oid}-{int(time.time())}"[:150]
    return username


# THE OPENAPI SCHEMA
# ------------------------------------------------------------------------------


class PortalTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api_auth.PortalTokenAuthentication"
    name = "portalToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "mlpt_…",
            "description": "A portal API token (made on your API tokens page; shown once). "
            "Scope read: reads only; write: also the writes your role allows. Never a "
            "decision on an approval.",
        }


class EntraTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api_auth.EntraTokenAuthentication"
    name = "entraAccessToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An Entra ID app-only access token (client credentials) of a "
            "service principal or managed identity, for the portal's API (scope "
            "api://<portal client id>/.default); its app roles are its portal roles. Never "
            "a decision on an approval.",
        }


def schema_machine_access_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: what a token can be answered anywhere under
    /api/v1: 401 (a refused token), 503 (Entra's keys unreadable), and on a write 403 (a
    read-only token) and 429 (the rate limit, with Retry-After), in the API's error body."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        "TokenError",
        {
            "type": "object",
            "properties": {
                "detail": {"type": "string"},
                "code": {"type": "string"},
                "request_id": {"type": "string"},
            },
            "required": ["detail", "code"],
        },
    )
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/TokenError"}}}
    answers = {
        "401": "The bearer token was refused (unknown, expired, revoked, wrong audience or "
        "issuer, bad signature: the message says which).",
        "503": "Microsoft Entra ID's signing keys could not be read to check a token.",
    }
    writes = {
        "403": "No role that may do this, or a read-only token (insufficient_scope).",
        "429": "Too many writes for this user or token: wait Retry-After seconds.",
    }
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            wanted = dict(answers)
            if method in ("post", "put", "patch", "delete"):
                wanted.update(writes)
            for status, description in wanted.items():
                if status in responses:
                    continue
                responses[status] = {"description": description, "content": body}
                if status == "429":
                    responses[status]["headers"] = {
                        "Retry-After": {
                            "schema": {"type": "integer"},
                            "description": "Seconds to wait before the next write.",
                        }
                    }
    return result
