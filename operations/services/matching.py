"""Which catalog model a signal is about (docs/operations.md, "Signals in").

First the payload's own model field (``attributes.model``, a catalog name, any case); then
the match rules, by field in this order: a model-name alias, a resource id, a Databricks job
id, an alert rule name, a blob path prefix (the longest wins), a tag ``key=value``. A rule
with a kind makes the signal that kind (a Databricks monitoring job's failure is drift).
A signal nothing matches stays unmatched, with the rules that would match it suggested
(``rule_suggestions``); a new rule re-matches the last week's unmatched signals
(``unmatched_rematch``, called by the admin when a rule is saved).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Length
from django.utils import timezone

from registry.models import CatalogModel

from ..models import Disposition, MatchField, MatchRule, Signal, SignalKind

logger = logging.getLogger(__name__)

REMATCH_DAYS = 7
FIELD_ORDER = (
    MatchField.MODEL_FIELD,
    MatchField.RESOURCE_ID,
    MatchField.JOB_ID,
    MatchField.ALERT_RULE,
    MatchField.BLOB_PREFIX,
    MatchField.TAG,
)


def match(signal: Signal) -> None:
    """Set ``catalog_model``, ``matched_by`` and ``rule`` (and the rule's kind); not saved."""
    signal.catalog_model, signal.matched_by, signal.rule = None, "", None
    attributes = signal.attributes or {}
    name = str(attributes.get("model") or "").strip()
    if name:
        model = CatalogModel.objects.filter(name__iexact=name).first()
        if model is not None:
            signal.catalog_model = model
            signal.matched_by = f"model field {name!r}"
            return
    rule = rule_for(attributes)
    if rule is None:
        return
    signal.catalog_model = rule.catalog_model
    signal.rule = rule
    signal.matched_by = f"rule #{rule.pk}: {rule.get_field_display()} {rule.value!r}"
    if rule.kind and signal.kind != SignalKind.RESOLVED:
        signal.kind = rule.kind


def rule_for(attributes: dict) -> MatchRule | None:
    """The enabled rule that matches these attributes first (by FIELD_ORDER)."""
    conditions = _conditions(attributes)
    if not conditions:
        return None
    query = Q()
    for condition in conditions.values():
        query |= condition
    rules = list(
        MatchRule.objects.filter(enabled=True)
        .filter(query)
        .select_related("catalog_model")
        .annotate(value_length=Length("value"))
    )
    for field in FIELD_ORDER:
        candidates = [r for r in rules if r.field == field]
        if candidates:
            # The longest value wins (what matters for blob prefixes); then the oldest rule.
            return sorted(candidates, key=lambda r: (-r.value_length, r.pk))[0]
    return None


def _conditions(attributes: dict) -> dict[str, Q]:
    conditions: dict[str, Q] = {}

    def any_of(field: str, values) -> None:
        values = [str(v) for v in values if v not in (None, "")]
        if not values:
            return
        query = Q()
        for value in values:
            query |= Q(value__iexact=value)
        conditions[field] = Q(field=field) & query

    any_of(MatchField.MODEL_FIELD, [attributes.get("model")])
    any_of(MatchField.RESOURCE_ID, attributes.get("resource_ids") or [])
    any_of(MatchField.JOB_ID, [attributes.get("job_id")])
    any_of(MatchField.ALERT_RULE, [attributes.get("alert_rule")])
    any_of(MatchField.TAG, [f"{k}={v}" for k, v in (attributes.get("tags") or {}).items()])
    blob_path = attributes.get("blob_path")
    if blob_path:
        conditions[MatchField.BLOB_PREFIX] = Q(field=MatchField.BLOB_PREFIX) & Q(
            pk__in=MatchRule.objects.filter(field=MatchField.BLOB_PREFIX)
            .alias(path=Value(str(blob_path)))
            .filter(path__istartswith=F("value"))
            .values("pk")
        )
    return conditions


def rule_suggestions(signal: Signal) -> list[tuple[str, str, str]]:
    """(field, value, label) of each rule that would match ``signal``, most specific first;
    rules that exist already (even disabled) are left out."""
    attributes = signal.attributes or {}
    found: list[tuple[str, str, str]] = []
    name = str(attributes.get("model") or "").strip()
    if name:
        found.append((MatchField.MODEL_FIELD, name, f"The payload names the model {name!r}"))
    for resource in attributes.get("resource_ids") or []:
        found.append((MatchField.RESOURCE_ID, str(resource), f"Azure resource {resource}"))
    if attributes.get("job_id"):
        job = str(attributes["job_id"])
        found.append((MatchField.JOB_ID, job, f"Databricks job {job}"))
    if attributes.get("alert_rule"):
        rule = str(attributes["alert_rule"])
        found.append((MatchField.ALERT_RULE, rule, f"Alert rule {rule!r}"))
    if attributes.get("blob_path"):
        for prefix in _blob_prefixes(str(attributes["blob_path"])):
            found.append((MatchField.BLOB_PREFIX, prefix, f"Blobs under {prefix}"))
    for key, value in (attributes.get("tags") or {}).items():
        found.append((MatchField.TAG, f"{key}={value}", f"Tag {key} = {value!r}"))
    existing = {
        (field, value.lower()) for field, value in MatchRule.objects.values_list("field", "value")
    }
    seen = set()
    suggestions = []
    for field, value, label in found:
        key = (str(field), value.lower())
        if key in existing or key in seen or len(value) > 1000:
            continue
        seen.add(key)
        suggestions.append((str(field), value, label))
    return suggestions


def _blob_prefixes(path: str) -> list[str]:
    """The folders of a blob path, deepest first: landing/fraud/2025/x.csv → landing/fraud/2025/,
    landing/fraud/, landing/."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))][::-1][:5]


def unmatched_rematch(rule: MatchRule | None = None) -> int:
    """Match the last week's unmatched signals again (after ``rule`` was made or changed) and
    decide the ones that now have a model. Returns how many were matched."""
    from .triggering import signal_decide

    since = timezone.now() - timedelta(days=REMATCH_DAYS)
    candidates = Signal.objects.filter(
        catalog_model__isnull=True, disposition=Disposition.UNMATCHED, received_at__gte=since
    ).order_by("received_at", "pk")
    matched = 0
    for pk in candidates.values_list("pk", flat=True).iterator():
        with transaction.atomic():
            signal = (
                Signal.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, catalog_model__isnull=True, disposition=Disposition.UNMATCHED)
                .first()
            )
            if signal is None:
                continue
            match(signal)
            if signal.catalog_model is None:
                continue
            signal.save(update_fields=["catalog_model", "matched_by", "rule", "kind"])
            signal_decide(signal)
            matched += 1
    if matched:
        logger.info("Re-matched %d unmatched signal(s)%s", matched, f" by {rule}" if rule else "")
    return matched
