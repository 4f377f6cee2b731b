"""A request to a signal endpoint → a raw payload kept as it came (append-only, whatever
became of it) and normalised signals, each decided by the model's trigger policy in the
same transaction (docs/operations.md, "Signals in").

The raw row is written once, so its outcome is known before it is: too large, unreadable,
a handshake, nothing to act on, all duplicates, or accepted. Duplicates are found under a
transaction-scoped advisory lock per dedupe key (PostgreSQL), so two deliveries of one event
racing each other make one signal; the unique key stays the last word.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from ..models import (
    Disposition,
    IntakeOutcome,
    ModelOperations,
    RawSignal,
    Signal,
    SignalFormat,
    SignalKind,
)
from ..payloads import PARSERS, NormalisedSignal, ParseResult, PayloadError
from . import matching

logger = logging.getLogger(__name__)

SLUG_FORMAT = {
    "azure-monitor": SignalFormat.AZURE_MONITOR,
    "event-grid": SignalFormat.EVENT_GRID,
    "databricks": SignalFormat.DATABRICKS,
    "evidently": SignalFormat.EVIDENTLY,
    "generic": SignalFormat.GENERIC,
}
# The headers worth keeping with the raw payload (never credentials).
KEPT_HEADERS = (
    "content-type",
    "content-length",
    "user-agent",
    "aeg-event-type",
    "aeg-subscription-name",
    "aeg-delivery-count",
    "aeg-data-version",
    "aeg-metadata-version",
    "ce-id",
    "ce-type",
    "ce-source",
    "ce-specversion",
    "webhook-request-origin",
    "x-request-id",
    "x-ms-request-id",
    "traceparent",
)
SECRET_QUERY = ("key", "code", "sig")
REFUSED_BODY_NOTE = "(not kept: the request was not authenticated)"


@dataclass
class IntakeResult:
    status_code: int
    body_json: dict
    raw: RawSignal | None
    signals: list[Signal] = field(default_factory=list)
    duplicates: int = 0


def without_nul(value):
    """The value with each NUL character (raw or a JSON ``\\u0000``) as U+FFFD: PostgreSQL's
    text and jsonb refuse NUL, and a payload is kept and read, never refused, for one."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_nul(v) for v in value]
    return value


def max_body_bytes() -> int:
    return int(getattr(settings, "OPERATIONS_SIGNAL_MAX_BYTES", 1024 * 1024))


def slug_of(fmt: str) -> str:
    """``azure-monitor`` from ``azure-monitor`` or ``azure_monitor``."""
    slug = str(fmt).replace("_", "-")
    if slug == "cloudevents":
        slug = "event-grid"
    if slug not in SLUG_FORMAT:
        raise ValueError(f"No signal endpoint for {fmt!r}.")
    return slug


def signals_receive(
    *,
    fmt: str,
    body: bytes,
    content_type: str,
    headers: dict,
    sender: str,
    query: dict,
    remote_addr: str = "",
    request_id: str = "",
) -> IntakeResult:
    """Keep, parse, deduplicate, match and decide one authenticated request's signals."""
    slug = slug_of(fmt)
    received_at = timezone.now()
    base = {
        "received_at": received_at,
        "format": SLUG_FORMAT[slug],
        "sender": sender[:300],
        "content_type": content_type[:200],
        "headers": kept_headers(headers, query),
        "remote_addr": remote_addr[:100],
        "request_id": (request_id or "")[:100],
    }
    limit = max_body_bytes()
    if len(body) > limit:
        return body_too_large(fmt=slug, size=len(body), **_args(base))
    text = without_nul(body.decode("utf-8", errors="replace"))
    try:
        parsed = PARSERS[slug](body, content_type=content_type, headers=headers, query=query)
    except PayloadError as exc:
        message = without_nul(str(exc))
        raw = _raw(base, text, IntakeOutcome.REJECTED, error=message)
        return IntakeResult(
            400, {"detail": message, "code": "bad_payload", "raw_id": raw.pk}, raw, []
        )
    if parsed.format:
        base["format"] = parsed.format
    if parsed.handshake is not None:
        raw = _raw(base, text, IntakeOutcome.HANDSHAKE)
        return IntakeResult(200, dict(parsed.handshake), raw, [])
    if not parsed.signals:
        with transaction.atomic():
            raw = _raw(base, text, IntakeOutcome.IGNORED, error=parsed.ignored)
            heard = _heartbeat(parsed, received_at)
        body_json = {
            "received": 0,
            "duplicates": 0,
            "signals": [],
            "ignored": parsed.ignored,
            "raw_id": raw.pk,
        }
        if heard is not None:
            body_json["monitoring_heard_from"] = heard
        return IntakeResult(200, body_json, raw, [])
    return _accept(base, text, parsed, received_at)


