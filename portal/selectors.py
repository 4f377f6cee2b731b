"""Reads for the home page, health checks and metrics.

The home page's cards come from the apps (``PORTAL_HOME_CARD_PROVIDERS``, core/home.py); the
portal adds only its own, the admins' "Sync health".
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import connections
from django.utils import timezone

from core.home import HomeCard
from core.roles import Role
from core.sync import sync_status_list


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: float
    detail: str = ""

    def as_dict(self) -> dict:
        data = {"ok": self.ok, "latency_ms": round(self.latency_ms, 1)}
        if self.detail:
            data["detail"] = self.detail
        return data


def database_check() -> CheckResult:
    started = time.perf_counter()
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return CheckResult(False, _ms_since(started), f"{type(exc).__name__}: {exc}")
    return CheckResult(True, _ms_since(started), connections["default"].vendor)


def broker_check(timeout: float = 3.0) -> CheckResult:
    """Publish a message to a throw-away queue and read it back: a real round-trip."""
    from kombu import Connection

    started = time.perf_counter()
    queue_name = f"portal.readyz.{uuid.uuid4().hex}"
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        options.update(socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        with Connection(
            settings.CELERY_BROKER_URL, connect_timeout=timeout, transport_options=options
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            queue = conn.SimpleQueue(queue_name)
            try:
                queue.put({"readyz": queue_name})
                message = queue.get(block=True, timeout=timeout)
                message.ack()
                if message.payload != {"readyz": queue_name}:
                    return CheckResult(False, _ms_since(started), "read back a different message")
            finally:
                queue.queue.delete()
                queue.close()
            transport = conn.transport_cls if isinstance(conn.transport_cls, str) else "custom"
    except Exception as exc:
        return CheckResult(False, _ms_since(started), f"{type(exc).__name__}: {exc}")
    return CheckResult(True, _ms_since(started), transport)


def readiness() -> tuple[bool, dict]:
    """Return (ready, report). Stale syncs are reported but do not make the process unready."""
    checks = {"database": database_check(), "broker": broker_check()}
    ready = all(c.ok for c in checks.values())
    try:
        syncs = [s.as_dict() for s in sync_status_list()]
    except Exception as exc:
        syncs = [{"name": "<unavailable>", "error": f"{type(exc).__name__}: {exc}"}]
    return ready, {
        "status": "ready" if ready else "not ready",
        "checks": {name: c.as_dict() for name, c in checks.items()},
        "syncs": syncs,
        "time": timezone.now().isoformat(),
    }


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def home_sync_cards(user, held_roles: frozenset[str]) -> list[HomeCard]:
    """The admin's "Sync health" card: every app's syncs (``PORTAL_SYNC_STATUS_PROVIDERS``)."""
    if Role.ADMIN not in held_roles:
        return []
    return [
        HomeCard(
            "sync-health",
            Role.ADMIN,
            "Sync health",
            "Each MLflow registry source and Azure DevOps project will show its last "
            "successful sync and last error here. No source is configured yet.",
            tuple(sync_status_list()),
            order=10,
        )
    ]
