"""A request to a signal endpoint → a raw payload kept as it came (append-only, whatever
became of it) and normalised signals, each decided by the model's trigger policy in the
same transaction (docs/operations.md, "Signals in").

The raw row is written once, so its outcome is known when it is: too large, unreadable,
a handshake, nothing to act on, all duplicates, or accepted. A single signal is inserted with
its raw row in one statement whose ``ON CONFLICT (dedupe_key) DO NOTHING`` decides between
accepted and duplicate (PostgreSQL); several are found under a transaction-scoped advisory
lock per dedupe key, so two deliveries of one event racing each other make one signal; the
unique key stays the last word.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
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
from ..payloads.generic import generic_signal_body
from . import matching
from .triggering import DECIDED

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
KEY_LENGTH = Signal._meta.get_field("dedupe_key").max_length
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
    body = generic_signal_body(
        model=model,
        kind=kind,
        severity=severity,
        source=source or sender,
        title=title,
        made_by="sent from the portal",
    )
    return signals_receive(
        fmt="generic",
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers={"Content-Type": "application/json"},
        sender=sender,
        query={},
    )


def _accept(base: dict, text: str, parsed: ParseResult, received_at: datetime) -> IntakeResult:
    """Keep the raw row and the new signals, decided, in one transaction. Round trips are
    counted here (tests/operations/test_intake_queries.py): the policies and rules come from
    this process's copies (config_cache), one statement locks the models' rows and reads the
    models, the signal is inserted once, already matched, and the last-heard times are written
    only when they move by OPERATIONS_LAST_HEARD_RESOLUTION_SECONDS or more."""
    unique: dict[str, NormalisedSignal] = {}
    for item in parsed.signals:
        unique.setdefault(without_nul(item.dedupe_key)[:KEY_LENGTH], item)
    in_body_repeats = len(parsed.signals) - len(unique)
    if len(unique) == 1 and connection.vendor == "postgresql":
        return _accept_one(base, text, parsed, received_at, unique, in_body_repeats)
    with transaction.atomic():
        _lock_keys(sorted(unique))
        existing = set(
            Signal.objects.filter(dedupe_key__in=list(unique)).values_list("dedupe_key", flat=True)
        )
        fresh = [(key, s) for key, s in unique.items() if key not in existing]
        duplicates = len(existing) + in_body_repeats
        outcome = IntakeOutcome.ACCEPTED if fresh else IntakeOutcome.DUPLICATE
        raw = _raw(base, text, outcome, error=parsed.ignored, count=len(fresh))
        signals = [_signal_new(raw, base["format"], key, item, received_at) for key, item in fresh]
        states = _match_and_lock(signals)
        decided = _decide_unsaved(signals, states)
        saved: list[Signal] = []
        for signal in signals:
            if not _signal_insert(signal):  # lost a race the lock did not cover (not PostgreSQL)
                duplicates += 1
                continue
            saved.append(signal)
        for signal in saved:
            if signal.catalog_model_id:
                _heard(states[signal.catalog_model_id], received_at, _monitoring(signal.kind))
        for signal in saved:
            if decided.get(id(signal)) != DECIDED:
                _decide(signal, states.get(signal.catalog_model_id), decided.get(id(signal)))
    return _answer(raw, saved, duplicates, parsed)


def _answer(raw: RawSignal, saved: list[Signal], duplicates: int, parsed) -> IntakeResult:
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


def _accept_one(base, text, parsed, received_at, unique, in_body_repeats) -> IntakeResult:
    """One signal (nearly every request), on PostgreSQL: match it and lock its model's row,
    decide it if that needs no saved row, then insert it and its raw row in one statement
    whose ``ON CONFLICT (dedupe_key) DO NOTHING`` is the duplicate check (a concurrent
    delivery of the same key waits for the first to commit, then finds it): 5 statements
    with BEGIN and COMMIT for a signal that joins an episode, or for a redelivery."""
    ((key, item),) = unique.items()
    with transaction.atomic():
        raw = _raw_new(base, text, IntakeOutcome.ACCEPTED, error=parsed.ignored, count=1)
        signal = _signal_new(raw, base["format"], key, item, received_at)
        states = _match_and_lock([signal])
        verdict = _decide_unsaved([signal], states).get(id(signal))
        saved = [signal] if _insert_pair(raw, signal) else []
        for signal in saved:
            if signal.catalog_model_id:
                _heard(states[signal.catalog_model_id], received_at, _monitoring(signal.kind))
            if verdict != DECIDED:
                _decide(signal, states.get(signal.catalog_model_id), verdict)
    return _answer(raw, saved, in_body_repeats + (0 if saved else 1), parsed)


def _insert_pair(raw: RawSignal, signal: Signal) -> bool:
    """Insert ``signal`` unless its key exists, and ``raw`` as accepted (1 signal) or as a
    duplicate (0), in one statement; set their ids. Returns whether the signal was new."""
    raw_fields = [f for f in RawSignal._meta.concrete_fields if not f.primary_key]
    signal_fields = [
        f for f in Signal._meta.concrete_fields if not f.primary_key and f.attname != "raw_id"
    ]
    qn = connection.ops.quote_name

    def values(obj, fields):
        return [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]

    raw_fields = [f for f in raw_fields if f.attname not in ("outcome", "signal_count")]
    # Only the models' own table and column names are put in the text; values are parameters.
    sql = (
        f"WITH r AS (SELECT nextval(pg_get_serial_sequence(%s, 'id')) AS id), "  # noqa: S608
        f"s AS (INSERT INTO {qn(Signal._meta.db_table)} (raw_id, "
        + ", ".join(qn(f.column) for f in signal_fields)
        + ") VALUES ((SELECT id FROM r), "
        + ", ".join(["%s"] * len(signal_fields))
        + ") ON CONFLICT (dedupe_key) DO NOTHING RETURNING id), "
        f"w AS (INSERT INTO {qn(RawSignal._meta.db_table)} (id, outcome, signal_count, "
        + ", ".join(qn(f.column) for f in raw_fields)
        + ") VALUES ((SELECT id FROM r), "
        "CASE WHEN EXISTS (SELECT 1 FROM s) THEN %s ELSE %s END, "
        "CASE WHEN EXISTS (SELECT 1 FROM s) THEN 1 ELSE 0 END, "
        + ", ".join(["%s"] * len(raw_fields))
        + ") RETURNING id) SELECT (SELECT id FROM w), (SELECT id FROM s)"
    )
    params = [
        RawSignal._meta.db_table,
        *values(signal, signal_fields),
        IntakeOutcome.ACCEPTED,
        IntakeOutcome.DUPLICATE,
        *values(raw, raw_fields),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        raw_id, signal_id = cursor.fetchone()
    raw.pk, raw._state.adding, raw._state.db = raw_id, False, connection.alias
    signal.raw_id = raw_id
    if signal_id is None:
        raw.outcome, raw.signal_count = IntakeOutcome.DUPLICATE, 0
        return False
    signal.pk, signal._state.adding, signal._state.db = signal_id, False, connection.alias
    return True


def _signal_new(raw, fmt, key: str, item: NormalisedSignal, received_at) -> Signal:
    details = dict(item.details or {})
    resolves = None
    if item.resolves_key:
        details["resolves_key"] = item.resolves_key
        resolves = Signal.objects.filter(dedupe_key=item.resolves_key[:KEY_LENGTH]).first()
    return Signal(
        raw=raw,
        format=fmt,
        kind=item.kind,
        severity=item.severity,
        observed_at=item.observed_at,
        received_at=received_at,
        dedupe_key=key,
        title=without_nul(item.title or "")[:500],
        source_ref=without_nul(item.source_ref or "")[:1000],
        attributes=without_nul(item.attributes or {}),
        details=without_nul(details),
        resolves=resolves,
    )


def _signal_insert(signal: Signal) -> bool:
    """Insert the signal. On PostgreSQL the advisory lock on its key (held since before the
    duplicate check) means no other transaction can insert the same key meanwhile, so no
    savepoint is spent on it; elsewhere a unique-key race is caught as a duplicate."""
    if connection.vendor == "postgresql":
        signal.save(force_insert=True)
        return True
    try:
        with transaction.atomic():
            signal.save(force_insert=True)
    except IntegrityError:
        return False
    return True


# Names of catalog models to their ids, learnt from the database; only a hint: the row lock
# reads the model again and a hint that no longer holds is dropped (renamed, deleted).
_model_ids: dict[str, int] = {}
MODEL_ID_HINTS = 20_000


def _model_id(name: str) -> int | None:
    key = name.upper()
    if key in _model_ids:
        return _model_ids[key]
    from registry.models import CatalogModel

    found = CatalogModel.objects.filter(name__iexact=name).values_list("pk", flat=True).first()
    if found is not None:
        if len(_model_ids) >= MODEL_ID_HINTS:
            _model_ids.clear()
        _model_ids[key] = found
    return found


def _match_and_lock(signals: list[Signal]) -> dict[int, ModelOperations]:
    """Match each signal (``matching``'s order: the payload's model name, then the rules) and
    lock the rows of the models matched, in id order (so two bodies naming the same models
    never deadlock), reading the models with them. Returns the locked rows by model id."""
    plans = []
    for signal in signals:
        signal.catalog_model, signal.matched_by, signal.rule = None, "", None
        attributes = signal.attributes or {}
        name = matching.model_field(attributes)
        model_id = _model_id(name) if name else None
        rule = None
        if model_id is None:
            rule = matching.rule_for(attributes)
            model_id = rule.catalog_model_id if rule is not None else None
        plans.append((signal, name, model_id, rule))
    states = _states_lock({p[2] for p in plans if p[2] is not None})
    for signal, name, model_id, rule in plans:
        state = states.get(model_id)
        if rule is None and state is not None and state.catalog_model.name.upper() != name.upper():
            state = None  # the name hint is stale: ask the database
        if state is None and model_id is not None:
            _model_ids.pop(name.upper(), None)
            matching.match(signal)  # rare: read again, then lock that model
            locked = _states_lock({signal.catalog_model_id}) if signal.catalog_model_id else {}
            states.update(locked)
            if signal.catalog_model_id in locked:
                signal.catalog_model = locked[signal.catalog_model_id].catalog_model
            continue
        if state is None:
            continue
        if rule is None:
            matching.by_name(signal, state.catalog_model, name)
        else:
            matching.by_rule(signal, state.catalog_model, rule)
    return states


def _states_lock(model_ids: set[int]) -> dict[int, ModelOperations]:
    """Lock the ``ModelOperations`` rows of these models (made if missing), their catalog
    models read with them: one statement when the rows exist."""
    if not model_ids:
        return {}

    def lock(ids) -> dict[int, ModelOperations]:
        rows = (
            ModelOperations.objects.select_for_update(of=("self",))
            .select_related("catalog_model")
            .filter(pk__in=sorted(ids))
            .order_by("pk")
        )
        return {row.pk: row for row in rows}

    states = lock(model_ids)
    missing = model_ids - set(states)
    if missing:
        from registry.models import CatalogModel

        live = list(CatalogModel.objects.filter(pk__in=missing).values_list("pk", flat=True))
        ModelOperations.objects.bulk_create(
            [ModelOperations(catalog_model_id=pk) for pk in live], ignore_conflicts=True
        )
        states.update(lock(live))
    return states


def _heard(state: ModelOperations, at: datetime, monitoring: bool) -> None:
    """Move the locked row's last-signal times forward to ``at``, when that moves them by the
    resolution or more (one UPDATE, often none: a burst writes the row once)."""
    resolution = timedelta(seconds=settings.OPERATIONS_LAST_HEARD_RESOLUTION_SECONDS)
    changes = {}
    for name, wanted in (("last_signal_at", True), ("last_monitoring_signal_at", monitoring)):
        current = getattr(state, name)
        if wanted and (current is None or at - current >= resolution):
            changes[name] = at
    if changes:
        ModelOperations.objects.filter(pk=state.pk).update(**changes)
        for name, value in changes.items():
            setattr(state, name, value)


def _decide_unsaved(signals: list[Signal], states: dict) -> dict[int, str]:
    """Decide before the insert what needs no saved signal (see
    ``triggering.signal_decide_unsaved``), for signals alone with their model in the body (the
    others' decisions depend on each other's). Returns DECIDED or OPENS by the signal's
    ``id()``. A failure leaves the signal to the decision after the insert (which keeps it,
    undecided, if it fails again)."""
    from .triggering import signal_decide_unsaved

    per_model = Counter(s.catalog_model_id for s in signals)
    found = {}
    for signal in signals:
        if signal.catalog_model_id and per_model[signal.catalog_model_id] > 1:
            continue
        try:
            verdict = signal_decide_unsaved(signal, states.get(signal.catalog_model_id))
        except Exception:
            logger.exception("Deciding a new signal before its insert failed; deciding after")
            signal.disposition, signal.disposition_note, signal.episode = "", "", None
            continue
        if verdict is not None:
            found[id(signal)] = verdict
    return found


def _decide(signal: Signal, state: ModelOperations | None, verdict: str | None = None) -> None:
    """The trigger policy's decision (``verdict`` OPENS: the episode the policy was found to
    open before the insert), with the model's row already locked; a failure there keeps the
    signal (undecided, logged) rather than losing the delivery."""
    from .triggering import OPENS, signal_decide_locked, signal_episode_open

    try:
        with transaction.atomic():
            if verdict == OPENS and state is not None:
                signal_episode_open(signal, state)
            else:
                signal_decide_locked(signal, state)
    except Exception:
        logger.exception("Deciding signal #%s failed; it is kept undecided", signal.pk)
        Signal.objects.filter(pk=signal.pk).update(
            disposition=Disposition.PENDING,
            disposition_note="The decision failed (see the logs); it will not be retried.",
        )


def _monitoring(kind: str) -> bool:
    return kind != SignalKind.DATA_ARRIVAL


def heard_from(catalog_model, at: datetime, *, monitoring: bool) -> None:
    """Move the model's last-signal times forward to ``at`` (never back), outside a signal's
    intake (a clean report, the demo's history): the same locked row and resolution."""
    with transaction.atomic():
        state = _states_lock({catalog_model.pk}).get(catalog_model.pk)
        if state is not None:
            _heard(state, at, monitoring)


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


def _raw_new(base: dict, text: str, outcome: str, *, error: str = "", count: int = 0) -> RawSignal:
    return RawSignal(
        **base,
        body=text,
        outcome=outcome,
        error=without_nul(error or "")[:5000],
        signal_count=count,
    )


def _raw(base: dict, text: str, outcome: str, *, error: str = "", count: int = 0) -> RawSignal:
    raw = _raw_new(base, text, outcome, error=error, count=count)
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