def signal_send(
    *, model: str, kind: str, severity: str, sender: str, title: str = "", source: str = ""
) -> IntakeResult:
    """A plain signal made here rather than received (the demo's "send a signal" button):
    the same path as a POST to the generic endpoint, kept as its raw payload too."""
    body = {
        "model": model,
        "kind": str(kind),
        "severity": str(severity),
        "id": uuid.uuid4().hex,
        "source": source or sender,
        "title": title or f"{SignalKind(kind).label} signal for {model} (sent from the portal)",
    }
    return signals_receive(
        fmt="generic",
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers={"Content-Type": "application/json"},
        sender=sender,
        query={},
    )


def _accept(base: dict, text: str, parsed: ParseResult, received_at: datetime) -> IntakeResult:
    unique: dict[str, NormalisedSignal] = {}
    for item in parsed.signals:
        unique.setdefault(item.dedupe_key, item)
    in_body_repeats = len(parsed.signals) - len(unique)
    with transaction.atomic():
        _lock_keys(sorted(unique))
        existing = set(
            Signal.objects.filter(dedupe_key__in=list(unique)).values_list("dedupe_key", flat=True)
        )
        fresh = [s for key, s in unique.items() if key not in existing]
        duplicates = len(existing) + in_body_repeats
        outcome = IntakeOutcome.ACCEPTED if fresh else IntakeOutcome.DUPLICATE
        raw = _raw(base, text, outcome, error=parsed.ignored, count=len(fresh))
        saved: list[Signal] = []
        for item in fresh:
            signal = _signal_save(raw, base["format"], item, received_at)
            if signal is None:  # lost a race the lock did not cover (not PostgreSQL)
                duplicates += 1
                continue
            saved.append(signal)
        for signal in saved:
            _decide(signal)
    answer = {
        "received": len(saved),
        "duplicates": duplicates,
        "signals": [
            {
                "id": s.pk,
                "kind": s.kind,
                "model": s.catalog_model.name if s.catalog_model_id else None,
                "disposition": s.disposition,
            }
            for s in saved
        ],
        "raw_id": raw.pk,
    }
    if parsed.ignored:
        answer["ignored"] = parsed.ignored
    if not saved:
        answer["detail"] = (
            "Already received: this delivery repeats "
            + ("a signal" if duplicates == 1 else f"{duplicates} signals")
            + " the portal has."
        )
        return IntakeResult(200, answer, raw, [], duplicates)
    return IntakeResult(202, answer, raw, saved, duplicates)


def _signal_save(raw, fmt, item: NormalisedSignal, received_at) -> Signal | None:
    details = dict(item.details or {})
    resolves = None
    if item.resolves_key:
        details["resolves_key"] = item.resolves_key
        resolves = Signal.objects.filter(dedupe_key=item.resolves_key).first()
    signal = Signal(
        raw=raw,
        format=fmt,
        kind=item.kind,
        severity=item.severity,
        observed_at=item.observed_at,
        received_at=received_at,
        dedupe_key=without_nul(item.dedupe_key)[:500],
        title=without_nul(item.title or "")[:500],
        source_ref=without_nul(item.source_ref or "")[:1000],
        attributes=without_nul(item.attributes or {}),
        details=without_nul(details),
        resolves=resolves,
    )
    matching.match(signal)
    try:
        with transaction.atomic():
            signal.save()
    except IntegrityError:
        return None
    if signal.catalog_model_id:
        heard_from(signal.catalog_model, received_at, monitoring=_monitoring(signal.kind))
    return signal


