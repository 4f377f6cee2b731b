"""Per-process copies of what every signal reads and people rarely change: the trigger
policies and the enabled match rules (docs/operations.md, "Signals in", Speed).

A copy is used only while the **generation** in the shared cache (Redis in production; the
file cache of the embedded default) is the one it was loaded under. Saving or deleting a policy
or a rule anywhere bumps the generation once its transaction commits, so every process
reloads before its next decision; the process that saved drops its copy at once.

While this process has a change of its own not yet committed (a policy saved inside an open
transaction), its copy is bypassed: the database is read directly, so the change is seen by
its own transaction, and a rollback (which sends no signal) leaves no trace in the copy. The
bypass ends when the connection is next outside a transaction. If the shared cache cannot be
reached, the database is read every time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction

logger = logging.getLogger(__name__)

GENERATION_KEY = "operations:config-generation"
_warned_at = [0.0]  # the last warning about an unreachable cache (at most one a minute)


class _State(threading.local):
    def __init__(self):
        self.copies: dict[str, tuple[str, Any]] = {}  # name -> (generation, value)
        self.dirty = False  # a change of this process's own, maybe not committed yet


_state = _State()


def generation() -> str | None:
    """The shared generation (made on first use); None when the cache is unreachable."""
    try:
        value = cache.get(GENERATION_KEY)
        if value is None:
            cache.add(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
            value = cache.get(GENERATION_KEY)
        return value
    except Exception:  # the cache is down: read the database, never a stale copy
        if time.monotonic() - _warned_at[0] > 60:
            _warned_at[0] = time.monotonic()
            logger.warning("The shared cache is unreachable: reading policies and rules directly")
        return None


def cached(name: str, load: Callable[[], Any]) -> Any:
    """``load()``'s value, from this process's copy when it is current."""
    if _state.dirty:
        if connection.in_atomic_block:
            return load()
        _state.dirty = False  # the transaction that changed them has ended (commit or rollback)
        _state.copies.clear()
    current = generation()
    if current is None:
        return load()
    copy = _state.copies.get(name)
    if copy is not None and copy[0] == current:
        return copy[1]
    value = load()
    _state.copies[name] = (current, value)
    return value


def changed(**kwargs) -> None:
    """A policy or a rule was saved or deleted (post_save / post_delete)."""
    _state.copies.clear()
    if connection.in_atomic_block:
        _state.dirty = True
    transaction.on_commit(_bump)


def _bump() -> None:
    _state.copies.clear()
    _state.dirty = False
    try:
        cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception:
        logger.exception("Could not bump the operations config generation in the shared cache")


def clear() -> None:
    """Forget this process's copies (tests)."""
    _state.copies.clear()
    _state.dirty = False
