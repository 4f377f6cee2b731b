"""A plain JSON signal, for any sender the other endpoints do not cover (a scheduler, a
custom monitor, a script). The serializer below is the contract, and the OpenAPI schema of
``POST /api/v1/operations/signals/generic/`` is made from it."""

from __future__ import annotations

import uuid

from django.utils import timezone
from rest_framework import serializers

from ..models import Severity, SignalFormat, SignalKind
from ._common import (
    content_hash,
    dedupe_key,
    kind_value,
    load_json,
    need_object,
    parse_time,
    severity_value,
)
from .base import NormalisedSignal, ParseResult, PayloadError


class GenericSignalSerializer(serializers.Serializer):
    model = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="The catalog model's name (case-insensitive); without it, match rules on "
        "tags or source decide.",
    )
    kind = serializers.CharField(
        help_text="data_arrival, drift, threshold_breach, performance_drop or resolved."
    )
    severity = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="critical, error, warning (default) or info.",
    )
    observed_at = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="When it happened, ISO 8601 (default: when it was received).",
    )
    id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        help_text="The sender's id of the event: the same id (and source) twice is one "
        "signal. Without it, the same body twice is.",
    )
    source = serializers.CharField(
        required=False, allow_blank=True, max_length=300, help_text="Who or what sends it."
    )
    title = serializers.CharField(required=False, allow_blank=True, max_length=500)
    details = serializers.DictField(
        required=False, help_text="Anything worth keeping (metric values, links)."
    )
    tags = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="Key/value text the tag match rules look at.",
    )
    resolves = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        help_text="For kind resolved: the id of the signal (same source) it closes.",
    )


def generic_signal_body(
    *,
    model: str,
    kind: str,
    severity: str,
    source: str,
    made_by: str,
    title: str = "",
    resolves: str = "",
) -> dict:
    """The body a plain signal made by the portal itself carries (the demo's button, ``manage.py
    send_signal``): a fresh event id, and a title that says what made it."""
    body = {
        "model": model,
        "kind": str(kind),
        "severity": str(severity),
        "id": uuid.uuid4().hex,
        "source": source,
        "title": title or f"{SignalKind(kind).label} signal for {model} ({made_by})",
    }
    if resolves:
        body["resolves"] = resolves
    return body


def parse(body: bytes, *, content_type: str = "", headers=None, query=None) -> ParseResult:
    doc = need_object(load_json(body), "The body")
    serializer = GenericSignalSerializer(data=doc)  # one instance: its fields are built once
    unknown = sorted(set(doc) - set(serializer.fields))
    if unknown:
        raise PayloadError(
            f"Unknown field(s): {', '.join(unknown)} (the fields are model, kind, severity, "
            "observed_at, id, source, title, details, tags, resolves)."
        )
    if not serializer.is_valid():
        parts = [
            f"{name}: {' '.join(str(m) for m in _flat(messages))}"
            for name, messages in serializer.errors.items()
        ]
        raise PayloadError("Invalid signal: " + "; ".join(parts))
    data = serializer.validated_data
    kind = kind_value(data["kind"], "kind")
    severity = severity_value(data.get("severity"), "severity", Severity.WARNING)
    if data.get("observed_at"):
        observed_at = parse_time(data["observed_at"], "observed_at")
    else:
        observed_at = timezone.now()
    source = data.get("source") or ""
    model = (data.get("model") or "").strip()
    if data.get("id"):
        key = dedupe_key("generic", source, data["id"])
    else:
        key = dedupe_key("generic", source, content_hash(doc))
    resolves_key = ""
    if kind == SignalKind.RESOLVED:
        if not data.get("resolves"):
            raise PayloadError("A resolved signal needs resolves: the id of the one it closes.")
        resolves_key = dedupe_key("generic", source, data["resolves"])
    elif data.get("resolves"):
        raise PayloadError("resolves is only for kind resolved.")
    attributes = {"tags": dict(data.get("tags") or {})}
    if model:
        attributes["model"] = model
    title = data.get("title") or f"{SignalKind(kind).label} for {model or 'a model'}"
    return ParseResult(
        signals=[
            NormalisedSignal(
                kind=kind,
                severity=severity,
                observed_at=observed_at,
                dedupe_key=key,
                title=title,
                source_ref=source,
                attributes=attributes,
                details=dict(data.get("details") or {}),
                resolves_key=resolves_key,
            )
        ],
        format=SignalFormat.GENERIC,
    )


def _flat(messages):
    if isinstance(messages, dict):
        for key, value in messages.items():
            for message in _flat(value):
                yield f"{key}: {message}"
    elif isinstance(messages, list):
        for message in messages:
            yield from _flat(message)
    else:
        yield messages
