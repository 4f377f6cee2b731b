"""portal/kombu_fixes.py against a real Redis (the shared test Redis; nothing is killed here):
what Celery's consumer does on a lost connection (``collect`` detaches the transport, the
channel is closed) is replayed by hand, then the held message is acknowledged, rejected and
restored through the dead channel, as a task finishing after the reconnect does. Without the
workaround each of these raises AttributeError, which stops a worker
(docs/decisions/0002-redis-restart-worker-crash.md); the fault test in
tests/approvals/test_delivery_faults.py shows the same with a real worker and a killed Redis."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.conf import settings
from kombu import Connection, Queue

from portal import kombu_fixes


@pytest.fixture
def held_message():
    """A message fetched (unacknowledged) from a private queue, then the channel it came on
    detached the way Celery's consumer detaches it when the broker goes away."""
    kombu_fixes.install()
    name = f"kombu-fixes-{uuid.uuid4().hex[:10]}"
    connection = Connection(settings.CELERY_BROKER_URL)
    queue = Queue(name, routing_key=name)
    with connection.Producer() as producer:
        producer.publish({"n": 1}, routing_key=name, declare=[queue])
    channel = connection.channel()
    message = queue(channel).get(no_ack=False)
    assert message is not None
    tag = message.delivery_tag
    yield message, channel, connection
    with Connection(settings.CELERY_BROKER_URL) as cleanup:
        queue(cleanup.default_channel).delete()
        redis = cleanup.default_channel.client  # only this test's entries: the hash is shared
        redis.hdel(channel.qos.unacked_key, tag)
        redis.zrem(channel.qos.unacked_index_key, tag)


def detach(channel, connection):
    """The state Consumer.on_connection_error_after_connected leaves a channel in when Redis
    died: ``collect`` closed it and detached the transport (its ``connection`` is None), and
    the second close dropped its pools with no restore to make new ones."""
    connection.collect()
    channel._disconnect_pools()
    assert channel.connection is None and channel._pool is None


def test_a_message_acked_through_a_detached_channel_does_not_raise(held_message, caplog):
    message, channel, connection = held_message
    tag = message.delivery_tag
    detach(channel, connection)
    with caplog.at_level(logging.WARNING, logger="portal.kombu_fixes"):
        message.ack()
    assert message.acknowledged
    assert f"acknowledgement of delivery {tag} is left to Redis's visibility timeout" in caplog.text


def test_a_message_rejected_through_a_detached_channel_does_not_raise(held_message, caplog):
    message, channel, connection = held_message
    detach(channel, connection)
    with caplog.at_level(logging.WARNING, logger="portal.kombu_fixes"):
        message.reject(requeue=True)
    assert "rejection of delivery" in caplog.text


def test_restoring_through_a_detached_transport_is_skipped(held_message, caplog):
    """The first crash: the channel still points at its transport, which ``collect`` detached
    from the connection (its pools were dropped by the close that failed half-way)."""
    _message, channel, _connection = held_message
    channel.connection.client = None
    channel._disconnect_pools()
    with caplog.at_level(logging.WARNING, logger="portal.kombu_fixes"):
        channel.qos.restore_unacked()
    warnings = [r.getMessage() for r in caplog.records if r.name == "portal.kombu_fixes"]
    assert warnings == [
        "broker connection closed: 1 unacknowledged message(s) left to Redis's visibility "
        "timeout (the outbox sweep re-queues deliveries)"
    ]
    assert not channel.qos._delivered


def test_a_live_channel_still_acknowledges_in_redis(held_message):
    """The wrapper changes nothing while the connection is up: the unacked entry goes."""
    message, channel, _connection = held_message
    client = channel.client
    assert client.hexists(channel.qos.unacked_key, message.delivery_tag)
    message.ack()
    assert not client.hexists(channel.qos.unacked_key, message.delivery_tag)
