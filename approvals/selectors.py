"""Read queries shared by this app's views, API, home cards and the pages of other apps."""

from __future__ import annotations

from portal.selectors import SyncStatus

from .models import ApprovalSync


def sync_status_list() -> list[SyncStatus]:
    """One SyncStatus per enabled ADO project's approvals poll (for /readyz and /metrics)."""
    return [
        SyncStatus(
            name=f"approvals:{state.project.name}",
            last_success_at=state.last_succeeded_at,
            last_error_at=state.last_error_at,
            last_error=state.last_error,
        )
        for state in ApprovalSync.objects.filter(project__enabled=True).select_related("project")
    ]
