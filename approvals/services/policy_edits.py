"""Changing approval policies: created, changed and deleted by admins and managers (the API
and the Django admin both come here), each change audited with what it was before and after."""

from __future__ import annotations

from django.db import transaction

from core.errors import PortalError
from core.roles import Role, user_roles

from ..models import POLICY_EDITABLE_FIELDS, ApprovalPolicy, AuditAction
from .audit import audit_record

POLICY_EDITOR_ROLES = frozenset({Role.ADMIN, Role.MANAGER})


class PolicyEditRefused(PortalError):
    """Someone without the manager or admin role tried to change a policy."""

    def __init__(self, message: str = "Only managers and admins change approval policies."):
        super().__init__(message, code="policy_edit_forbidden", http_status=403)


def policy_snapshot(policy: ApprovalPolicy | None) -> dict | None:
    """A policy's editable values as JSON (the audit row's before / after)."""
    if policy is None:
        return None
    values = {
        name: getattr(policy, name) for name in POLICY_EDITABLE_FIELDS if name != "catalog_model"
    }
    values["catalog_model"] = policy.catalog_model.name if policy.catalog_model_id else None
    return values


def policy_edit_check(*, user) -> None:
    if not user_roles(user) & POLICY_EDITOR_ROLES:
        raise PolicyEditRefused()


def _audit(policy: ApprovalPolicy, user, verb: str, before, after) -> None:
    audit_record(
        action=AuditAction.POLICY_CHANGED,
        actor=user,
        environment=policy.environment,
        model_name=policy.catalog_model.name if policy.catalog_model_id else "",
        message=f"{verb} the {policy.environment} approval policy for {policy.scope_label}",
        detail={"policy": policy.pk, "verb": verb.lower(), "before": before, "after": after},
    )


def policy_save(*, user, data: dict, policy_id: int | None = None) -> ApprovalPolicy:
    """Create (no ``policy_id``) or change a policy: validated (scope, uniqueness, the
    sequence's approvers) and audited in one transaction. Raises Django's ValidationError."""
    policy_edit_check(user=user)
    unknown = set(data) - set(POLICY_EDITABLE_FIELDS)
    if unknown:
        raise PortalError(
            f"Unknown fields: {', '.join(sorted(unknown))}.", code="bad_request", http_status=400
        )
    with transaction.atomic():
        if policy_id is None:
            policy, before, verb = ApprovalPolicy(), None, "Created"
        else:
            policy = ApprovalPolicy.objects.select_for_update().get(pk=policy_id)
            before, verb = policy_snapshot(policy), "Changed"
        for name, value in data.items():
            setattr(policy, name, value)
        policy.updated_by = user
        policy.full_clean()
        policy.save()
        after = policy_snapshot(policy)
        if before != after:
            _audit(policy, user, verb, before, after)
    return policy


def policy_delete(*, user, policy_id: int) -> None:
    """Delete a policy (its fields fall back to the broader scope), audited."""
    policy_edit_check(user=user)
    with transaction.atomic():
        policy = ApprovalPolicy.objects.select_for_update().get(pk=policy_id)
        before = policy_snapshot(policy)
        _audit(policy, user, "Deleted", before, None)
        policy.delete()
