"""The one way the apps queue a Celery task: by name, once the current transaction commits.

By name, so a service never imports its app's tasks module (which imports the services):
the task runs what the transaction wrote, which a worker could not see before the commit.
Publishing never raises into the request or the sync that asked: when the broker is down it
logs and returns False, and the work is not lost, because what it is about is already in the
database and a periodic task picks it up (the outbox sweep, the next scheduled sync).
``ignore_result``: nobody waits for these results, and subscribing to a result on a Redis
that is down would retry for about 20 s inside the request before failing.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def enqueue(task_name: str, *args, **kwargs) -> bool:
    """Publish ``task_name`` now; False (logged) when the broker cannot take it."""
    try:
        current_app.send_task(task_name, args=args, kwargs=kwargs, retry=False, ignore_result=True)
    except Exception as exc:  # broker down or refusing: the database keeps the work
        logger.warning("could not queue %s%r (%s); a periodic task will", task_name, args, exc)
        return False
    return True


def enqueue_after_commit(task_name: str, *args, **kwargs) -> None:
    """Publish ``task_name`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: enqueue(task_name, *args, **kwargs))
