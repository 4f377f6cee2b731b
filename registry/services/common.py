"""What the sync's modules share: the result one run reports, its progress callback, and the
comparison that writes only what changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from core.sync import CountsWithDeleted, SyncResultMixin

# (stage, done, total or None while unknown): what a long sync reports as it goes.
Progress = Callable[[str, int, int | None], None]


def noop_progress(stage: str, done: int, total: int | None) -> None:
    return None


@dataclass
class SyncResult(SyncResultMixin):
    """What one sync of a source counted; ``as_dict`` is the stats the source keeps and
    ``sync_registry`` prints (the names of the changed models are for the signal only)."""

    UNREPORTED = frozenset({"changed_model_names"})

    source: str
    mode: str  # full | incremental | model
    models: CountsWithDeleted = field(default_factory=CountsWithDeleted)
    versions: CountsWithDeleted = field(default_factory=CountsWithDeleted)
    runs_read: int = 0
    run_errors: int = 0
    events: int = 0  # registry history rows written
    duration_seconds: float = 0.0
    error: str = ""
    skipped: str = ""
    changed_model_names: set[str] = field(default_factory=set)
