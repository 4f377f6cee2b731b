"""Sync bookkeeping every mirror shares (registry sources, ADO projects, approval polls):
the state one sync reports, its short reason for people, and how the apps' states are
collected (``PORTAL_SYNC_STATUS_PROVIDERS``, so the kernel never imports an app)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

# What a sync error means, for people who should not have to read a stack of exceptions:
# (pattern over the error's text, reason), the first match wins; {what} names the system.
SYNC_ERROR_REASONS = (
    (r"ssl|certificate", "the secure connection to {what} failed (its certificate)"),
    (r"timed out|timeout", "{what} did not answer in time"),
    (
        r"connection refused|max retries exceeded|failed to establish|connectionerror"
        r"|name or service not known|name resolution|unreachable",
        "{what} could not be reached",
    ),
    (
        r"\b40[13]\b|unauthori[sz]ed|forbidden|permission_denied|unauthenticated",
        "{what} refused the credentials the portal uses",
    ),
    (r"\b404\b|not found|does_not_exist", "{what} does not know the address the portal uses"),
    (
        r"\b50[0-4]\b|internal_error|service unavailable|bad gateway|temporarily_unavailable",
        "{what} answered with an error",
    ),
)


def sync_error_reason(error: str, what: str = "the server") -> str:
    """A short reason for a failed sync that anyone can read ("" when there was no error).

    The raw error (an exception with hosts, ports and object ids) is for operators only.
    """
    if not error:
        return ""
    text = error.lower()
    for pattern, reason in SYNC_ERROR_REASONS:
        if re.search(pattern, text):
            return reason.format(what=what)
    return f"an unexpected error while reading {what}"


@dataclass(frozen=True)
class SyncStatus:
    """The state of one sync (a registry source, an ADO project...), as its app reports it."""

    name: str
    last_success_at: datetime | None
    last_error_at: datetime | None = None
    last_error: str = ""
    system: str = "the server"  # what it reads, for the short reason ("the MLflow registry")
    admin_url: str = ""  # where an operator configures it

    @property
    def reason(self) -> str:
        """Why the last sync failed, in a few words (the details are ``last_error``)."""
        return sync_error_reason(self.last_error, self.system)

    @property
    def age_seconds(self) -> float | None:
        if self.last_success_at is None:
            return None
        return max(0.0, (timezone.now() - self.last_success_at).total_seconds())

    @property
    def failing(self) -> bool:
        if self.last_error_at is None:
            return False
        return self.last_success_at is None or self.last_error_at > self.last_success_at

    @property
    def stale(self) -> bool:
        age = self.age_seconds
        return age is None or age > settings.PORTAL_SYNC_STALE_AFTER_SECONDS

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 1),
            "stale": self.stale,
            "failing": self.failing,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "last_error": self.last_error,
        }


def sync_status_list() -> list[SyncStatus]:
    """Collect every app's sync states through PORTAL_SYNC_STATUS_PROVIDERS."""
    statuses: list[SyncStatus] = []
    for dotted in settings.PORTAL_SYNC_STATUS_PROVIDERS:
        statuses.extend(import_string(dotted)())
    return sorted(statuses, key=lambda s: s.name)


# --- What one sync run counted ------------------------------------------------------------


@dataclass
class Counts:
    """Rows a sync created, updated or found unchanged (``deleted`` where a sync deletes)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}

    @property
    def changed(self) -> int:
        return self.created + self.updated


@dataclass
class CountsWithDeleted(Counts):
    deleted: int = 0

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
        }

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted


class SyncResultMixin:
    """What every app's ``SyncResult`` dataclass shares: ``ok`` and ``as_dict`` (the stats the
    bookkeeping keeps and the ``sync_*`` commands print). ``as_dict`` reports every field in
    declaration order except ``UNREPORTED`` ones, nested counts as dicts, durations rounded."""

    UNREPORTED: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not getattr(self, "error", "") and not getattr(self, "skipped", "")

    def as_dict(self) -> dict:
        report = {}
        for item in fields(self):  # type: ignore[arg-type]
            if item.name in self.UNREPORTED:
                continue
            value = getattr(self, item.name)
            if isinstance(value, Counts):
                value = value.as_dict()
            elif item.name == "duration_seconds":
                value = round(value, 3)
            report[item.name] = value
        return report


# --- Beat schedules ------------------------------------------------------------------------


def periodic_task_ensure(
    *,
    name: str,
    task: str,
    every_seconds: int,
    kwargs: dict,
    enabled: bool,
    description: str,
    min_seconds: int = 10,
) -> None:
    """Create or update the beat entry ``name`` (django-celery-beat) to run ``task``."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask  # app registry ready

    interval, _ = IntervalSchedule.objects.get_or_create(
        every=max(every_seconds, min_seconds), period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.update_or_create(
        name=name,
        defaults={
            "task": task,
            "interval": interval,
            "kwargs": json.dumps(kwargs),
            "enabled": enabled,
            "description": description,
        },
    )


def periodic_tasks_remove(*names: str) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name__in=names).delete()


# --- Applying what the source says ---------------------------------------------------------


def values_assign(obj, values: dict) -> dict:
    """Set each of ``values`` on ``obj``; the previous values of those that differed (a row to
    write), empty (so false) when none did: an unchanged upstream row costs no UPDATE and
    counts as unchanged, and a history of the change needs no copy taken beforehand."""
    previous = {}
    for name, value in values.items():
        old = getattr(obj, name)
        if old != value:
            previous[name] = old
            setattr(obj, name, value)
    return previous
