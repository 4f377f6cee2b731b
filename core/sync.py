"""Sync bookkeeping every mirror shares (registry sources, ADO projects, approval polls):
the state one sync reports, its short reason for people, and how the apps' states are
collected (``PORTAL_SYNC_STATUS_PROVIDERS``, so the kernel never imports an app)."""

from __future__ import annotations

import re
from dataclasses import dataclass
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
