"""What the parsers share: reading JSON, times, kinds and severities, with messages that say
exactly what is wrong (they go back to the sender as the 400's detail)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from ..models import Severity, SignalKind
from .base import PayloadError

DEDUPE_KEY_MAX = 500

# Words a kind may be given as, beside its own value.
KIND_ALIASES = {
    "data_arrival": SignalKind.DATA_ARRIVAL,
    "new_data": SignalKind.DATA_ARRIVAL,
    "arrival": SignalKind.DATA_ARRIVAL,
    "drift": SignalKind.DRIFT,
    "data_drift": SignalKind.DRIFT,
    "prediction_drift": SignalKind.DRIFT,
    "threshold_breach": SignalKind.THRESHOLD_BREACH,
    "threshold": SignalKind.THRESHOLD_BREACH,
    "performance_drop": SignalKind.PERFORMANCE_DROP,
    "performance": SignalKind.PERFORMANCE_DROP,
    "resolved": SignalKind.RESOLVED,
}
SEVERITY_ALIASES = {
    "critical": Severity.CRITICAL,
    "sev0": Severity.CRITICAL,
    "error": Severity.ERROR,
    "sev1": Severity.ERROR,
    "warning": Severity.WARNING,
    "sev2": Severity.WARNING,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "sev3": Severity.INFO,
    "sev4": Severity.INFO,
}
# An alert's rule name or description says what it watches (Azure Monitor names no kind).
_PERFORMANCE_WORDS = (
    "performance",
    "accuracy",
    "auc",
    "rmse",
    "mae",
    "f1",
    "precision",
    "recall",
    "degrad",
    "latency",
    "error rate",
)


def load_json(body: bytes):
    if not body or not body.strip():
        raise PayloadError("The body is empty: send a JSON document.")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"The body is not UTF-8 text (byte {exc.start} is not).") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"The body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None


def need_object(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be a JSON object, not {_type(value)}.")
    return value


def need_text(mapping: dict, key: str, where: str) -> str:
    value = mapping.get(key)
    if value is None or value == "":
        raise PayloadError(f"{where}.{key} is missing.")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"{where}.{key} must be a string, not {_type(value)}.")
    return str(value)


def optional_object(mapping: dict, key: str, where: str) -> dict:
    value = mapping.get(key)
    if value is None:
        return {}
    return need_object(value, f"{where}.{key}")


def parse_time(value, where: str) -> datetime:
    """An ISO 8601 time (any number of fraction digits, ``Z`` or an offset; naive is UTC)."""
    if value is None or value == "":
        raise PayloadError(f"{where} is missing.")
    if isinstance(value, bool) or not isinstance(value, str):
        raise PayloadError(f"{where} must be an ISO 8601 time string, not {_type(value)}.")
    text = value.strip()
    if "." in text:  # Azure writes 7 fraction digits; Python reads at most 6
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6]}{rest[digits:]}" if digits else f"{head}{rest}"
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise PayloadError(
            f"{where} is {value!r}, not an ISO 8601 time (e.g. 2025-01-31T12:00:00Z)."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def kind_value(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"{where} is missing: one of {', '.join(SignalKind.values)}.")
    word = value.strip().lower().replace("-", "_").replace(" ", "_")
    if word not in KIND_ALIASES:
        raise PayloadError(
            f"{where} is {value!r}: not a kind the portal knows ({', '.join(SignalKind.values)})."
        )
    return str(KIND_ALIASES[word])


def severity_value(value, where: str, default: str = Severity.WARNING) -> str:
    if value is None or value == "":
        return str(default)
    word = str(value).strip().lower().replace(" ", "")
    if word not in SEVERITY_ALIASES:
        raise PayloadError(
            f"{where} is {value!r}: use critical, error, warning or info (or Sev0..Sev4)."
        )
    return str(SEVERITY_ALIASES[word])


def kind_guess(*texts: str) -> str:
    """Drift, performance drop or (by default) threshold breach, from what an alert says."""
    text = " ".join(t for t in texts if t).lower()
    if "drift" in text:
        return str(SignalKind.DRIFT)
    if any(word in text for word in _PERFORMANCE_WORDS):
        return str(SignalKind.PERFORMANCE_DROP)
    return str(SignalKind.THRESHOLD_BREACH)


def dedupe_key(prefix: str, *parts) -> str:
    key = ":".join([prefix, *(str(p) for p in parts)])
    if len(key) <= DEDUPE_KEY_MAX:
        return key
    return f"{prefix}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def content_hash(value) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


def text_tags(value, where: str) -> dict[str, str]:
    """Tags as {str: str} (numbers and booleans become text; nested values are refused)."""
    if value is None:
        return {}
    need_object(value, where)
    tags = {}
    for key, item in value.items():
        if isinstance(item, dict | list):
            raise PayloadError(f"{where}.{key} must be a string, not {_type(item)}.")
        tags[str(key)] = "" if item is None else str(item)
    return tags


def get_ci(mapping: dict, key: str):
    """A key looked up case-insensitively (Event Grid's own samples spell runTags, RunTags)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for name, value in mapping.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return None


def _type(value) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)
