"""Small helpers shared by the simulator modules: time format, ids, logging prefix, tokens."""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

LOG_PREFIX = "[ADO simulator]"
logger = logging.getLogger("ado_simulator")


def log(message: str, *args, level: int = logging.INFO) -> None:
    """Log one line; every line the simulator writes starts with ``[ADO simulator]``."""
    logger.log(level, f"{LOG_PREFIX} {message}", *args)


def fmt_time(value: datetime | None) -> str | None:
    """ADO's wire format: UTC, milliseconds, a ``Z`` suffix (``2019-12-13T04:46:13.613Z``)."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def parse_time(text: str) -> datetime:
    """Parse the date-times clients send (``minTime``, ``maxTime``); naive values are UTC."""
    match = _TIME_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a date-time: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    value = datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        micro,
        tzinfo=UTC,
    )
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        value -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return value


class IdSource:
    """GUIDs from a seeded generator, so a seeded simulator hands out the same ids every time."""

    def __init__(self, seed: str | int | None = None):
        self._rng = random.Random(seed)  # noqa: S311 - ids for a test double, not secrets

    def guid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def hex(self, length: int) -> str:
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(length))

    def randint(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def random(self) -> float:
        return self._rng.random()


def stable_guid(*parts: str) -> str:
    """A GUID derived from names (for identities and groups that must not change between runs)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "ado-simulator:" + "/".join(parts)))


def encode_token(value: object) -> str:
    """An opaque continuation token (clients must pass it back unchanged, as with ADO)."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> object:
    padded = token + "=" * (-len(token) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
