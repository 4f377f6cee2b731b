"""The simulated clock: moved by ``advance(seconds)``, or by real time times a speed."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    def __init__(self, start: datetime | None = None, speed: float = 0.0):
        self._lock = threading.Lock()
        self._base = (start or datetime.now(UTC)).astimezone(UTC)
        self._offset = 0.0
        self._speed = float(speed)
        self._anchor = time.monotonic()

    def now(self) -> datetime:
        with self._lock:
            return self._base + timedelta(seconds=self._elapsed())

    def _elapsed(self) -> float:
        running = (time.monotonic() - self._anchor) * self._speed if self._speed else 0.0
        return self._offset + running

    @property
    def speed(self) -> float:
        return self._speed

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._offset += seconds
            return self._base + timedelta(seconds=self._elapsed())

    def set_speed(self, speed: float) -> None:
        """Follow real time ``speed`` times faster (0: only ``advance`` moves the clock)."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        with self._lock:
            self._offset = self._elapsed()
            self._anchor = time.monotonic()
            self._speed = float(speed)

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (used by seeding, which replays history before real time starts)."""
        with self._lock:
            self._base = when.astimezone(UTC)
            self._offset = 0.0
            self._anchor = time.monotonic()

    def to_json(self) -> dict:
        return {"now": self.now().isoformat().replace("+00:00", "Z"), "speed": self._speed}