def _decide(signal: Signal) -> None:
    """The trigger policy's decision; a failure there keeps the signal (undecided, logged)
    rather than losing the delivery."""
    from .triggering import signal_decide

    try:
        with transaction.atomic():
            signal_decide(signal)
    except Exception:
        logger.exception("Deciding signal #%s failed; it is kept undecided", signal.pk)
        Signal.objects.filter(pk=signal.pk).update(
            disposition=Disposition.PENDING,
            disposition_note="The decision failed (see the logs); it will not be retried.",
        )


def _monitoring(kind: str) -> bool:
    return kind != SignalKind.DATA_ARRIVAL


def heard_from(catalog_model, at: datetime, *, monitoring: bool) -> None:
    """Move the model's last-signal times forward to ``at`` (never back)."""
    ModelOperations.objects.get_or_create(catalog_model=catalog_model)
    rows = ModelOperations.objects.filter(pk=catalog_model.pk)
    rows.filter(Q(last_signal_at__isnull=True) | Q(last_signal_at__lt=at)).update(last_signal_at=at)
    if monitoring:
        rows.filter(
            Q(last_monitoring_signal_at__isnull=True) | Q(last_monitoring_signal_at__lt=at)
        ).update(last_monitoring_signal_at=at)


def _heartbeat(parsed: ParseResult, at: datetime) -> str | None:
    """A clean monitoring report still says monitoring runs: note it for a known model."""
    if not parsed.heartbeat_model:
        return None
    from registry.models import CatalogModel

    model = CatalogModel.objects.filter(name__iexact=parsed.heartbeat_model).first()
    if model is None:
        return None
    heard_from(model, at, monitoring=True)
    return model.name


def _lock_keys(keys: list[str]) -> None:
    if connection.vendor != "postgresql" or not keys:
        return
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def _raw(base: dict, text: str, outcome: str, *, error: str = "", count: int = 0) -> RawSignal:
    raw = RawSignal(
        **base,
        body=text,
        outcome=outcome,
        error=without_nul(error or "")[:5000],
        signal_count=count,
    )
    raw.save()
    return raw


def _args(base: dict) -> dict:
    return {
        "content_type": base["content_type"],
        "headers": base["headers"],
        "sender": base["sender"],
        "remote_addr": base["remote_addr"],
        "request_id": base["request_id"],
    }


def body_too_large(
    *,
    fmt: str,
    size: int,
    content_type: str = "",
    headers: dict | None = None,
    sender: str = "",
    remote_addr: str = "",
    request_id: str = "",
) -> IntakeResult:
    """413: kept as rejected, without the body (it was not read, or not worth keeping)."""
    limit = max_body_bytes()
    message = (
        f"The body is {size:,} bytes; signal endpoints take at most {limit:,} bytes "
        f"({limit / 1048576:g} MiB)."
    )
    raw = RawSignal(
        received_at=timezone.now(),
        format=SLUG_FORMAT[slug_of(fmt)],
        sender=sender[:300],
        content_type=content_type[:200],
        headers=headers or {},
        body="",
        body_truncated=True,
        outcome=IntakeOutcome.REJECTED,
        error=message,
        remote_addr=remote_addr[:100],
        request_id=(request_id or "")[:100],
    )
    raw.save()
    return IntakeResult(413, {"detail": message, "code": "too_large", "raw_id": raw.pk}, raw)


def signals_refused(
    *,
    fmt: str,
    reason: str,
    content_type: str = "",
    headers: dict | None = None,
    query: dict | None = None,
    remote_addr: str = "",
    request_id: str = "",
) -> RawSignal:
    """Record a request that was not authenticated (or not allowed): no body, only why."""
    raw = RawSignal(
        received_at=timezone.now(),
        format=SLUG_FORMAT[slug_of(fmt)],
        content_type=content_type[:200],
        headers=kept_headers(headers or {}, query or {}),
        body="",
        body_truncated=False,
        outcome=IntakeOutcome.REFUSED,
        error=reason[:5000],
        remote_addr=remote_addr[:100],
        request_id=(request_id or "")[:100],
    )
    raw.save()
    return raw


def kept_headers(headers: dict, query: dict | None = None) -> dict:
    kept = {}
    for name, value in (headers or {}).items():
        lowered = str(name).lower()
        if lowered in KEPT_HEADERS:
            kept[lowered] = str(value)[:500]
    visible = {k: str(v)[:300] for k, v in (query or {}).items() if k not in SECRET_QUERY}
    if visible:
        kept["query"] = visible
    return kept
