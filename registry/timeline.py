"""The shapes a model's timeline is drawn from, shared by the apps that add lanes to it.

The registry gives alias lanes (``selectors.alias_lanes``); the pipelines app gives one lane
per environment and target from its deployment history. A span's start (and end) may be known
only to lie in a window, because a sync sees states, not moments: ``start_after`` ..
``start`` is that window (equal, or ``start_after`` None when exact or unknown).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """One version holding a lane from ``start`` until ``end`` (None: still holds it)."""

    label: str  # "v3"
    start: dt.datetime | None  # the latest moment it began (None: before the portal looked)
    end: dt.datetime | None = None  # the latest moment it ended; None while it holds
    start_after: dt.datetime | None = None  # the earliest moment it began, when uncertain
    end_after: dt.datetime | None = None  # the earliest moment it ended, when uncertain
    version: int | None = None
    url: str = ""
    title: str = ""  # the hover text: run, who approved, "moved between A and B"
    detail: dict = field(default_factory=dict)

    @property
    def is_current(self) -> bool:
        return self.end is None

    @property
    def start_uncertain(self) -> bool:
        return self.start_after is not None and self.start_after != self.start

    @property
    def end_uncertain(self) -> bool:
        return self.end_after is not None and self.end_after != self.end

    def covers(self, at: dt.datetime) -> bool | None:
        """True if it surely held the lane at ``at``, False if surely not, None if ``at``
        falls inside a window the syncs could not see into."""
        if self.start_after is not None and at < self.start_after:
            return False
        if self.end is not None and at >= self.end:
            return False
        started = self.start is None or at >= self.start
        ended = self.end_after is not None and at >= self.end_after
        return None if (not started or ended) else True


@dataclass(frozen=True)
class Lane:
    """A row of the timeline: an environment and target ("PROD · AKS") or an alias."""

    key: str  # "env:PROD:aks", "alias:champion"
    title: str
    kind: str  # "environment" or "alias"
    spans: list[Span] = field(default_factory=list)
    order: int = 100
