"""Is this container's Celery worker alive? ``python -m portal.worker_liveness`` exits 0 when
it is, 1 with a message when not: the healthcheck of each worker service (docker-compose.yml)
and a Kubernetes liveness probe.

How it knows: the worker's ``HeartbeatFile`` bootstep (portal/worker_heartbeat.py) writes its pid to
``CELERY_WORKER_HEARTBEAT_FILE`` (default /tmp/celery-worker-heartbeat) when it starts, then
again every ``HEARTBEAT_SECONDS`` from the worker's own event-loop timer, and removes it at
shutdown. Alive means: the file is there, written within ``--max-age`` seconds (60), and its
pid is a running process. A timer of the event loop (not a thread) on purpose: a worker whose
main loop is stuck, or which has been reconnecting to its broker for a minute, stops writing,
so a probe restarting it is what it needs. ``celery inspect ping`` asked the same through the
broker, so it failed for every worker at once whenever Redis did, and took seconds.

No Django here: the probe reads the same environment variable the settings do, so it starts
in milliseconds and never needs the database or the broker.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from portal.worker_heartbeat import heartbeat_path

MAX_AGE_SECONDS = 60.0


def check(path: Path, *, max_age: float = MAX_AGE_SECONDS, now: float | None = None) -> str | None:
    """What is wrong with the worker behind ``path``, or None when it is alive."""
    try:
        written = path.stat().st_mtime
        text = path.read_text().strip()
    except FileNotFoundError:
        return f"no worker heartbeat at {path} (the worker is not running, or has not started)"
    except OSError as exc:
        return f"cannot read the worker heartbeat {path}: {exc}"
    age = (time.time() if now is None else now) - written
    if age > max_age:
        return f"the worker heartbeat {path} is {age:.0f} s old (more than {max_age:.0f} s)"
    try:
        pid = int(text)
    except ValueError:
        return f"the worker heartbeat {path} holds no pid: {text[:40]!r}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"the worker (pid {pid}) that wrote {path} is gone"
    except PermissionError:
        pass  # it exists, under another user
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.worker_liveness", description=__doc__)
    parser.add_argument("--file", type=Path, default=None, help="the heartbeat file to check")
    parser.add_argument("--max-age", type=float, default=MAX_AGE_SECONDS, help="seconds")
    args = parser.parse_args(argv)
    path = args.file or heartbeat_path()
    problem = check(path, max_age=args.max_age)
    if problem:
        print(f"worker not alive: {problem}", file=sys.stderr)
        return 1
    print(f"worker alive ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
