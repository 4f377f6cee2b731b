"""An approval's page beyond its evidence: whom ADO records a decision as, the run's stages,
the portal's decisions and the approval's audit trail."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.models import AdoProject, RunStage

from ..models import ApprovalRequest, AuditEvent, Decision, OutboxMessage, OutboxState
from ..services.identity import delivers_with_portal_identity


@dataclass(frozen=True)
class DecisionSender:
    """Whom Azure DevOps records a person's decision as: their own delegated Entra identity,
    or the portal's service identity (PAT or service principal) with their name in the
    comment. ``name`` is "" when the portal has not yet learnt its own name in ADO."""

    own_identity: bool
    name: str


def portal_identity_name(project_id: int | None) -> str:
    """The name ADO records the portal's own identity under in this project: what ADO showed
    at the portal's last delivery there (what it really recorded), else, before any delivery,
    the identity the project's sync read from ADO's connectionData (``service_identity``)."""
    outcome = (
        OutboxMessage.objects.filter(approval__project_id=project_id, state=OutboxState.DELIVERED)
        .exclude(ado_outcome__identity="user")
        .order_by("-delivered_at", "-pk")
        .values_list("ado_outcome", flat=True)
        .first()
    )
    delivered_as = str((outcome or {}).get("actual_approver") or "")
    if delivered_as or project_id is None:
        return delivered_as
    recorded = (
        AdoProject.objects.filter(pk=project_id).values_list("service_identity", flat=True).first()
    )
    return recorded or ""


def decision_sender(user, approval: ApprovalRequest) -> DecisionSender:
    if not delivers_with_portal_identity(user):
        account = getattr(user, "entra_account", None)
        name = getattr(account, "preferred_username", "") or getattr(user, "email", "")
        return DecisionSender(own_identity=True, name=name)
    return DecisionSender(own_identity=False, name=portal_identity_name(approval.project_id))


def approval_stages(approval: ApprovalRequest) -> list[RunStage]:
    """The run's stage timeline, in order."""
    if not approval.run_id:
        return []
    return list(RunStage.objects.filter(run_id=approval.run_id).order_by("order", "pk"))


def approval_decisions(approval: ApprovalRequest) -> list[Decision]:
    """Decisions made in the portal, each with its outbox message (delivery state)."""
    return list(
        Decision.objects.filter(approval=approval)
        .select_related("outbox", "user")
        .order_by("created_at", "pk")
    )


def approval_audit(approval: ApprovalRequest) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(approval=approval).order_by("at", "pk"))
