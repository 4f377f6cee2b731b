"""Machine access in the audit trail: the receiver of ``core.signals.api_access_event``
(connected in ``approvals.apps``), sent by the portal when an API token is made or revoked,
when a token (portal or Entra ID) is used (at most once a minute each) and when one is
refused. The portal never imports approvals; approvals owns the trail."""

from __future__ import annotations

from ..models import AuditAction
from .audit import user_display_name
from .signins import _audit_quietly, _request_facts

ACTIONS = {
    "token_created": AuditAction.API_TOKEN_CREATED,
    "token_revoked": AuditAction.API_TOKEN_REVOKED,
    "used": AuditAction.API_ACCESS,
    "refused": AuditAction.API_ACCESS_REFUSED,
}


def api_access_audit(
    sender,
    request=None,
    event: str = "",
    user=None,
    actor=None,
    reason: str = "",
    message: str = "",
    facts: dict | None = None,
    **kwargs,
) -> None:
    """One audit row: who (the person who made or revoked the token, else the token's owner
    or service principal), which token (its key id or ``uti``, never the token), from where
    (address, path) and why a refusal."""
    action = ACTIONS.get(event)
    if action is None:
        return
    who = actor if getattr(actor, "pk", None) else user if getattr(user, "pk", None) else None
    facts = dict(facts or {})
    name = user_display_name(who) if who is not None else ""
    if not name:
        unverified = facts.get("unverified_claims") or {}
        name = str(unverified.get("azp") or unverified.get("appid") or "(unknown caller)")
    detail = {"event": event, **facts, **_request_facts(request)}
    if reason:
        detail["reason"] = reason
    if user is not None and getattr(user, "pk", None) and who is not user:
        detail["owner"] = user.get_username()
    _audit_quietly(action=action, actor=who, actor_name=name, message=message, detail=detail)
