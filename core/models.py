"""The kernel's one model piece: where a mirror keeps its sync's state (abstract: no table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import models
from django.utils import timezone

from .sync import SyncStatus

# --- Where a mirror keeps its sync's state -----------------------------------------------


@dataclass(frozen=True)
class SyncFields:
    """The bookkeeping columns of a model (their names predate this module, so they stay)."""

    started: str = "last_sync_started_at"
    succeeded: str = "last_sync_succeeded_at"
    error_at: str = "last_sync_error_at"
    error: str = "last_sync_error"
    stats: str = "last_sync_stats"


ERROR_MAX_CHARS = 2000


class SyncBookkeepingMixin:
    """Writes of a sync's start, success and failure, for any model with ``SYNC_FIELDS``
    columns. Each write is an ``update`` of those columns only, so it never overwrites what
    an operator changed on the same row meanwhile."""

    SYNC_FIELDS = SyncFields()

    def _sync_update(self, **values) -> None:
        type(self)._default_manager.filter(pk=self.pk).update(**values)
        for name, value in values.items():
            setattr(self, name, value)

    def sync_started(self) -> datetime:
        now = timezone.now()
        self._sync_update(**{self.SYNC_FIELDS.started: now})
        return now

    def sync_succeeded(self, stats: dict, **other_updates) -> datetime:
        now = timezone.now()
        names = self.SYNC_FIELDS
        self._sync_update(**{names.succeeded: now, names.stats: stats}, **other_updates)
        return now

    def sync_failed(self, error: str) -> datetime:
        now = timezone.now()
        names = self.SYNC_FIELDS
        self._sync_update(**{names.error_at: now, names.error: error[:ERROR_MAX_CHARS]})
        return now

    def sync_status(self, name: str, *, system: str, admin_url: str = "") -> SyncStatus:
        names = self.SYNC_FIELDS
        return SyncStatus(
            name=name,
            last_success_at=getattr(self, names.succeeded),
            last_error_at=getattr(self, names.error_at),
            last_error=getattr(self, names.error),
            system=system,
            admin_url=admin_url,
        )


class SyncBookkeeping(SyncBookkeepingMixin, models.Model):
    """The bookkeeping columns of a synced source (a registry source, an ADO project), and
    the lease (``core.leases``) that keeps two syncs of it from running at once."""

    last_sync_started_at = models.DateTimeField(null=True, blank=True)
    last_sync_succeeded_at = models.DateTimeField(null=True, blank=True)
    last_sync_error_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True)
    last_sync_stats = models.JSONField(default=dict, blank=True)
    lock_token = models.CharField(max_length=64, blank=True)
    lock_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


# --- Rows the environment declares (manage.py bootstrap_from_env) ---------------------------


class EnvironmentDeclared(models.Model):
    """A row that ``manage.py bootstrap_from_env`` may create from environment variables.

    ``declared_by`` maps each field the environment owns to the variable that sets it (empty:
    the row was made in the admin, and the bootstrap never touches it). The admin shows those
    fields read-only with their variable, since the next bootstrap would undo an edit."""

    declared_by = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Fields set from environment variables by manage.py bootstrap_from_env, "
        "each with its variable; empty: made in the admin.",
    )

    class Meta:
        abstract = True

    @property
    def from_environment(self) -> bool:
        return bool(self.declared_by)
