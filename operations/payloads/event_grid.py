"""Azure Event Grid deliveries, in the Event Grid schema (a JSON array of events) or in
CloudEvents 1.0 (one event, ``application/cloudevents+json``, or a batch array,
``application/cloudevents-batch+json``; Event Grid sends structured mode).

- ``Microsoft.EventGrid.SubscriptionValidationEvent``: the handshake, answered with
  ``{"validationResponse": <code>}`` (the CloudEvents handshake is an OPTIONS request: the
  view answers it).
- ``Microsoft.Storage.BlobCreated``: data arrival, ``attributes.blob_path`` is
  ``container/path`` from the subject. Only the operations that leave a whole blob count:
  ``PutBlob``, ``PutBlockList`` (a block blob committed), ``FlushWithClose`` (ADLS Gen2, a
  file written and closed) and ``CopyBlob`` (on an account with a hierarchical namespace it
  fires when the copy starts, not ends: docs/operations.md says so). Others (ADLS's
  ``CreateFile`` before the data is flushed, ``PutBlockFromURL`` ...) are ignored with the
  reason, so a half-written ADLS file does not start a run.
- ``Microsoft.MachineLearningServices.RunStatusChanged`` whose run carries the model
  monitor's ``azureml_modelmonitor_threshold_breached`` tag: a threshold breach; without the
  tag it is some other run changing status, ignored.
- any other type: ignored with the reason. Dedupe on the event id (Event Grid redelivers
  with the same id).
"""

from __future__ import annotations

import base64
import binascii
import json

from ..models import Severity, SignalFormat, SignalKind
from ._common import (
    dedupe_key,
    get_ci,
    load_json,
    need_object,
    need_text,
    parse_time,
    text_tags,
)
from .base import NormalisedSignal, ParseResult, PayloadError

VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
MONITOR_TAG = "azureml_modelmonitor_threshold_breached"
BLOB_APIS = ("PutBlob", "PutBlockList", "FlushWithClose", "CopyBlob")
_SUBJECT_PREFIX = "/blobServices/default/containers/"


def parse(body: bytes, *, content_type: str = "", headers=None, query=None) -> ParseResult:
    doc = load_json(body)
    if isinstance(doc, list):
        if not doc:
            raise PayloadError("The array holds no events.")
        for i, item in enumerate(doc):
            need_object(item, f"Event {i}")
        cloud = all("specversion" in item for item in doc)
        if not cloud and any("specversion" in item for item in doc):
            raise PayloadError("The array mixes CloudEvents and Event Grid schema events.")
        events = doc
    elif isinstance(doc, dict):
        cloud = "specversion" in doc
        events = [doc]
    else:
        raise PayloadError(
            "The body must be an array of Event Grid events, or a CloudEvent (an object with "
            'specversion "1.0") or an array of them.'
        )
    fmt = SignalFormat.CLOUDEVENTS if cloud else SignalFormat.EVENT_GRID
    result = ParseResult(format=fmt)
    ignored = []
    for i, raw in enumerate(events):
        event = _cloud_event(raw, i) if cloud else _grid_event(raw, i)
        if event["type"] == VALIDATION:
            code = need_object(event["data"], f"Event {i}.data").get("validationCode")
            if not code or not isinstance(code, str):
                raise PayloadError(f"Event {i}.data.validationCode is missing.")
            return ParseResult(handshake={"validationResponse": code}, format=fmt)
        signal, reason = _event_signal(event, i, fmt)
        if signal is not None:
            result.signals.append(signal)
        else:
            ignored.append(reason)
    result.ignored = "; ".join(ignored)
    return result


def _grid_event(event: dict, i: int) -> dict:
    where = f"Event {i}"
    return {
        "id": need_text(event, "id", where),
        "type": need_text(event, "eventType", where),
        "subject": str(event.get("subject") or ""),
        "time": parse_time(event.get("eventTime"), f"{where}.eventTime"),
        "source": str(event.get("topic") or ""),
        "data": event.get("data") if event.get("data") is not None else {},
    }


