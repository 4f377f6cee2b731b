"""A local stand-in of the Microsoft Entra ID (v2.0) endpoints, for driving the real msal library.

It serves, over HTTPS on 127.0.0.1 (port 0, a certificate signed by a throw-away CA whose PEM is
``ca_file``), what msal and a web app use for the authorization-code flow with PKCE:

- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (tenant discovery; msal fetches it
  from ``{authority}/v2.0/.well-known/openid-configuration`` when ``instance_discovery=False``)
- ``GET /{tenant}/discovery/v2.0/keys`` (JWKS of the RS256 signing key)
- ``GET /{tenant}/oauth2/v2.0/authorize`` (no login page: the user chosen with ``sign_in_as``
  signs in at once and the endpoint answers 302 to ``redirect_uri`` with ``code``, ``state``,
  ``session_state`` and, when asked with ``client_info=1``, ``client_info``; ``response_mode=
  form_post`` answers an auto-submitting HTML form instead)
- ``POST /{tenant}/oauth2/v2.0/token`` (``authorization_code`` and ``refresh_token`` grants,
  client secret by HTTP Basic or in the body; ``client_credentials`` for the applications
  registered with ``register_app``: a service principal or managed identity calling an API)
- ``GET /{tenant}/oauth2/v2.0/logout`` (ends the single-sign-on session, answers 200)

Sign-in model: ``sign_in_as`` says who is at the keyboard; the first authorize after it is a
fresh sign-in (``auth_time`` = now) and opens a single-sign-on session; later authorize calls
reuse that session's ``auth_time`` unless ``prompt=login`` is sent or ``max_age`` is exceeded,
which makes the user sign in again (``auth_time`` = now). ``prompt=none`` without a session
answers ``error=login_required``. Logout ends the session (the same user signs in afresh next).

Token shapes follow Entra: the id token is a v2.0 token (``iss`` = the issuer of the metadata,
``aud`` = client id, ``nonce`` as sent to authorize, ``oid``, ``tid``, ``sub``, ``name``,
``preferred_username``, ``email``, ``roles``, ``groups``, ``auth_time``, ``iat``, ``nbf``,
``exp``, ``sid``); an access token for Azure DevOps is a v1.0 token (``aud`` = the ADO resource
GUID, ``iss`` = ``https://sts.windows.net/{tid}/``, ``oid``, ``tid``, ``upn``, ``unique_name``,
``name``, ``scp`` = ``user_impersonation``). Both are RS256 JWTs verifiable with the JWKS.
The ``scope`` of a token response echoes the requested scopes (so msal's cache finds an
``{ADO_RESOURCE}/.default`` token again). Refresh tokens are opaque and reflect the user's
current claims (the last ``sign_in_as`` for that oid), as Entra reflects the directory.

Client credentials: ``register_app(client_id=..., client_secret=..., object_id=...,
roles=[...])`` adds a service principal; a ``client_credentials`` grant with ``scope`` =
``{resource}/.default`` issues an app-only access token for that resource, as Entra does for
an API whose ``accessTokenAcceptedVersion`` is 2: ``ver`` 2.0, ``iss`` = the metadata's issuer,
``aud`` = the API's client id (``api://{client id}`` resolves to it; another resource is kept
as given), ``azp`` = the caller's client id, ``azpacr`` 1, ``oid`` = ``sub`` = the service
principal's object id, ``tid``, ``idtyp`` app, ``roles`` = the app roles assigned to it
(absent when none), ``uti``, ``iat``/``nbf``/``exp``. ``access_token_version = 1`` issues v1.0
tokens instead (``iss`` ``https://sts.windows.net/{tid}/``, ``appid``, ``aud`` as requested).

Every request is appended to ``requests`` (secrets masked); ``authorizations`` and ``issued``
record what the authorize and token endpoints decided, ``logouts`` the sign-outs, and
``errors`` any exception inside the stand-in (answered 500) — the ``entra`` fixture fails a test
that leaves one there. More than 200 groups become Entra's groups overage
(``_claim_names`` / ``_claim_sources`` instead of ``groups``).

Test controls besides the required ones: ``follow(auth_uri)`` plays the browser's part and
returns the parameters sent back to the redirect URI; ``age_session(seconds)`` ages the open
single-sign-on session (so ``max_age`` forces a fresh sign-in); ``access_token_lifetime``;
``redirect_after_logout``; ``decode(token, audience=...)``; ``jwks()``.

HTTPS trust: use ``http_session()``, or a session with ``trust_env = False`` and
``verify = ca_file``; with ``trust_env`` on, requests lets ``REQUESTS_CA_BUNDLE`` from the
environment override ``session.verify``. The RSA keys are made once per process and shared by
all stand-ins in it (key generation is slow); each stand-in still has its own port and state.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import ipaddress
import json
import secrets
import ssl
import threading
import time
import uuid
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ADO_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
GRAPH_RESOURCE = "00000003-0000-0000-c000-000000000000"
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
SECRET_FIELDS = frozenset(
    {"client_secret", "code", "code_verifier", "refresh_token", "assertion", "password"}
)
CODE_LIFETIME = 600
GROUPS_OVERAGE_LIMIT = 200
ID_TOKEN_LIFETIME = 3600
CLOCK_SKEW_NBF = 300  # Entra sets nbf 5 minutes before iat


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _pkce_s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _first_values(raw: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def _mask(fields: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if k in SECRET_FIELDS and v else v) for k, v in fields.items()}


def _resource_of(scope: str) -> str | None:
    """``499b…/.default`` → ``499b…``; ``https://graph.microsoft.com/User.Read`` → the URL;
    a bare permission such as ``User.Read`` is Microsoft Graph's; OIDC scopes have none."""
    if scope in OIDC_SCOPES:
        return None
    if "/" not in scope:
        return GRAPH_RESOURCE
    return scope.rsplit("/", 1)[0]


