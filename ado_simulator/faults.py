"""Scripted faults (429 / 500 / 503 for the next N requests, or slow answers) and a TSTU-like
request budget.

ADO throttles per identity: 200 TSTUs in a sliding 5-minute window; near the limit responses
carry ``X-RateLimit-*`` headers, beyond it requests are delayed and then blocked with HTTP 429
and ``Retry-After``. The budget here counts requests (each costs ``cost`` units) in a sliding
window of real seconds, because a client waits in real time.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .errors import ApiError

THROTTLE_RESOURCE = "ATCPU"
FRAMEWORK = "Microsoft.TeamFoundation.Framework.Server"
BLOCKED_TYPE = f"{FRAMEWORK}.RequestBlockedException, {FRAMEWORK}"


@dataclass
class FaultRule:
    status: int  # 0: no error, only slow (``delay``)
    count: int  # requests left to fail; -1: until cleared
    path: str | None = None  # case-insensitive substring of the request path
    method: str | None = None
    retry_after: int = 1
    id: int = 0
    hits: int = 0
    # Hold the request this many seconds (until ``release()`` or the simulator stops), before
    # it is handled, or with ``after`` once it has taken effect and before it is answered: a
    # client can then die while ADO holds its request, or after ADO applied it.
    delay: float = 0.0
    after: bool = False
    released: threading.Event = field(default_factory=threading.Event, repr=False)

    def release(self) -> None:
        """Let held requests go on now."""
        self.released.set()

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or self.path.lower() in path.lower()

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "status": self.status,
            "count": self.count,
            "path": self.path,
            "method": self.method,
            "retryAfter": self.retry_after,
            "hits": self.hits,
            "delay": self.delay,
            "after": self.after,
        }


def throttle_headers(
    limit: int, remaining: float, reset_epoch: float, delay: float = 0.0
) -> dict[str, str]:
    return {
        "X-RateLimit-Resource": THROTTLE_RESOURCE,
        "X-RateLimit-Delay": f"{delay:.3f}",
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, math.floor(remaining))),
        "X-RateLimit-Reset": str(math.ceil(reset_epoch)),
    }


def blocked_error(identity: str, retry_after: int, headers: dict[str, str]) -> ApiError:
    return ApiError(
        429,
        "TF400733: The request has been canceled: Request was blocked due to exceeding usage of "
        f"resource '{THROTTLE_RESOURCE}' in namespace 'User'. (identity {identity})",
        "RequestBlockedException",
        BLOCKED_TYPE,
        headers={"Retry-After": str(retry_after), **headers},
    )


class Faults:
    """The queue of scripted faults; the first matching rule answers the request."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1

    def add(
        self,
        status: int,
        count: int = 1,
        *,
        path: str | None = None,
        method: str | None = None,
        retry_after: int = 1,
        delay: float = 0.0,
        after: bool = False,
    ) -> FaultRule:
        with self._lock:
            rule = FaultRule(
                status, count, path, method, retry_after, self._next_id, delay=delay, after=after
            )
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.count != 0 and rule.matches(method, path):
                    rule.hits += 1
                    if rule.count > 0:
                        rule.count -= 1
                    if rule.count == 0:
                        self._rules.remove(rule)
                    return rule
            return None


@dataclass
class RateBudget:
    """A per-identity sliding-window budget.

    ``limit`` units per ``window`` real seconds; each request costs ``cost``. When an
    identity's remaining budget is at or below ``warn_below``, responses carry the
    ``X-RateLimit-*`` headers (and are delayed ``delay`` seconds, reported in
    ``X-RateLimit-Delay``); beyond the limit requests get 429 with ``Retry-After``.
    """

    limit: int = 200
    window: float = 300.0
    cost: float = 1.0
    warn_below: float = 20.0
    delay: float = 0.0
    _usage: dict[str, deque] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_json(self) -> dict:
        return {
            "limit": self.limit,
            "window": self.window,
            "cost": self.cost,
            "warnBelow": self.warn_below,
            "delay": self.delay,
        }

    def consume(self, identity: str) -> tuple[dict[str, str], float]:
        """Charge one request; return (headers to add, seconds to delay) or raise a 429."""
        now = time.time()
        with self._lock:
            stamps = self._usage.setdefault(identity, deque())
            while stamps and stamps[0] <= now - self.window:
                stamps.popleft()
            used = len(stamps) * self.cost
            reset = (stamps[0] + self.window) if stamps else now
            if used + self.cost > self.limit:
                retry_after = max(1, math.ceil(reset - now))
                raise blocked_error(identity, retry_after, throttle_headers(self.limit, 0, reset))
            stamps.append(now)
            remaining = self.limit - used - self.cost
            reset = stamps[0] + self.window
        if remaining <= self.warn_below:
            return throttle_headers(self.limit, remaining, reset, self.delay), self.delay
        return {}, 0.0

    def remaining(self, identity: str) -> float:
        now = time.time()
        with self._lock:
            stamps = self._usage.get(identity, deque())
            used = sum(1 for s in stamps if s > now - self.window) * self.cost
        return self.limit - used
