"""The home page's cards and the health of the approvals mirror: what waits for whom, what
one decided, deliveries in trouble, the outbox backlog, and each project's poll state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from core.sync import SyncStatus
from registry.models import ModelVersion

from ..models import (
    OPEN_STATUSES,
    ApprovalRequest,
    ApprovalSync,
    Decision,
    OutboxMessage,
    OutboxState,
)
from .inbox import approvals_base, overdue_cutoff


def sync_status_list() -> list[SyncStatus]:
    """One SyncStatus per enabled ADO project's approvals poll (for /readyz and /metrics)."""
    return [
        state.sync_status(
            f"approvals:{state.project.name}",
            system="Azure DevOps",
            admin_url=reverse("admin:pipelines_adoproject_change", args=[state.project_id]),
        )
        for state in ApprovalSync.objects.filter(project__enabled=True).select_related("project")
    ]


def approvals_as_of() -> datetime | None:
    """The oldest last successful approvals poll among enabled projects (the "as of" note)."""
    times = [s.last_success_at for s in sync_status_list()]
    if not times or any(t is None for t in times):
        return None
    return min(times)


def waiting_for(user, limit: int = 8) -> list[ApprovalRequest]:
    """Open requests this approver has not decided yet, oldest first."""
    mine = Decision.objects.filter(approval=OuterRef("pk"), user=user)
    return list(
        approvals_base()
        .filter(status__in=OPEN_STATUSES)
        .exclude(Exists(mine))
        .order_by("created_on", "pk")[:limit]
    )


def decided_by(user, limit: int = 8) -> list[Decision]:
    return list(
        Decision.objects.filter(user=user)
        .select_related("approval__catalog_model", "approval__model_version", "outbox")
        .order_by("-created_at", "-pk")[:limit]
    )


def delivery_problems(user=None, limit: int = 20) -> list[OutboxMessage]:
    """Failed deliveries (and ones still retrying after an error): one user's, or all."""
    qs = OutboxMessage.objects.filter(
        Q(state=OutboxState.FAILED)
        | Q(state=OutboxState.QUEUED, attempts__gt=0)
        | Q(state=OutboxState.ALREADY_DECIDED)
        | Q(state=OutboxState.NEEDS_SIGNIN)
    )
    if user is not None:
        qs = qs.filter(decision__user=user)
    else:
        qs = qs.exclude(state=OutboxState.ALREADY_DECIDED)
    return list(
        qs.select_related("decision", "approval__catalog_model").order_by("-created_at")[:limit]
    )


@dataclass(frozen=True)
class OutboxBacklog:
    queued: int
    failed: int
    oldest_queued_at: datetime | None


def outbox_backlog() -> OutboxBacklog:
    queued = OutboxMessage.objects.filter(state=OutboxState.QUEUED)
    oldest = queued.order_by("created_at").values_list("created_at", flat=True).first()
    return OutboxBacklog(
        queued=queued.count(),
        failed=OutboxMessage.objects.filter(state=OutboxState.FAILED).count(),
        oldest_queued_at=oldest,
    )


def overdue_pending(limit: int = 8) -> list[ApprovalRequest]:
    return list(
        approvals_base()
        .filter(status__in=OPEN_STATUSES, created_on__lt=overdue_cutoff())
        .order_by("created_on")[:limit]
    )


def versions_waiting(team: str = "", limit: int = 8) -> list[ApprovalRequest]:
    qs = approvals_base().filter(status__in=OPEN_STATUSES)
    if team:
        qs = qs.filter(Q(catalog_model__team=team) | Q(catalog_model__registry_team=team))
    return list(qs.order_by("created_on")[:limit])


def approvals_for_version(version: ModelVersion) -> list[ApprovalRequest]:
    """Approval requests that concern one version (the version page)."""
    return list(approvals_base().filter(model_version=version).order_by("-created_on"))
