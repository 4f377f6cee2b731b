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

The fix here: restoring through a detached transport is skipped (with a warning). Nothing is
lost by it: there is no connection to restore through, and the messages are still in Redis's
unacked hash (restored after the visibility timeout, when Redis kept them) or gone with a
Redis that lost its data; the decision outbox in PostgreSQL re-queues those either way.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)
_installed = False


def install() -> None:
    """Wrap kombu's Redis ``QoS.restore_unacked`` once per process (idempotent)."""
    global _installed
    if _installed:
        return
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.QoS.restore_unacked

    def restore_unacked(self, client=None):
        transport = getattr(self.channel, "connection", None)
        if client is None and transport is not None and transport.client is None:
            logger.warning(
                "broker connection closed: %d unacknowledged message(s) left to Redis's "
                "visibility timeout (the outbox sweep re-queues deliveries)",
                len(self._delivered),
            )
            self._delivered.clear()
            return None
        return original(self, client)

    restore_unacked.__wrapped__ = original
    kombu_redis.QoS.restore_unacked = restore_unacked
    _installed = True