_KEYS: list[rsa.RSAPrivateKey] = []
_KEYS_LOCK = threading.Lock()


def _rsa_key(index: int) -> rsa.RSAPrivateKey:
    """RSA keys made once per process (generating one takes a noticeable fraction of a
    second); index 0 is the CA's, 1 the TLS server's, 2 the token signing key."""
    with _KEYS_LOCK:
        while len(_KEYS) <= index:
            _KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _KEYS[index]


def _make_tls_material(workdir: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = _rsa_key(0)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Entra stand-in test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = _rsa_key(1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    workdir.mkdir(parents=True, exist_ok=True)
    ca_path = workdir / "entra-standin-ca.pem"
    cert_path = workdir / "entra-standin-cert.pem"
    key_path = workdir / "entra-standin-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


class EntraStandIn:
    """See the module docstring. ``start()`` before use, ``stop()`` after."""

    def __init__(
        self,
        *,
        tenant_id: str = "11111111-1111-1111-1111-111111111111",
        client_id: str = "22222222-2222-2222-2222-222222222222",
        client_secret: str = "standin-secret",  # noqa: S107 - a test double's secret
        workdir: Path,
    ):
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.workdir = Path(workdir)
        self.requests: list[dict] = []
        self.authorizations: list[dict] = []  # what each authorize request decided
        self.issued: list[dict] = []  # what each successful token request issued
        self.logouts: list[dict] = []
        self.errors: list[str] = []  # exceptions inside the stand-in (answered with 500)
        # When True the logout endpoint answers 302 to post_logout_redirect_uri, as Entra does
        # for a registered address; when False (default) it answers 200 "signed out".
        self.redirect_after_logout = False
        # Lifetime of access tokens issued from now on (seconds); 0 means born expired.
        self.access_token_lifetime = 3600
        self._lock = threading.RLock()
        self._signing_key = _rsa_key(2)
        public_der = self._signing_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = _b64url(hashlib.sha1(public_der).digest())  # noqa: S324 - a key id, like x5t
        self._directory: dict[str, dict] = {}  # oid -> latest claims given to sign_in_as
        self._at_keyboard: str | None = None  # oid of who signs in next
        self._sso: dict | None = None  # {"oid", "auth_time", "sid"} of the open session
        self._auth_time_override: int | None = None
        self._codes: dict[str, dict] = {}
        self._refresh_tokens: dict[str, dict] = {}
        self._apps: dict[str, dict] = {}  # client id -> service principal (register_app)
        # Version of app-only access tokens (the API's accessTokenAcceptedVersion): 2 or 1.
        self.access_token_version = 2
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None
        self.ca_file: str = ""
        self.cert_file: str = ""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> EntraStandIn:
        ca_path, cert_path, key_path = _make_tls_material(self.workdir)
        self.ca_file, self.cert_file = str(ca_path), str(cert_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_path), str(key_path))
        standin = self

        class Handler(_Handler):
            owner = standin

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"entra-standin-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> EntraStandIn:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def issuer(self) -> str:
        return f"{self.authority}/v2.0"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def end_session_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/logout"

    @property
    def jwks_uri(self) -> str:
        return f"{self.authority}/discovery/v2.0/keys"

    def http_session(self) -> requests.Session:
        """A requests session that trusts the stand-in's certificate (msal's ``http_client``).

        ``trust_env`` is off: with it on, requests lets ``REQUESTS_CA_BUNDLE`` /
        ``CURL_CA_BUNDLE`` from the environment override ``session.verify`` (requests #3829),
        and the stand-in's CA is not in the system bundle. It also keeps proxies away from
        127.0.0.1.
        """
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca_file
        return session

    # -- test controls ---------------------------------------------------------------------

    def sign_in_as(
        self,
        *,
        oid: str,
        name: str,
        preferred_username: str,
        email: str | None = None,
        roles: list[str] | None = None,
        groups: list[str] | None = None,
        tid: str | None = None,
    ) -> None:
        """The user at the keyboard from now on; the next authorize is a fresh sign-in.

        The claims also become that oid's directory entry: refresh grants for the oid issue
        tokens with them (so a role removed here shows at the next refresh too).
        """
        claims = {
            "oid": oid,
            "tid": tid or self.tenant_id,
            "name": name,
            "preferred_username": preferred_username,
        }
        if email is not None:
            claims["email"] = email
        if roles is not None:
            claims["roles"] = list(roles)
        if groups is not None:
            claims["groups"] = list(groups)
        with self._lock:
            self._directory[oid] = claims
            self._at_keyboard = oid
            self._sso = None

    def register_app(
        self,
        *,
        client_id: str,
        client_secret: str,
        object_id: str,
        display_name: str = "",
        roles: list[str] | None = None,
        tid: str | None = None,
    ) -> None:
        """A service principal (an app registration's, or a managed identity's) that may use
        the ``client_credentials`` grant; ``roles`` are the app roles assigned to it on the
        API. Registering the same client id again replaces it (e.g. a role removed)."""
        with self._lock:
            self._apps[client_id] = {
                "client_id": client_id,
                "client_secret": client_secret,
                "oid": object_id,
                "name": display_name or client_id,
                "roles": list(roles or []),
                "tid": tid or self.tenant_id,
            }

    def sign_out_everyone(self) -> None:
        """Ends the single-sign-on session, as the logout endpoint does."""
        with self._lock:
            self._sso = None

    def expire_access_tokens(self) -> None:
        """Access tokens issued from now on are born expired: ``expires_in`` 0 and ``exp`` in
        the past, so msal's cache treats them as expired and refreshes with the refresh token
        at the next ``acquire_token_silent``. Set ``access_token_lifetime`` back (e.g. 3600) to
        issue good ones again. Tokens already in a client's cache are not affected (msal keeps
        their expiry from the ``expires_in`` it was given)."""
        with self._lock:
            self.access_token_lifetime = 0

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far is revoked: refresh grants answer invalid_grant."""
        with self._lock:
            for record in self._refresh_tokens.values():
                record["revoked"] = True

    def auth_time_ago(self, seconds: int) -> None:
        """The next code issued carries ``auth_time`` = now - seconds in its id token, whatever
        ``max_age`` or ``prompt`` asked (an IdP that did not re-authenticate), so a client that
        sent ``max_age`` must reject it. One-shot."""
        with self._lock:
            self._auth_time_override = int(time.time()) - int(seconds)

    def age_session(self, seconds: int) -> None:
        """Pretend the open single-sign-on session began ``seconds`` ago: later authorize
        calls reuse that older ``auth_time``, and a ``max_age`` below it forces a fresh
        sign-in. Needs an open session (an authorize after ``sign_in_as``)."""
        with self._lock:
            if self._sso is None:
                raise RuntimeError("no single-sign-on session is open; authorize first")
            self._sso["auth_time"] = int(time.time()) - int(seconds)

    def follow(self, auth_uri: str) -> dict[str, str]:
        """GET ``auth_uri`` (no redirects) and return the parameters it sends back to the
        redirect URI: the Location's query (or fragment), or the fields of a form_post page."""
        with self.http_session() as session:
            response = session.get(auth_uri, allow_redirects=False, timeout=10)
        if response.status_code in (301, 302, 303):
            location = urlsplit(response.headers["Location"])
            return _first_values(location.query or location.fragment)
        if response.status_code == 200 and "<form" in response.text:
            return _form_fields(response.text)
        raise AssertionError(f"authorize answered {response.status_code}: {response.text}")

    # -- tokens ----------------------------------------------------------------------------

    def _sign(self, claims: dict) -> str:
        return jwt.encode(
            claims, self._signing_key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"}
        )

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._signing_key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256", "issuer": self.issuer})
        return {"keys": [jwk]}

    def decode(self, token: str, *, audience: str) -> dict:
        """Verify a token this stand-in issued (signature, audience, expiry) and return claims."""
        return jwt.decode(
            token,
            self._signing_key.public_key(),
            algorithms=["RS256"],
            audience=audience,
            options={"verify_iss": False},
        )

    def _sub(self, oid: str) -> str:
        return _b64url(hashlib.sha256(f"{oid}:{self.client_id}".encode()).digest())[:43]

    def _client_info(self, claims: dict) -> str:
        return _b64url(json.dumps({"uid": claims["oid"], "utid": claims["tid"]}).encode())

    def _id_token(self, claims: dict, *, nonce: str | None, auth_time: int, sid: str) -> str:
        now = int(time.time())
        payload = {
            "ver": "2.0",
            "iss": f"{self.base_url}/{claims['tid']}/v2.0",
            "aud": self.client_id,
            "sub": self._sub(claims["oid"]),
            "iat": now,
            "nbf": now - CLOCK_SKEW_NBF,
            "exp": now + ID_TOKEN_LIFETIME,
            "auth_time": auth_time,
            "sid": sid,
            "uti": _b64url(secrets.token_bytes(16)),
            **claims,
        }
        if len(payload.get("groups", ())) > GROUPS_OVERAGE_LIMIT:
            # Entra leaves the groups out of a JWT beyond 200 and points at Graph instead.
            del payload["groups"]
            payload["_claim_names"] = {"groups": "src1"}
            payload["_claim_sources"] = {
                "src1": {
                    "endpoint": f"https://graph.microsoft.com/v1.0/users/{claims['oid']}"
                    "/getMemberObjects"
                }
            }
        if nonce:
            payload["nonce"] = nonce
        return self._sign(payload)

    def _access_token(self, claims: dict, *, resource: str, scopes: list[str]) -> tuple[str, int]:
        now = int(time.time())
        lifetime = self.access_token_lifetime
        exp = now + lifetime if lifetime > 0 else now - 60
        permissions = sorted(
            {s.rsplit("/", 1)[-1] for s in scopes if _resource_of(s) == resource} - {".default"}
        ) or ["user_impersonation"]
        payload = {
            "ver": "1.0",
            "iss": f"https://sts.windows.net/{claims['tid']}/",
            "aud": resource,
            "iat": now,
            "nbf": now - CLOCK_SKEW_NBF,
            "exp": exp,
            "appid": self.client_id,
            "oid": claims["oid"],
            "tid": claims["tid"],
            "sub": self._sub(claims["oid"]),
            "upn": claims["preferred_username"],
            "unique_name": claims["preferred_username"],
            "preferred_username": claims["preferred_username"],
            "name": claims["name"],
            "scp": " ".join(permissions),
            "amr": ["pwd"],
            "uti": _b64url(secrets.token_bytes(16)),
        }
        return self._sign(payload), max(lifetime, 0)

    def _issue(
        self,
        *,
        grant_type: str,
        claims: dict,
        scopes: list[str],
        resource: str,
        consented: set[str],
        nonce: str | None,
        auth_time: int,
        sid: str,
    ) -> dict:
        access_token, expires_in = self._access_token(claims, resource=resource, scopes=scopes)
        body = {
            "token_type": "Bearer",
            "scope": " ".join(scopes),
            "expires_in": expires_in,
            "ext_expires_in": expires_in,
            "access_token": access_token,
        }
        if "offline_access" in scopes:
            refresh_token = "rt." + secrets.token_urlsafe(32)
            self._refresh_tokens[refresh_token] = {
                "oid": claims["oid"],
                "client_id": self.client_id,
                "consented": set(consented),
                "auth_time": auth_time,
                "sid": sid,
                "revoked": False,
            }
            body["refresh_token"] = refresh_token
        if "openid" in scopes:
            body["id_token"] = self._id_token(claims, nonce=nonce, auth_time=auth_time, sid=sid)
        body["client_info"] = self._client_info(claims)
        self.issued.append(
            {
                "grant_type": grant_type,
                "oid": claims["oid"],
                "aud": resource,
                "scope": body["scope"],
                "expires_in": expires_in,
                "auth_time": auth_time,
                "access_token": access_token,
            }
        )
        return body

    # -- endpoint logic (called by the handler under the lock) -----------------------------

    def _openid_configuration(self) -> dict:
        return {
            "token_endpoint": self.token_endpoint,
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": self.jwks_uri,
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.issuer,
            "request_uri_parameter_supported": False,
            "authorization_endpoint": self.authorization_endpoint,
            "end_session_endpoint": self.end_session_endpoint,
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "code_challenge_methods_supported": ["plain", "S256"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "preferred_username",
                "name",
                "tid",
                "ver",
                "email",
                "oid",
                "roles",
                "groups",
                "sid",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "127.0.0.1",
        }

    def _authorize(self, q: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """Returns (status, headers, body)."""
        redirect_uri = q.get("redirect_uri")
        state = q.get("state")
        record = {
            "client_id": q.get("client_id"),
            "redirect_uri": redirect_uri,
            "scope": q.get("scope"),
            "state": state,
            "nonce": q.get("nonce"),
            "max_age": int(q["max_age"]) if q.get("max_age", "").isdigit() else q.get("max_age"),
            "prompt": q.get("prompt"),
            "login_hint": q.get("login_hint"),
            "response_mode": q.get("response_mode") or "query",
            "fresh_sign_in": False,
            "auth_time": None,
            "oid": None,
            "error": None,
        }
        self.authorizations.append(record)
        if not redirect_uri or not urlsplit(redirect_uri).scheme:
            record["error"] = "invalid_request"
            return (
                400,
                {"Content-Type": "text/plain; charset=utf-8"},
                "AADSTS900144: The request body must contain the following parameter: "
                "'redirect_uri'.",
            )
        mode = record["response_mode"]

        def answer(params: dict[str, str]) -> tuple[int, dict[str, str], str]:
            if state is not None:
                params = {**params, "state": state}
            if mode == "form_post":
                inputs = "".join(
                    f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}"/>'
                    for k, v in params.items()
                )
                page = (
                    "<html><head><title>Working...</title></head>"
                    '<body onload="document.forms[0].submit()">'
                    f'<form method="POST" name="hiddenform" action="{html.escape(redirect_uri)}">'
                    f"{inputs}<noscript><input type='submit' value='Continue'/></noscript>"
                    "</form></body></html>"
                )
                return 200, {"Content-Type": "text/html; charset=utf-8"}, page
            sep = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
            return 302, {"Location": f"{redirect_uri}{sep}{urlencode(params)}"}, ""

        def error(code: str, description: str) -> tuple[int, dict[str, str], str]:
            record["error"] = code
            return answer(
                {
                    "error": code,
                    "error_description": description,
                    "error_uri": "https://login.microsoftonline.com/error",
                }
            )

        if q.get("client_id") != self.client_id:
            return error(
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{q.get('client_id')}' was not "
                f"found in the directory '{self.tenant_id}'.",
            )
        if q.get("response_type") != "code":
            return error(
                "unsupported_response_type",
                "AADSTS700054: response_type must be 'code' for this stand-in.",
            )
        if mode not in ("query", "fragment", "form_post"):
            return error("invalid_request", f"AADSTS900144: unknown response_mode '{mode}'.")
        if not state:
            return error("invalid_request", "The stand-in requires a 'state' parameter.")
        if not q.get("code_challenge"):
            return error(
                "invalid_request",
                "AADSTS9002325: Proof Key for Code Exchange is required (code_challenge).",
            )
        if q.get("code_challenge_method") != "S256":
            return error(
                "invalid_request",
                "AADSTS501491: Invalid code_challenge_method; the stand-in requires S256.",
            )
        scopes = (q.get("scope") or "").split()
        if not scopes:
            return error("invalid_request", "AADSTS900144: 'scope' is required.")
        if "openid" in scopes and not q.get("nonce"):
            return error("invalid_request", "The stand-in requires a 'nonce' with 'openid'.")
        resources = {r for r in map(_resource_of, scopes) if r}
        max_age = record["max_age"]
        if max_age is not None and not isinstance(max_age, int):
            return error("invalid_request", "AADSTS90011: max_age must be an integer.")
        prompt = q.get("prompt")

        now = int(time.time())
        oid = self._at_keyboard
        if oid is None:
            return error(
                "login_required",
                "AADSTS50058: no user is signed in (the stand-in needs sign_in_as()).",
            )
        sso = self._sso if self._sso and self._sso["oid"] == oid else None
        stale = sso is not None and max_age is not None and now - sso["auth_time"] > max_age
        if prompt == "none" and (sso is None or stale):
            return error(
                "login_required" if sso is None else "interaction_required",
                "AADSTS50058: A silent sign-in request was sent but the user must sign in.",
            )
        fresh = sso is None or stale or prompt == "login"
        if fresh:
            sso = {"oid": oid, "auth_time": now, "sid": str(uuid.uuid4())}
            self._sso = sso
        auth_time = sso["auth_time"]
        if self._auth_time_override is not None:
            auth_time, self._auth_time_override = self._auth_time_override, None
        claims = dict(self._directory[oid])
        record.update({"fresh_sign_in": fresh, "auth_time": auth_time, "oid": oid})

        code = "code." + secrets.token_urlsafe(32)
        self._codes[code] = {
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": q["code_challenge"],
            "nonce": q.get("nonce"),
            "scopes": scopes,
            "consented": resources,
            "claims": claims,
            "auth_time": auth_time,
            "sid": sso["sid"],
            "expires_at": now + CODE_LIFETIME,
            "redeemed": False,
        }
        params = {"code": code}
        if q.get("client_info") == "1":
            params["client_info"] = self._client_info(claims)
        params["session_state"] = sso["sid"]
        return answer(params)

    def _token_error(self, status: int, error: str, description: str, codes: list[int]):
        return status, {
            "error": error,
            "error_description": description,
            "error_codes": codes,
            "timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }

    def _token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict]:
        client_id = basic[0] if basic else form.get("client_id")
        secret = basic[1] if basic else form.get("client_secret")
        if form.get("client_id") and client_id != form.get("client_id"):
            return self._token_error(
                400, "invalid_request", "AADSTS90101: client_id in body and header differ.", [0]
            )
        if form.get("grant_type") == "client_credentials":
            return self._client_credentials(form, client_id, secret)
        if client_id != self.client_id:
            return self._token_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found.",
                [700016],
            )
        if secret != self.client_secret:
            return self._token_error(
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided.",
                [7000215],
            )
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._redeem_code(form)
        if grant_type == "refresh_token":
            return self._redeem_refresh_token(form)
        return self._token_error(
            400,
            "unsupported_grant_type",
            f"AADSTS70003: The app requested an unsupported grant type '{grant_type}'.",
            [70003],
        )

    def _client_credentials(self, form, client_id, secret) -> tuple[int, dict]:
        app = self._apps.get(client_id or "")
        if app is None:
            return self._token_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in "
                f"the directory '{self.tenant_id}'.",
                [700016],
            )
        if secret != app["client_secret"]:
            return self._token_error(
                401, "invalid_client", "AADSTS7000215: Invalid client secret provided.", [7000215]
            )
        scopes = (form.get("scope") or "").split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return self._token_error(
                400,
                "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid. Client credential "
                "flows must have a scope value with /.default suffixed to the resource "
                "identifier (application ID URI).",
                [1002012],
            )
        resource = scopes[0].removesuffix("/.default")
        now = int(time.time())
        lifetime = self.access_token_lifetime
        payload = {
            "iat": now,
            "nbf": now - CLOCK_SKEW_NBF,
            "exp": now + lifetime if lifetime > 0 else now - 60,
            "oid": app["oid"],
            "sub": app["oid"],
            "tid": app["tid"],
            "idtyp": "app",
            "uti": _b64url(secrets.token_bytes(16)),
        }
        if app["roles"]:
            payload["roles"] = list(app["roles"])
        if self.access_token_version == 1:
            payload.update(
                ver="1.0",
                iss=f"https://sts.windows.net/{app['tid']}/",
                aud=resource,
                appid=client_id,
                appidacr="1",
            )
        else:
            audience = self.client_id if resource == f"api://{self.client_id}" else resource
            payload.update(
                ver="2.0",
                iss=f"{self.base_url}/{app['tid']}/v2.0",
                aud=audience,
                azp=client_id,
                azpacr="1",
            )
        token = self._sign(payload)
        self.issued.append(
            {
                "grant_type": "client_credentials",
                "oid": app["oid"],
                "aud": payload["aud"],
                "scope": scopes[0],
                "expires_in": max(lifetime, 0),
                "auth_time": None,
                "access_token": token,
            }
        )
        return 200, {
            "token_type": "Bearer",
            "expires_in": max(lifetime, 0),
            "ext_expires_in": max(lifetime, 0),
            "access_token": token,
        }

    def _target_resource(self, scopes: list[str], consented: set[str]):
        resources = {r for r in map(_resource_of, scopes) if r}
        if len(resources) > 1:
            return None, self._token_error(
                400,
                "invalid_scope",
                "AADSTS28000: Provided value for the input parameter scope is not valid "
                "because it contains more than one resource.",
                [28000],
            )
        resource = resources.pop() if resources else GRAPH_RESOURCE
        if resource != GRAPH_RESOURCE and resource not in consented:
            return None, self._token_error(
                400,
                "invalid_grant",
                f"AADSTS65001: The user or administrator has not consented to use the "
                f"application with ID '{self.client_id}' for resource '{resource}'.",
                [65001],
            )
        return resource, None

    def _redeem_code(self, form: dict[str, str]) -> tuple[int, dict]:
        code = form.get("code", "")
        record = self._codes.get(code)
        if record is None:
            return self._token_error(
                400,
                "invalid_grant",
                "AADSTS9002313: Invalid request. Request is malformed or invalid "
                "(unknown authorization code).",
                [9002313],
            )
        if record["redeemed"]:
            return self._token_error(
                400,
                "invalid_grant",
                "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry "
                "with a new valid code or use an existing refresh token.",
                [54005],
            )
        record["redeemed"] = True
        if time.time() > record["expires_at"]:
            return self._token_error(
                400,
                "invalid_grant",
                "AADSTS70008: The provided authorization code or refresh token has expired.",
                [70008],
            )
        if form.get("redirect_uri") != record["redirect_uri"]:
            return self._token_error(
                400,
                "invalid_grant",
                "AADSTS500117: The reply uri specified in the request does not match the "
                "reply uri used in the authorization request.",
                [500117],
            )
        verifier = form.get("code_verifier")
        if not verifier:
            return self._token_error(
                400,
                "invalid_request",
                "AADSTS9002313: code_verifier is required (PKCE was used).",
                [9002313],
            )
        if _pkce_s256(verifier) != record["code_challenge"]:
            return self._token_error(
                400,
                "invalid_grant",
                "AADSTS501481: The Code_Verifier does not match the code_challenge supplied "
                "in the authorization request.",
                [501481],
            )
        scopes = (form.get("scope") or "").split() or record["scopes"]
        resource, failure = self._target_resource(scopes, record["consented"])
        if failure:
            return failure
        return 200, self._issue(
            grant_type="authorization_code",
            claims=record["claims"],
            scopes=scopes,
            resource=resource,
            consented=record["consented"],
            nonce=record["nonce"],
            auth_time=record["auth_time"],
            sid=record["sid"],
        )

    def _redeem_refresh_token(self, form: dict[str, str]) -> tuple[int, dict]:
        record = self._refresh_tokens.get(form.get("refresh_token", ""))
        if record is None:
            return self._token_error(
                400,
                "invalid_grant",
                "AADSTS9002313: Invalid request. Request is malformed or invalid "
                "(unknown refresh token).",
                [9002313],
            )
        if record["revoked"]:
            return self._token_error(
                400,
                "invalid_grant",
                "AADSTS50173: The provided grant has expired due to it being revoked, a fresh "
                "auth token is needed. The user might have changed or reset their password.",
                [50173],
            )
        scopes = (form.get("scope") or "").split()
        if not scopes:
            return self._token_error(
                400, "invalid_request", "AADSTS900144: 'scope' is required.", [900144]
            )
        resource, failure = self._target_resource(scopes, record["consented"])
        if failure:
            return failure
        return 200, self._issue(
            grant_type="refresh_token",
            claims=dict(self._directory[record["oid"]]),
            scopes=scopes,
            resource=resource,
            consented=record["consented"],
            nonce=None,
            auth_time=record["auth_time"],
            sid=record["sid"],
        )

    def _logout(self, q: dict[str, str]) -> tuple[int, dict[str, str], str]:
        self.logouts.append(
            {
                "post_logout_redirect_uri": q.get("post_logout_redirect_uri"),
                "logout_hint": q.get("logout_hint"),
                "state": q.get("state"),
                "id_token_hint": bool(q.get("id_token_hint")),
            }
        )
        self._sso = None
        target = q.get("post_logout_redirect_uri")
        if target and self.redirect_after_logout:
            if q.get("state"):
                target += ("&" if "?" in target else "?") + urlencode({"state": q["state"]})
            return 302, {"Location": target}, ""
        link = (
            f'<p><a href="{html.escape(target)}">Back to the application</a></p>' if target else ""
        )
        page = (
            "<html><head><title>Signed out</title></head><body>"
            f"<h1>signed out</h1><p>You have signed out of your account.</p>{link}</body></html>"
        )
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page


