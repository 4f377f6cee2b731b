"""The demo's approvals: the first poll of the simulator's releases waiting at QA and PROD
(``manage.py demo`` calls these once the demo project is mirrored; beat polls every minute)."""

from __future__ import annotations

from pipelines.models import AdoProject, Environment

from . import services
from .models import OPEN_STATUSES, OUTBOX_FINAL_STATES, ApprovalRequest, DecidedIn


def first_poll(project: AdoProject) -> services.SyncResult:
    """Poll the project's approvals once, so the inbox is full when the portal starts."""
    return services.project_approvals_sync(project=project)


def pending_counts(project: AdoProject) -> tuple[int, int]:
    """How many of the project's approval requests wait at QA, and at PROD."""
    pending = ApprovalRequest.objects.filter(project=project, status__in=OPEN_STATUSES)
    return (
        pending.filter(environment=Environment.QA).count(),
        pending.filter(environment=Environment.PROD).count(),
    )


def decided_in_earlier_demo(project: AdoProject) -> int:
    """Approvals the fresh simulator waits for that an earlier demo decided in the portal.

    The simulator starts from the same history every time; the portal's database keeps what
    was decided in an earlier demo, so those runs stay where that demo left them.
    """
    return (
        ApprovalRequest.objects.filter(
            project=project,
            ado_status__in=OPEN_STATUSES,
            decided_in=DecidedIn.PORTAL,
            outbox_messages__state__in=OUTBOX_FINAL_STATES,
        )
        .distinct()
        .count()
    )
