"""Reads shared by the rules of many requests evaluated together (the bulk evidence screen).

Outside ``batch_reads()`` every gate reads what it needs each time; inside, a read that does
not depend on the request (the active freeze windows of an environment, its approval
policies) is made once and kept for the block, and a read the caller made already for every
request at once (QA's outcome of each version) is given to the block as ``known``: the
screen's query count does not grow with the number of requests. Only for reading: a
decision re-reads everything (``approval_decide`` runs outside the block)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_reads: ContextVar[dict | None] = ContextVar("approvals_batch_reads", default=None)


@contextmanager
def batch_reads(known: dict[tuple, Any] | None = None) -> Iterator[None]:
    """``known``: reads already made, by the key ``read_once`` is asked with."""
    token = _reads.set(dict(known or {}))
    try:
        yield
    finally:
        _reads.reset(token)


def in_batch() -> bool:
    return _reads.get() is not None


def read_once(key: tuple, load: Callable[[], Any]) -> Any:
    """``load()`` once per ``key`` inside ``batch_reads()``; every time outside it."""
    reads = _reads.get()
    if reads is None:
        return load()
    if key not in reads:
        reads[key] = load()
    return reads[key]
