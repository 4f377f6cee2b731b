"""Who is calling: Basic (any user name, a configured PAT) or Bearer (an Entra JWT, not verified).

ADO attributes every call to an identity; the simulator does the same so tests can check who
approved: a PAT maps to the identity configured for it, a bearer token to the ``oid`` /
``upn`` / ``name`` claims of its JWT payload (the signature is not checked: this is a test
double, and the tokens come from a local stand-in of the token endpoint).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass

from .util import stable_guid

SYSTEM_ID = "00000002-0000-8888-8000-000000000000"  # ADO's "Microsoft.TeamFoundation.System"


@dataclass(frozen=True)
class Identity:
    id: str
    display_name: str
    unique_name: str
    is_container: bool = False

    @property
    def descriptor(self) -> str:
        kind = "vssgp" if self.is_container else "aad"
        raw = base64.urlsafe_b64encode(self.id.encode()).decode().rstrip("=")
        return f"{kind}.{raw}"

    def to_json(self, base_url: str) -> dict:
        """An ``IdentityRef`` as ADO serializes it."""
        data = {
            "displayName": self.display_name,
            "url": f"{base_url}/_apis/Identities/{self.id}",
            "_links": {
                "avatar": {"href": f"{base_url}/_apis/GraphProfile/MemberAvatars/{self.descriptor}"}
            },
            "id": self.id,
            "uniqueName": self.unique_name,
            "imageUrl": f"{base_url}/_api/_common/identityImage?id={self.id}",
            "descriptor": self.descriptor,
        }
        if self.is_container:
            data["isContainer"] = True
        return data

    def summary(self) -> dict:
        return {"id": self.id, "displayName": self.display_name, "uniqueName": self.unique_name}

    @classmethod
    def user(cls, unique_name: str, display_name: str | None = None) -> Identity:
        return cls(
            stable_guid("user", unique_name.lower()), display_name or unique_name, unique_name
        )

    @classmethod
    def group(cls, project: str, name: str) -> Identity:
        return cls(
            stable_guid("group", project, name),
            f"[{project}]\\{name}",
            f"[{project}]\\{name}",
            True,
        )


@dataclass(frozen=True)
class Caller:
    identity: Identity
    scheme: str  # "Basic" or "Bearer"
    claims: dict | None = None

    def to_json(self) -> dict:
        data = {"scheme": self.scheme, "identity": self.identity.summary()}
        if self.claims is not None:
            data["claims"] = {
                k: self.claims[k]
                for k in ("oid", "upn", "name", "tid", "appid", "scp", "roles")
                if k in self.claims
            }
        return data


class AuthError(Exception):
    pass


def decode_jwt_claims(token: str) -> dict:
    """The payload of a JWT, without verifying anything."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("the bearer token is not a JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, binascii.Error) as exc:
        raise AuthError("the bearer token's payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise AuthError("the bearer token's payload is not an object")
    return claims


def identity_from_claims(claims: dict) -> Identity:
    oid = claims.get("oid") or claims.get("sub")
    unique = (
        claims.get("upn")
        or claims.get("preferred_username")
        or claims.get("unique_name")
        or claims.get("email")
        or claims.get("appid")
        or claims.get("azp")
    )
    if not oid and not unique:
        raise AuthError("the bearer token has neither an oid nor a upn claim")
    unique = str(unique or oid)
    name = claims.get("name") or claims.get("app_displayname") or unique
    return Identity(str(oid or stable_guid("user", unique.lower())), str(name), unique)


def authenticate(header: str | None, pats: dict[str, Identity]) -> Caller:
    """Resolve an ``Authorization`` header, or raise ``AuthError`` (the server answers 401)."""
    if not header:
        raise AuthError("no Authorization header")
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.encode(), validate=True).decode()
        except (ValueError, binascii.Error) as exc:
            raise AuthError("malformed basic credentials") from exc
        _user, _, password = decoded.partition(":")
        identity = pats.get(password)
        if identity is None:
            raise AuthError("unknown personal access token")
        return Caller(identity, "Basic")
    if scheme.lower() == "bearer":
        claims = decode_jwt_claims(credentials)
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp < time.time():
            raise AuthError("the bearer token has expired")
        return Caller(identity_from_claims(claims), "Bearer", claims)
    raise AuthError(f"unsupported authorization scheme {scheme!r}")
