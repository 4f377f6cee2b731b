"""Machine access to the API, as the kernel knows it: what a token-authenticated request
carries (``MachineCredential``, DRF's ``request.auth``), the refusal of a bad token (401) and
of a read-only token's write (403), so any app can tell a script from a person without
importing the portal, which owns the tokens and their authentication classes
(portal/api_auth.py).

Two kinds: ``entra_app``, an Entra ID access token of a service principal or managed
identity (client credentials); ``portal_token``, a portal API token a person made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import PortalError

ENTRA_APP = "entra_app"
PORTAL_TOKEN = "portal_token"  # noqa: S105 - a kind's name, not a secret
READ = "read"
WRITE = "write"


@dataclass(frozen=True)
class MachineCredential:
    """What authenticated a request that carried no session: its ``kind``, the token's public
    id (a portal token's key id, an Entra token's ``uti``), a label for people, its scope
    (``read`` or ``write``) and facts for the audit trail (never the token itself)."""

    kind: str
    token_id: str
    label: str
    scope: str = WRITE
    facts: dict = field(default_factory=dict)

    @property
    def may_write(self) -> bool:
        return self.scope == WRITE

    def describe(self) -> str:
        what = "Entra ID access token" if self.kind == ENTRA_APP else "portal API token"
        return f"{what} {self.label}"

    def audit_facts(self) -> dict:
        return {"kind": self.kind, "token_id": self.token_id, "label": self.label, **self.facts}


def machine_credential(request) -> MachineCredential | None:
    """The token a DRF request was authenticated with, or None for a session (or none)."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, MachineCredential) else None


class CredentialRefused(PortalError):
    """A bearer token the API does not accept (unknown, expired, revoked, wrong audience or
    issuer, bad signature): 401, with a ``WWW-Authenticate`` header saying why
    (core.api_support adds it)."""

    http_status = 401
    code = "invalid_token"

    def www_authenticate(self) -> str:
        # A header is ASCII: the ellipsis of a key id becomes three dots, anything else goes.
        text = self.message.replace('"', "'").replace("\u2026", "...")
        description = text.encode("ascii", "ignore").decode()
        return f'Bearer error="invalid_token", error_description="{description}"'


class ScopeRefused(PortalError):
    """A read-only token asked for a write."""

    http_status = 403
    code = "insufficient_scope"


READ_ONLY_MESSAGE = (
    "This token is read-only (scope 'read'): make a token with scope 'write' for this call."
)
