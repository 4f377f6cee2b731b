"""The worker queues, read from the routing in settings (``CELERY_TASK_ROUTES``, the one place
that says which task waits where), for the commands that start workers.

Three queues so a slow kind of work never waits in front of an urgent one: ``deliveries``
(a decision's PATCH, a run request: someone is waiting on them), ``syncs`` (registry,
pipelines and approval polls: long, convergent, safe to rerun) and ``maintenance`` (maturity,
notifications, sweeps). ``portal.ping`` and any task not routed use the default queue.

Tests (and the benchmarks, and the delivery fault tests' private workers) run with their own
default queue on a shared Redis; ``prefixed_routes`` names the three after it, so two
sessions never take each other's tasks. No Django import: settings import this module.
"""

from __future__ import annotations

from collections.abc import Mapping

DELIVERIES = "deliveries"
SYNCS = "syncs"
MAINTENANCE = "maintenance"
GROUPS = (DELIVERIES, SYNCS, MAINTENANCE)


def prefixed_routes(routes: Mapping[str, Mapping], prefix: str) -> dict[str, dict]:
    """``routes`` with each queue named ``<prefix>.<queue>`` (unchanged when prefix is empty)."""
    if not prefix:
        return {task: dict(route) for task, route in routes.items()}
    return {
        task: {**route, "queue": f"{prefix}.{route['queue']}"} for task, route in routes.items()
    }


def queue_names(*, default_queue: str, routes: Mapping[str, Mapping]) -> list[str]:
    """Every queue a worker consuming "all of them" must read: the default one first (where
    ``portal.ping`` waits), then each routed queue once."""
    names = [default_queue]
    for route in routes.values():
        if route["queue"] not in names:
            names.append(route["queue"])
    return names


def all_queues() -> list[str]:
    """The queues of this process's settings, as ``celery worker --queues`` takes them."""
    from django.conf import settings

    return queue_names(
        default_queue=settings.CELERY_TASK_DEFAULT_QUEUE, routes=settings.CELERY_TASK_ROUTES
    )


def group_queue(group: str) -> str:
    """The queue of one group (``deliveries``...) under this process's settings' prefix."""
    from django.conf import settings

    if group not in GROUPS:
        raise ValueError(f"no queue group {group!r}; the groups are {', '.join(GROUPS)}")
    for route in settings.CELERY_TASK_ROUTES.values():
        if route["queue"] == group or route["queue"].endswith(f".{group}"):
            return route["queue"]
    raise ValueError(f"no task is routed to {group!r}")