def _cloud_event(event: dict, i: int) -> dict:
    where = f"CloudEvent {i}"
    version = event.get("specversion")
    if version != "1.0":
        raise PayloadError(f"{where}.specversion is {version!r}: only CloudEvents 1.0 is read.")
    data = event.get("data")
    if data is None and "data_base64" in event:
        try:
            data = json.loads(base64.b64decode(event["data_base64"], validate=True))
        except (binascii.Error, ValueError, TypeError):
            raise PayloadError(f"{where}.data_base64 is not base64 of a JSON document.") from None
    return {
        "id": need_text(event, "id", where),
        "type": need_text(event, "type", where),
        "subject": str(event.get("subject") or ""),
        "time": parse_time(event.get("time"), f"{where}.time"),
        "source": need_text(event, "source", where),
        "data": data if data is not None else {},
    }


def _event_signal(event: dict, i: int, fmt: str) -> tuple[NormalisedSignal | None, str]:
    kind = event["type"]
    if kind == BLOB_CREATED:
        return _blob_created(event, i, fmt)
    if kind == RUN_STATUS_CHANGED:
        return _run_status_changed(event, i, fmt)
    return None, f"event {event['id']}: type {kind} is not one the portal acts on"


def _blob_created(event: dict, i: int, fmt: str):
    data = need_object(event["data"], f"Event {i}.data")
    subject = event["subject"]
    if not subject.startswith(_SUBJECT_PREFIX) or "/blobs/" not in subject:
        raise PayloadError(
            f"Event {i}.subject is {subject!r}, not /blobServices/default/containers/"
            "<container>/blobs/<path>."
        )
    container, _, path = subject.removeprefix(_SUBJECT_PREFIX).partition("/blobs/")
    if not container or not path:
        raise PayloadError(f"Event {i}.subject {subject!r} names no container or blob path.")
    blob_path = f"{container}/{path}"
    api = str(data.get("api") or "")
    if api not in BLOB_APIS:
        return None, (
            f"event {event['id']}: {blob_path} by {api or 'an unnamed operation'} is not a "
            f"finished blob ({', '.join(BLOB_APIS)} are)"
        )
    details = {
        k: data.get(k)
        for k in ("api", "url", "contentType", "contentLength", "blobType", "eTag", "sequencer")
        if k in data
    }
    details["event_id"] = event["id"]
    details["source"] = event["source"]
    return (
        NormalisedSignal(
            kind=SignalKind.DATA_ARRIVAL,
            severity=Severity.INFO,
            observed_at=event["time"],
            dedupe_key=dedupe_key("event-grid", event["id"]),
            title=f"New data: {blob_path}",
            source_ref=blob_path,
            attributes={
                "blob_path": blob_path,
                "resource_ids": [event["source"]] if event["source"] else [],
            },
            details=details,
        ),
        "",
    )


def _run_status_changed(event: dict, i: int, fmt: str):
    data = need_object(event["data"], f"Event {i}.data")
    tags = get_ci(data, "runTags")
    tags = text_tags(tags, f"Event {i}.data.runTags") if tags is not None else {}
    breached = next((v for k, v in tags.items() if k.lower() == MONITOR_TAG), None)
    run_id = str(get_ci(data, "runId") or "")
    if breached is None:
        return None, (
            f"event {event['id']}: run {run_id or '?'} changed status without the model "
            f"monitor's {MONITOR_TAG} tag"
        )
    experiment = str(get_ci(data, "experimentName") or "")
    attributes = {
        "tags": tags,
        "resource_ids": [event["source"]] if event["source"] else [],
    }
    if experiment:
        attributes["alert_rule"] = experiment
    return (
        NormalisedSignal(
            kind=SignalKind.THRESHOLD_BREACH,
            severity=Severity.WARNING,
            observed_at=event["time"],
            dedupe_key=dedupe_key("event-grid", event["id"]),
            title=f"Model monitor {experiment or run_id}: {breached}"[:500],
            source_ref=event["subject"] or run_id,
            attributes=attributes,
            details={
                "event_id": event["id"],
                "source": event["source"],
                "run_id": run_id,
                "experiment_name": experiment,
                "run_status": get_ci(data, "runStatus"),
                "threshold_breached": breached,
            },
        ),
        "",
    )
