"""Prometheus metrics shared by web and worker processes.

Web and worker are separate processes, so counters are written to files in
PROMETHEUS_MULTIPROC_DIR and summed by /metrics (prometheus_client's multiprocess mode).
The directory must be set in the environment before prometheus_client is first imported.
"""

import os
from pathlib import Path

from django.conf import settings

if settings.PROMETHEUS_MULTIPROC_DIR:
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", settings.PROMETHEUS_MULTIPROC_DIR)
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from core.sync import sync_status_list

HTTP_REQUESTS = Counter(
    "portal_http_requests_total",
    "HTTP requests answered, by method, URL name and status code.",
    ["method", "view", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "portal_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "view"],
)
TASKS = Counter(
    "portal_celery_tasks_total",
    "Celery tasks finished, by task name and outcome (success, failure, retry, revoked).",
    ["task", "outcome"],
)
TASK_SECONDS = Histogram(
    "portal_celery_task_duration_seconds",
    "Run time of Celery tasks.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)


class SyncAgeCollector:
    """Reads the age of every sync at scrape time, so it is never stale in memory."""

    def collect(self):
        age = GaugeMetricFamily(
            "portal_sync_age_seconds",
            "Seconds since the last successful sync of each source.",
            labels=["sync"],
        )
        failing = GaugeMetricFamily(
            "portal_sync_failing",
            "1 when the last attempt of a sync failed after its last success.",
            labels=["sync"],
        )
        for status in sync_status_list():
            if status.age_seconds is not None:
                age.add_metric([status.name], status.age_seconds)
            failing.add_metric([status.name], 1.0 if status.failing else 0.0)
        yield age
        yield failing


def render_latest() -> tuple[bytes, str]:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:  # pragma: no cover - only when multiprocess mode is switched off
        from prometheus_client import REGISTRY

        registry = REGISTRY
    registry.register(SyncAgeCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
