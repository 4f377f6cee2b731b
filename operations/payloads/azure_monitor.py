"""Azure Monitor alerts in the common alert schema (action group webhook, "Enable the common
alert schema" on). ``Fired`` opens a signal; ``Resolved`` is a signal of kind resolved that
names the fired one (the same alert id), so the pair is two signals and each redelivery of
either is a duplicate (dedupe on alert id + monitor condition).

Azure Monitor names no kind: the alert rule's custom properties may say it (``signalKind``
or ``kind``), else the rule's name and description are read for "drift" or a performance
word, else it is a threshold breach. Sev0..Sev4 become critical, error, warning, info, info.
"""

from __future__ import annotations

from ..models import SignalFormat, SignalKind
from ._common import (
    dedupe_key,
    kind_guess,
    kind_value,
    load_json,
    need_object,
    need_text,
    parse_time,
    severity_value,
    text_tags,
)
from .base import NormalisedSignal, ParseResult, PayloadError

SCHEMA_ID = "azureMonitorCommonAlertSchema"
CONDITIONS = ("Fired", "Resolved")
_CONDITION_KEYS = (
    "metricName",
    "metricNamespace",
    "operator",
    "threshold",
    "timeAggregation",
    "metricValue",
    "dimensions",
    "searchQuery",
)


def parse(body: bytes, *, content_type: str = "", headers=None, query=None) -> ParseResult:
    doc = need_object(load_json(body), "The body")
    schema = doc.get("schemaId")
    if schema != SCHEMA_ID:
        raise PayloadError(
            f'schemaId is {schema!r}, not {SCHEMA_ID!r}: turn on "Enable the common alert '
            "schema\" in the action group's webhook action."
        )
    data = need_object(doc.get("data"), "data")
    essentials = need_object(data.get("essentials"), "data.essentials")
    where = "data.essentials"
    alert_id = need_text(essentials, "alertId", where)
    condition = need_text(essentials, "monitorCondition", where)
    if condition not in CONDITIONS:
        raise PayloadError(f"{where}.monitorCondition is {condition!r}: Fired or Resolved.")
    severity = severity_value(essentials.get("severity"), f"{where}.severity")
    rule = str(essentials.get("alertRule") or "")
    description = str(essentials.get("description") or "")
    fired_at = parse_time(essentials.get("firedDateTime"), f"{where}.firedDateTime")
    custom = text_tags(data.get("customProperties"), "data.customProperties")
    targets = essentials.get("alertTargetIDs") or []
    if not isinstance(targets, list):
        raise PayloadError(f"{where}.alertTargetIDs must be an array of resource ids.")

    attributes = {
        "alert_rule": rule,
        "resource_ids": [str(t) for t in targets if t],
        "tags": custom,
    }
    named = custom.get("model") or custom.get("modelName")
    if named:
        attributes["model"] = named
    context = data.get("alertContext") if isinstance(data.get("alertContext"), dict) else {}
    details = {
        "alert_id": alert_id,
        "monitor_condition": condition,
        "signal_type": essentials.get("signalType", ""),
        "monitoring_service": essentials.get("monitoringService", ""),
        "origin_alert_id": essentials.get("originAlertId", ""),
        "configuration_items": essentials.get("configurationItems") or [],
        "fired_at": essentials.get("firedDateTime"),
        "resolved_at": essentials.get("resolvedDateTime"),
        "condition": _condition(context),
    }
    fired_key = dedupe_key("azure-monitor", alert_id, "Fired")
    title = f"{rule}: {description}" if description else (rule or alert_id)
    if condition == "Fired":
        raw_kind = custom.get("signalKind") or custom.get("kind")
        if raw_kind:
            kind = kind_value(raw_kind, "data.customProperties.signalKind")
            if kind == SignalKind.RESOLVED:
                raise PayloadError(
                    "data.customProperties.signalKind is 'resolved' on a Fired alert: "
                    "Azure Monitor says Resolved itself."
                )
        else:
            kind = kind_guess(rule, description)
        signal = NormalisedSignal(
            kind=kind,
            severity=severity,
            observed_at=fired_at,
            dedupe_key=fired_key,
            title=title,
            source_ref=rule,
            attributes=attributes,
            details=details,
        )
    else:
        resolved = essentials.get("resolvedDateTime")
        observed = parse_time(resolved, f"{where}.resolvedDateTime") if resolved else fired_at
        signal = NormalisedSignal(
            kind=SignalKind.RESOLVED,
            severity=severity,
            observed_at=observed,
            dedupe_key=dedupe_key("azure-monitor", alert_id, "Resolved"),
            title=f"Resolved: {title}",
            source_ref=rule,
            attributes=attributes,
            details=details,
            resolves_key=fired_key,
        )
    return ParseResult(signals=[signal], format=SignalFormat.AZURE_MONITOR)


def _condition(context: dict) -> dict:
    """The metric criteria in short (log alerts can carry whole search results: not kept)."""
    condition = context.get("condition")
    if not isinstance(condition, dict):
        return {"condition_type": context.get("conditionType", "")} if context else {}
    criteria = [
        {k: c.get(k) for k in _CONDITION_KEYS if k in c}
        for c in condition.get("allOf") or []
        if isinstance(c, dict)
    ]
    return {
        "condition_type": context.get("conditionType", ""),
        "window_size": condition.get("windowSize"),
        "window_start": condition.get("windowStartTime"),
        "window_end": condition.get("windowEndTime"),
        "criteria": criteria,
    }
