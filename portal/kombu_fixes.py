"""A workaround for a worker crash in celery 5.7.0 / kombu 5.7.0 (the newest releases; see
docs/decisions/0002-redis-restart-worker-crash.md): Redis goes away while the worker holds an
unacknowledged message (a delivery waiting on its retry countdown), and the worker dies with
``Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")``.

What happens: on the connection error Celery's consumer calls ``connection.collect()`` and
then ``connection.close()``. ``collect`` tries to close the consumer's channel, which first
reads the pending BRPOP reply from the dead socket; that raises a connection error (swallowed)
before the channel is marked closed, and ``collect`` then detaches the transport from the
connection (``transport.client = None``). ``close`` closes the same channel again; now it
gets as far as restoring the unacknowledged messages, which builds a Redis client from
``transport.client.hostname``: None. An AttributeError is no connection error, so it escapes
Celery's ``ignore_errors`` and stops the worker.

The same detached channel crashes the worker a second way: a task that was running when Redis
went away finishes after the reconnect, and its acknowledgement (acks_late) goes to the old
channel, whose ``connection`` the close set to None: ``AttributeError("'NoneType' object has
no attribute 'client'")`` from ``QoS.ack``. A delivery tag is specific to its channel, so there
is nothing to acknowledge through the new one.

The fix here: restoring, acknowledging or rejecting through a detached channel is skipped
(with a warning) and only the worker's own bookkeeping is dropped. Nothing is lost by it:
there is no connection to act through, and the messages are still in Redis's unacked hash
(restored after the visibility timeout, when Redis kept them) or gone with a Redis that lost
its data; the decision outbox in PostgreSQL re-queues those either way, and a delivery reads
ADO before it PATCHes, so a redelivery does not decide twice.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)
_installed = False


def _detached(qos) -> bool:
    """True when the channel's transport is gone: closed (``connection`` None) or detached
    from its kombu connection (``transport.client`` None)."""
    transport = getattr(qos.channel, "connection", None)
    return transport is None or transport.client is None


def install() -> None:
    """Wrap kombu's Redis ``QoS.restore_unacked``, ``ack`` and ``reject`` once per process
    (idempotent)."""
    global _installed
    if _installed:
        return
    from kombu.transport import redis as kombu_redis
    from kombu.transport.virtual import base as kombu_virtual

    original = kombu_redis.QoS.restore_unacked
    original_ack = kombu_redis.QoS.ack
    original_reject = kombu_redis.QoS.reject

    def restore_unacked(self, client=None):
        if client is None and _detached(self):
            logger.warning(
                "broker connection closed: %d unacknowledged message(s) left to Redis's "
                "visibility timeout (the outbox sweep re-queues deliveries)",
                len(self._delivered),
            )
            self._delivered.clear()
            return None
        return original(self, client)

    def ack(self, delivery_tag):
        if _detached(self):
            logger.warning(
                "broker connection closed: the acknowledgement of delivery %s is left to "
                "Redis's visibility timeout (its channel is gone)",
                delivery_tag,
            )
            kombu_virtual.QoS.ack(self, delivery_tag)  # the worker's bookkeeping only
            return None
        return original_ack(self, delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if _detached(self):
            logger.warning(
                "broker connection closed: the rejection of delivery %s is left to Redis's "
                "visibility timeout (its channel is gone)",
                delivery_tag,
            )
            kombu_virtual.QoS.ack(self, delivery_tag)
            return None
        return original_reject(self, delivery_tag, requeue=requeue)

    restore_unacked.__wrapped__ = original
    ack.__wrapped__ = original_ack
    reject.__wrapped__ = original_reject
    kombu_redis.QoS.restore_unacked = restore_unacked
    kombu_redis.QoS.ack = ack
    kombu_redis.QoS.reject = reject
    _installed = True
