"""The audit trail: ``audit_record`` is the only way rows get there (the table is append-only),
and how the trail names people and models."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from core.request_context import get_request_id

from ..models import ApprovalRequest, AuditEvent, Decision

# Who the trail names when the portal itself acted, and the mark a decision's comment carries
# in ADO (how a delivery recognises its own decision there, and a sync the portal's outcome).
SYSTEM_ACTOR = "portal (sync)"
DELIVERY_ACTOR = "portal (delivery)"
PORTAL_MARK = "via MLOps Portal, decision"


def audit_record(
    *,
    action: str,
    message: str,
    actor=None,
    actor_name: str = "",
    approval: ApprovalRequest | None = None,
    decision: Decision | None = None,
    detail: dict | None = None,
    at: datetime | None = None,
    environment: str = "",
    model_name: str = "",
) -> AuditEvent:
    """Append one row to the audit trail (the only way rows get there). ``environment`` and
    ``model_name`` name what a row without an approval is about (an automated check, a policy,
    a sign-off, a freeze window's scope)."""
    if actor is not None and not actor_name:
        actor_name = user_display_name(actor)
    return AuditEvent.objects.create(
        at=at or timezone.now(),
        action=action,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=actor_name[:300],
        approval=approval,
        decision=decision,
        environment=((approval.environment if approval else "") or environment)[:10],
        model_name=(approval_model_name(approval) or model_name)[:255],
        message=message,
        detail=detail or {},
        request_id=(get_request_id() or "")[:100],
    )


def approval_model_name(approval: ApprovalRequest | None) -> str:
    if approval is None:
        return ""
    if approval.catalog_model_id:
        return approval.catalog_model.name
    return approval.pipeline_name


def user_display_name(user) -> str:
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return full or user.get_username()


def user_identities(user) -> set[str]:
    """What ADO and MLflow may call this person: e-mail and user name, lower-cased."""
    names = {user.get_username().lower()}
    if getattr(user, "email", ""):
        names.add(user.email.lower())
    return {n for n in names if n}
