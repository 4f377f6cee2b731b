"""Queueing a task by name after commit, against the session's real Redis and a broker that
is down (a closed port: nothing listens there, so the connection really fails)."""

import logging
import uuid

import pytest
import redis
from django.conf import settings
from django.db import transaction

from core.tasks import enqueue, enqueue_after_commit
from tests.approvals.faults import celery_app_on, free_port

QUEUE = f"core-tasks-{uuid.uuid4().hex}"  # no worker consumes it: the messages stay to count


def _queued() -> int:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL).llen(QUEUE)


@pytest.fixture
def empty_queue():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.delete(QUEUE)
    with celery_app_on(settings.CELERY_BROKER_URL, QUEUE):
        yield
    client.delete(QUEUE)


def test_enqueue_publishes_the_task_by_name(empty_queue):
    assert enqueue("portal.ping") is True
    assert _queued() == 1


@pytest.mark.django_db(transaction=True)
def test_enqueue_after_commit_waits_for_the_commit_and_a_rollback_publishes_nothing(empty_queue):
    with transaction.atomic():
        enqueue_after_commit("portal.ping")
        assert _queued() == 0  # a worker could not see the transaction's rows yet
    assert _queued() == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_after_commit("portal.ping")
        raise RuntimeError("rolled back")
    assert _queued() == 1


def test_a_broker_outage_is_logged_and_returned_not_raised(caplog):
    down = f"redis://127.0.0.1:{free_port()}/0"
    with celery_app_on(down, "core-tasks-down"), caplog.at_level(logging.WARNING, "core.tasks"):
        assert enqueue("portal.ping", 1, full=True) is False
    assert "could not queue portal.ping" in caplog.text
