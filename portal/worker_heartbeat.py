"""The worker side of ``python -m portal.worker_liveness``: a bootstep that writes the worker's
pid to ``CELERY_WORKER_HEARTBEAT_FILE`` when it starts and every ``HEARTBEAT_SECONDS`` from the
worker's own event-loop timer, and removes it at shutdown (portal/worker_liveness.py says why).
A module of its own, so the probe (run as ``-m``) is not also imported by ``portal.celery``."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from celery import bootsteps

DEFAULT_FILE = "/tmp/celery-worker-heartbeat"  # noqa: S108 - one per container, the worker's own
HEARTBEAT_SECONDS = float(os.environ.get("CELERY_WORKER_HEARTBEAT_SECONDS") or 10.0)

logger = logging.getLogger(__name__)


def heartbeat_path() -> Path:
    return Path(os.environ.get("CELERY_WORKER_HEARTBEAT_FILE") or DEFAULT_FILE)


def write_heartbeat(path: Path, pid: int | None = None) -> None:
    """Write ``pid`` to ``path`` by a rename, so the probe never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(f"{pid or os.getpid()}\n")
    partial.replace(path)


class HeartbeatFile(bootsteps.StartStopStep):
    """A worker bootstep: the heartbeat file while the worker runs, gone once it stops."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.path = heartbeat_path()
        self.tref = None

    def beat(self) -> None:
        try:
            write_heartbeat(self.path)
        except OSError as exc:  # a full or read-only disk: the probe will say so
            logger.warning("could not write the worker heartbeat %s: %s", self.path, exc)

    def start(self, parent) -> None:
        self.beat()
        self.tref = parent.timer.call_repeatedly(HEARTBEAT_SECONDS, self.beat)

    def stop(self, parent) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    terminate = stop
