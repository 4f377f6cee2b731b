"""What a rule answers: the ``Rule`` the decision box, the API and the automated check list,
and the ``DecisionRefused`` a failed one raises. Its own module so that every rule module
(rules, gates, policies, freeze windows) can build rules without importing ``rules``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse

from core.errors import PortalError


class DecisionRefused(PortalError):
    """A decision (or a retry) the rules do not allow; ``code`` is stable, ``message`` is for
    people, ``http_status`` what the page and the API answer."""

    http_status = 403

    def __init__(self, code: str, message: str, *, http_status: int = 403, **extra):
        super().__init__(message, code=code, http_status=http_status, **extra)


class ReauthenticationRequired(DecisionRefused):
    """A PROD decision needs a recent sign-in; ``reauthenticate_url`` (in the API's error
    body) is where to confirm who you are and come back."""

    def __init__(self, message: str, **extra):
        super().__init__("reauthentication_required", message, http_status=401, **extra)


def reauthenticate_url(approval_id: int) -> str:
    """Where to sign in again and come back to the approval's page."""
    back = reverse("approvals:detail", kwargs={"pk": approval_id})
    return f"{reverse('reauthenticate')}?{urlencode({'next': back})}"


@dataclass(frozen=True)
class Rule:
    """One rule the decision box lists: whether it lets this user decide, and why.

    ``warning``: met, but worth saying (a soak time in warn mode); ``until``: when a rule that
    waits stops refusing (a soak time's end, a freeze window's reopening); ``values``: the
    numbers behind it (a metric comparison), shown on the page and sent in ADO's log;
    ``approve_only``: a gate on promotion (``gates.environment_rules``), which refuses an
    approval but never a rejection: rejecting stops the deployment, which is what a freeze
    window or an unfinished soak time wants anyway."""

    code: str
    ok: bool
    message: str
    warning: bool = False
    until: datetime | None = None
    values: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    approve_only: bool = False

    def refusal(self, approval_id: int | None = None) -> DecisionRefused:
        """What a failed rule answers, the same for the page and the API."""
        if self.code == "recent_sign_in":
            if approval_id is None:
                return ReauthenticationRequired(self.message)
            return ReauthenticationRequired(
                self.message, reauthenticate_url=reauthenticate_url(approval_id)
            )
        status = 409 if self.code in CONFLICT_RULES else 403
        return DecisionRefused(self.code, self.message, http_status=status)


NOT_AN_APPROVER = "Only people with the approver role can decide."
HUMAN_DECISION_REQUIRED = (
    "Decisions on approvals stay human: no API token or Entra ID application token can "
    "approve or reject. An approver decides in the portal, signed in."
)

# Rules that fail because of the request's state, not the person: HTTP 409.
CONFLICT_RULES = frozenset({"already_decided", "already_decided_by_you", "one_identity", "expired"})
