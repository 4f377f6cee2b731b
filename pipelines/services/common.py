"""What the steps of a pipelines sync share: its result, its progress callback, and how an
ADO value becomes a mirror's field."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.dateparse import parse_datetime

from core.sync import Counts, SyncResultMixin

Progress = Callable[[str, int, int | None], None]


def no_progress(stage: str, done: int, total: int | None) -> None:
    return None


@dataclass
class SyncResult(SyncResultMixin):
    """What one sync (or one run's refresh) did; ``as_dict`` is the stats the project keeps
    and ``sync_pipelines`` reports (every field but the two below, in this order)."""

    UNREPORTED = frozenset({"changed_run_ids", "newest_seen"})

    project: str
    mode: str  # full | incremental | run
    pipelines: Counts = field(default_factory=Counts)
    runs: Counts = field(default_factory=Counts)
    stages: Counts = field(default_factory=Counts)
    timelines_read: int = 0
    requests: int = 0
    deployments_recorded: int = 0
    duration_seconds: float = 0.0
    error: str = ""
    skipped: str = ""
    changed_run_ids: set[int] = field(default_factory=set)
    newest_seen: datetime | None = None  # the latest queue/start/finish time ADO reported


def ado_datetime(value: str | None) -> datetime | None:
    """An ADO timestamp (ISO 8601), None when ADO sent none."""
    return parse_datetime(value) if value else None
