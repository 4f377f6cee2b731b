"""The Celery app: Django settings under the CELERY_ namespace, tasks found in each app."""

import os
import time

from celery import Celery, signals

from core.request_context import (
    get_request_id,
    new_request_id,
    reset_request_id,
    set_request_id,
)
from portal import kombu_fixes
from portal.worker_heartbeat import HeartbeatFile

# Survive Redis restarting under a held delivery (docs/decisions/0002).
kombu_fixes.install()

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The heartbeat file `python -m portal.worker_liveness` checks (a worker's liveness probe).
app.steps["worker"].add(HeartbeatFile)

REQUEST_ID_HEADER = "portal_request_id"
_started: dict[str, float] = {}
_request_id_tokens: dict[str, object] = {}


@signals.setup_logging.connect
def _use_django_logging(**kwargs):
    """Let Django's LOGGING (request ids, JSON in production) format worker logs too."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.before_task_publish.connect
def _attach_request_id(headers=None, **kwargs):
    request_id = get_request_id()
    if headers is not None and request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


@signals.task_prerun.connect
def _task_started(task_id=None, task=None, **kwargs):
    request_id = (
        getattr(task.request, REQUEST_ID_HEADER, None) or f"task-{task_id or new_request_id()}"
    )
    _request_id_tokens[task_id] = set_request_id(request_id)
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, **kwargs):
    from . import metrics  # reads settings: this module loads before Django is configured

    started = _started.pop(task_id, None)
    if started is not None:
        metrics.TASK_SECONDS.labels(task.name).observe(time.perf_counter() - started)
    outcome = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}.get(
        state or "", "other"
    )
    metrics.TASKS.labels(task.name, outcome).inc()
    token = _request_id_tokens.pop(task_id, None)
    if token is not None:
        reset_request_id(token)


@signals.task_revoked.connect
def _task_revoked(request=None, **kwargs):
    from . import metrics  # as above

    name = getattr(request, "task", None) or "unknown"
    metrics.TASKS.labels(name, "revoked").inc()
