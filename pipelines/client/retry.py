"""When a call to ADO is sent again, and how long to wait first: the rules, without I/O.

Idempotent GETs are retried on 5xx (except 501 / 505), connection errors and timeouts;
POST / PATCH only when the request surely did not take effect (a connection refused before
sending, 429, 503 with ``Retry-After``, a 401 answered before anything happened).
"""

from __future__ import annotations

import email.utils
import enum
import math
from datetime import UTC, datetime

import requests
import urllib3.exceptions

MAX_RETRY_AFTER = 300.0  # the longest Retry-After honoured (ADO asks for up to a few minutes)
NOT_RETRIED_5XX = frozenset({501, 505})  # "not implemented" / "version not supported": final


class Answer(enum.Enum):
    """What an HTTP answer means for the call that got it."""

    OK = "ok"  # a 2xx other than 203 (ADO's sign-in page)
    REAUTHENTICATE = "reauthenticate"  # a 401 a fresh token from the provider may cure, once
    RETRY = "retry"  # may succeed if sent again (as many times as the retries allow)
    FINAL = "final"  # raise its typed error


def classify(
    status: int, *, retry_after: float | None, idempotent: bool, can_refresh: bool
) -> Answer:
    if 200 <= status < 300 and status != 203:
        return Answer.OK
    if status == 401 and can_refresh:
        return Answer.REAUTHENTICATE
    if status == 429 or (status == 503 and retry_after is not None):
        return Answer.RETRY  # ADO refused it before doing anything
    if idempotent and status >= 500 and status not in NOT_RETRIED_5XX:
        return Answer.RETRY
    return Answer.FINAL


def connection_failure_retryable(*, idempotent: bool, sent: bool) -> bool:
    """A failed connection or a timeout: any GET again, a POST / PATCH only if never sent."""
    return idempotent or not sent


def backoff_ceiling(attempt: int, base: float, maximum: float) -> float:
    """Exponential backoff: the n-th retry waits uniform(0, this) (full jitter)."""
    return min(maximum, base * 2 ** (attempt - 1))


def number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def retry_after_seconds(response: requests.Response) -> float | None:
    """Seconds from ``Retry-After`` (seconds or an HTTP date), capped at 300 s."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    seconds = number(value.strip())
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def not_sent(exc: Exception) -> bool:
    """True when the request surely never reached ADO (the connection was not established)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.Timeout):
        return False  # a read timeout: sent, maybe processed
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )
