"""The demo's approvals: the first poll of the simulator's releases waiting at QA and PROD
(``manage.py demo`` calls these once the demo project is mirrored; beat polls every minute)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from pipelines.models import AdoProject, Environment

from . import services
from .models import (
    OPEN_STATUSES,
    OUTBOX_FINAL_STATES,
    ApprovalPolicy,
    ApprovalRequest,
    DecidedIn,
    FreezeWindow,
)

# The demo's release policy for PROD: a day in QA first (a warning, so the demo's PROD request
# can still be approved) and a sign-off after each PROD deployment.
DEMO_PROD_POLICY = {
    "environment": Environment.PROD,
    "scope": "global",
    "soak_hours": 24.0,
    "soak_mode": "warn",
    "signoff_required": True,
    "note": "Demo: a day in QA before PROD, and a sign-off after each PROD deployment.",
}
DEMO_FREEZE_NAME = "Data-centre move"


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


def release_rules_ensure(*, user) -> tuple[int, int]:
    """The demo's release policy and a freeze window ahead (once; edits are audited as
    ``user``'s): the freeze starts ten days after the first demo start, so today's requests
    can be decided and the freeze page has something coming."""
    policies = windows = 0
    if not ApprovalPolicy.objects.filter(environment=Environment.PROD, scope="global").exists():
        services.policy_save(user=user, data=dict(DEMO_PROD_POLICY))
        policies = 1
    if not FreezeWindow.objects.filter(name=DEMO_FREEZE_NAME).exists():
        start = timezone.now().replace(hour=18, minute=0, second=0, microsecond=0)
        services.freeze_window_create(
            user=user,
            name=DEMO_FREEZE_NAME,
            kind="deny",
            environment=Environment.PROD,
            reason="The PROD cluster moves to the new data centre; no deployments meanwhile.",
            dtstart=start + timedelta(days=10),
            duration_minutes=2 * 24 * 60,
            timezone="Europe/Amsterdam",
        )
        windows = 1
    return policies, windows
