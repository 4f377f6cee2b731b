"""Read queries shared by the registry's views, API and the portal's health checks."""

from __future__ import annotations

from portal.selectors import SyncStatus

from .models import RegistrySource


def sync_status_list() -> list[SyncStatus]:
    """One SyncStatus per enabled source, for /readyz, /metrics and the operator's home."""
    return [
        SyncStatus(
            name=f"registry:{source.name}",
            last_success_at=source.last_sync_succeeded_at,
            last_error_at=source.last_sync_error_at,
            last_error=source.last_sync_error,
        )
        for source in RegistrySource.objects.filter(enabled=True)
    ]
