"""Real processes for the delivery fault tests: a private redis-server and private Celery
workers, each stopped (or killed) by its own pid, and a switch that points this test
process's Celery app at them. The shared Redis on 6379 is never touched."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection

_worker_numbers = itertools.count(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str, *, every=0.05):
    """Poll ``predicate`` until it is truthy (returned), or fail saying ``what`` never came."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def test_database_url() -> str:
    """The database pytest-django created (a worker must use it, not the one it was named
    after)."""
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
        f"{connection.settings_dict['NAME']}"
    )


test_database_url.__test__ = False  # a helper, not a test, despite its name


class RedisServer:
    """A throw-away ``redis-server`` on a free port, with no persistence: stopping it loses
    every queued message, as a Redis crash without AOF does."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(self.is_up, 10, f"redis-server on port {self.port}")
        return self

    def is_up(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL by pid: Redis crashes, its clients' sockets reset mid-command."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM by pid, then wait (SIGKILL if it lingers)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Worker:
    """A real ``celery worker`` (prefork, one child) in its own process group, on a private
    broker and queue, with settings from its environment (shorter claims, say)."""

    def __init__(
        self,
        *,
        broker_url: str,
        queue: str,
        log_dir: Path,
        env: dict | None = None,
        only: tuple[str, ...] = (),
    ):
        self.broker_url = broker_url
        self.queue = queue
        self.only = only  # queue groups ("deliveries"...) to consume; all of them when empty
        self.number = next(_worker_numbers)
        self.log_path = log_dir / f"worker-{self.number}.log"
        self.heartbeat_path = log_dir / f"worker-{self.number}.heartbeat"
        self.extra_env = {k: str(v) for k, v in (env or {}).items()}
        self.process: subprocess.Popen | None = None

    @property
    def queues(self) -> list[str]:
        """Every queue it consumes: its default one and the routed ones named after it (the
        worker's settings prefix them with its CELERY_QUEUE), or just the ``only`` ones."""
        return worker_queues(self.queue, self.only)

    def start(self) -> Worker:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings.test",
            "CELERY_QUEUE": self.queue,
            "TEST_REDIS_URL": self.broker_url,
            "TEST_DATABASE_URL": test_database_url(),
            "PROMETHEUS_MULTIPROC_DIR": settings.PROMETHEUS_MULTIPROC_DIR,
            "CELERY_WORKER_HEARTBEAT_FILE": str(self.heartbeat_path),
            **self.extra_env,
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--queues",
                    ",".join(self.queues),
                    "--hostname",
                    f"faults-{self.number}-{os.getpid()}@%h",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=settings.BASE_DIR,
                start_new_session=True,  # its own process group, so a SIGKILL takes the pool too
            )
        return self

    def wait_ready(self, timeout: float = 60) -> Worker:
        """Answered once the worker consumes (this process's Celery app must point at the
        worker's broker: ``celery_app_on``)."""
        from portal.tasks import ping

        if self.only:  # it does not read the default queue: its log says when it consumes
            wait_until(lambda: " ready." in self.log(), timeout, f"worker {self.number} ready")
            return self
        try:
            ping.apply_async(queue=self.queue).get(timeout=timeout)
        except Exception as exc:
            raise AssertionError(f"worker did not start: {exc}\n{self.log()}") from exc
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pool_children(self) -> list[int]:
        """The prefork pool's processes (the ones running tasks)."""
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker and its pool die mid-task, with no
        chance to ack, reject or clean up."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """After the test: nothing is left to finish, and a warm (or even cold) shutdown
        takes two seconds, so the group is killed."""
        self.kill()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""


def session_routes(queue: str) -> dict[str, dict]:
    """The routing a process whose default queue is ``queue`` uses (its settings name the
    deliveries, syncs and maintenance queues after it)."""
    from portal.queues import prefixed_routes
    from portal.settings import base

    return prefixed_routes(base.CELERY_TASK_ROUTES, queue)


def worker_queues(queue: str, groups: tuple[str, ...] = ()) -> list[str]:
    """The queues of a worker whose default queue is ``queue``: all of them, or ``groups``."""
    from portal.queues import queue_names

    if groups:
        return [f"{queue}.{group}" for group in groups]
    return queue_names(default_queue=queue, routes=session_routes(queue))


def _forget_connections(app, *, close: bool) -> None:
    """Make the app connect afresh from its configuration. ``close``: also close the pools
    it had and drop them from kombu's registry (kombu shares one pool per broker URL, so the
    session's own pools are only forgotten, never closed)."""
    from kombu import pools

    pool, app._pool = app._pool, None
    amqp = app.__dict__.get("amqp")
    producers = None
    if amqp is not None:
        producers, amqp._producer_pool = amqp._producer_pool, None
    app._backend_cache = None
    with contextlib.suppress(AttributeError):
        del app._local.backend
    if not close:
        return
    for group, item in ((pools.producers, producers), (pools.connections, pool)):
        if item is None:
            continue
        with contextlib.suppress(Exception):
            item.force_close_all()
        for key in [k for k, v in list(group.items()) if v is item]:
            group.pop(key, None)


@contextlib.contextmanager
def celery_app_on(broker_url: str, queue: str, **conf) -> Iterator:
    """Point this process's Celery app (what ``core.tasks.enqueue`` publishes with) at a private
    broker and queue for the duration, with any other ``conf``; the session's own settings
    come back afterwards."""
    from portal.celery import app

    changes = {
        "broker_url": broker_url,
        "result_backend": broker_url,
        "task_default_queue": queue,
        "task_routes": session_routes(queue),
        **conf,
    }
    saved = {key: app.conf.get(key) for key in changes}
    _forget_connections(app, close=False)
    app.conf.update(changes)
    try:
        yield app
    finally:
        _forget_connections(app, close=True)
        app.conf.update(saved)


def patches(sim, ado_id: str | None = None) -> list[dict]:
    """The PATCH requests the simulator received (faulted ones too), or those that reached
    its handler for one approval (``sim.patch_log``, with their bodies)."""
    if ado_id is None:
        return [r for r in sim.request_log() if r["method"] == "PATCH"]
    return [
        entry
        for entry in sim.patch_log
        if any(
            str(item.get("approvalId", "")).lower() == ado_id.lower()
            for item in (entry.get("body") or [])
            if isinstance(item, dict)
        )
    ]