def _form_fields(page: str) -> dict[str, str]:
    fields: dict[str, str] = {}

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attributes = dict(attrs)
            if tag == "input" and attributes.get("type") == "hidden":
                fields[attributes["name"]] = attributes.get("value") or ""

    Parser().feed(page)
    return fields


def _json_answer(status: int, payload: dict) -> tuple[int, dict[str, str], str]:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload)


class _Handler(BaseHTTPRequestHandler):
    owner: EntraStandIn
    protocol_version = "HTTP/1.1"
    server_version = "EntraStandIn/1.0"

    def log_message(self, format, *args):  # quiet
        pass

    def _send(self, status: int, headers: dict[str, str], body: str | bytes) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        owner = self.owner
        url = urlsplit(self.path)
        query = _first_values(url.query)
        form: dict[str, str] = {}
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            if "application/x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                form = _first_values(raw)
        basic = None
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
                basic = (unquote_plus(user), unquote_plus(password))
            except ValueError:
                basic = ("", "")
        with owner._lock:
            owner.requests.append(
                {
                    "method": method,
                    "path": url.path,
                    "query": _mask(query),
                    "form": _mask(form),
                    "client_auth": "basic"
                    if basic
                    else ("post" if "client_secret" in form else None),
                    "time": time.time(),
                }
            )
            try:
                status, headers, body = self._dispatch(method, url.path, query, form, basic)
            except Exception as exc:  # a bug in the stand-in: answer 500, keep it for the test
                owner.errors.append(f"{method} {url.path}: {exc!r}")
                status, headers, body = _json_answer(
                    500, {"error": "server_error", "error_description": repr(exc)}
                )
        self._send(status, headers, body)

    def _dispatch(self, method, path, query, form, basic) -> tuple[int, dict[str, str], str]:
        owner = self.owner
        parts = [p for p in path.split("/") if p]
        if not parts:
            return _json_answer(404, {"error": "not_found"})
        tenant, rest = parts[0], "/".join(parts[1:])
        if tenant != owner.tenant_id:
            return _json_answer(
                400,
                {
                    "error": "invalid_tenant",
                    "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                    "error_codes": [90002],
                },
            )
        if method == "GET" and rest == "v2.0/.well-known/openid-configuration":
            return _json_answer(200, owner._openid_configuration())
        if method == "GET" and rest == "discovery/v2.0/keys":
            return _json_answer(200, owner.jwks())
        if method == "GET" and rest == "oauth2/v2.0/authorize":
            return owner._authorize(query)
        if method == "POST" and rest == "oauth2/v2.0/authorize":
            return owner._authorize(form or query)
        if method == "POST" and rest == "oauth2/v2.0/token":
            return _json_answer(*owner._token(form, basic))
        if method in ("GET", "POST") and rest == "oauth2/v2.0/logout":
            return owner._logout(query or form)
        return _json_answer(404, {"error": "not_found", "path": path})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")
