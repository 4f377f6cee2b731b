"""What every parser returns: normalised signals, or a handshake answer, or a reason there is
nothing to act on. A payload the portal cannot read raises ``PayloadError`` (a 400 that says
what is wrong)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class PayloadError(ValueError):
    """The body is not what the endpoint accepts; the message is for the sender."""


@dataclass
class NormalisedSignal:
    kind: str  # a SignalKind value
    severity: str  # a Severity value
    observed_at: datetime
    dedupe_key: str  # the same event delivered twice has the same key
    title: str = ""
    source_ref: str = ""
    # What the match rules look at: "model" (a name the payload gives), "alert_rule",
    # "tags" ({key: value}), "resource_ids" ([...]), "blob_path" ("container/path"),
    # "job_id" (str), each optional.
    attributes: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    # For a RESOLVED signal: the dedupe key of the signal it closes.
    resolves_key: str = ""


@dataclass
class ParseResult:
    signals: list[NormalisedSignal] = field(default_factory=list)
    # A subscription-validation handshake: the JSON body to answer with (and no signals).
    handshake: dict | None = None
    # When the payload is valid but carries nothing to act on (e.g. a Databricks on_start).
    ignored: str = ""
    # The SignalFormat value when an endpoint takes more than one (Event Grid or CloudEvents).
    format: str = ""
    # A clean monitoring report (no drift): the model it names was heard from all the same.
    heartbeat_model: str = ""
