"""How fresh the mirror is: each enabled source's sync state, for the banner on every registry
page, /readyz, /metrics and the operator's home."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.urls import reverse

from core.sync import SyncStatus

from ..models import RegistrySource

REGISTRY_SYSTEM = "the MLflow registry"


def _source_admin_url(source: RegistrySource) -> str:
    return reverse("admin:registry_registrysource_change", args=[source.pk])


def sync_status_list() -> list[SyncStatus]:
    """One SyncStatus per enabled source, for /readyz, /metrics and the operator's home."""
    return [
        source.sync_status(
            f"registry:{source.name}", system=REGISTRY_SYSTEM, admin_url=_source_admin_url(source)
        )
        for source in RegistrySource.objects.filter(enabled=True)
    ]


@dataclass(frozen=True)
class SourceFreshness:
    """How fresh one enabled source's mirror is: ok, stale, failing or never synced."""

    name: str
    is_central: bool
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str  # the raw error: operators only
    system: str = REGISTRY_SYSTEM
    admin_url: str = ""  # where an operator configures the source

    @property
    def _status(self) -> SyncStatus:
        return SyncStatus(
            self.name, self.last_success_at, self.last_error_at, self.last_error, self.system
        )

    @property
    def reason(self) -> str:
        """Why the last sync failed, in a few words anyone can read."""
        return self._status.reason

    @property
    def state(self) -> str:
        status = self._status
        if status.failing:
            return "failing"
        if self.last_success_at is None:
            return "never"
        return "stale" if status.stale else "ok"

    @property
    def age_seconds(self) -> float | None:
        return self._status.age_seconds


@dataclass(frozen=True)
class Freshness:
    sources: tuple[SourceFreshness, ...]

    @property
    def as_of(self) -> datetime | None:
        """The mirror is as fresh as its least fresh source (None while one never synced)."""
        times = [s.last_success_at for s in self.sources]
        if not times or any(t is None for t in times):
            return None
        return min(times)

    @property
    def stale_after_seconds(self) -> int:
        return settings.PORTAL_SYNC_STALE_AFTER_SECONDS

    @property
    def stale_after_text(self) -> str:
        seconds = self.stale_after_seconds
        for unit, size in (("hour", 3600), ("minute", 60)):
            if seconds >= size and seconds % size == 0:
                count = seconds // size
                return f"{count} {unit}{'' if count == 1 else 's'}"
        return f"{seconds} seconds"

    @property
    def healthy(self) -> tuple[SourceFreshness, ...]:
        return tuple(s for s in self.sources if s.state == "ok")

    @property
    def worst_state(self) -> str:
        states = {s.state for s in self.sources}
        for state in ("failing", "never", "stale", "ok"):
            if state in states:
                return state
        return "none"


def registry_freshness() -> Freshness:
    """The sync state of every enabled source, for the banner on every registry page."""
    return Freshness(
        tuple(
            SourceFreshness(
                s.name,
                s.is_central,
                s.last_sync_succeeded_at,
                s.last_sync_error_at,
                s.last_sync_error,
                admin_url=_source_admin_url(s),
            )
            for s in RegistrySource.objects.filter(enabled=True)
        )
    )
