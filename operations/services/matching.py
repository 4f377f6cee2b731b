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
from django.utils import timezone

from registry.models import CatalogModel

from ..models import Disposition, MatchField, MatchRule, Signal, SignalKind
from . import config_cache

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
    name = model_field(attributes)
    if name:
        model = CatalogModel.objects.filter(name__iexact=name).first()
        if model is not None:
            by_name(signal, model, name)
            return
    rule = rule_for(attributes)
    if rule is None:
        return
    model = CatalogModel.objects.filter(pk=rule.catalog_model_id).first()
    if model is not None:
        by_rule(signal, model, rule)


def model_field(attributes: dict) -> str:
    """The model name the payload gives, if any."""
    return str(attributes.get("model") or "").strip()


def by_name(signal: Signal, model: CatalogModel, name: str) -> None:
    """``signal`` is about ``model``, which the payload names."""
    signal.catalog_model, signal.rule = model, None
    signal.matched_by = f"model field {name!r}"


def by_rule(signal: Signal, model: CatalogModel, rule: MatchRule) -> None:
    """``signal`` is about ``model``, by ``rule`` (whose kind, if any, it takes)."""
    signal.catalog_model = model
    signal.rule = rule
    signal.matched_by = f"rule #{rule.pk}: {rule.get_field_display()} {rule.value!r}"
    if rule.kind and signal.kind != SignalKind.RESOLVED:
        signal.kind = rule.kind


class RuleIndex:
    """The enabled rules, indexed for matching in Python: a dict per exact field, and the blob
    prefixes. Compared as the database compares with ``iexact`` / ``istartswith`` (upper
    case). Built from every enabled rule; this process keeps it (config_cache)."""

    def __init__(self, rules: list[MatchRule]):
        self.exact: dict[tuple[str, str], list[MatchRule]] = {}
        self.prefixes: list[MatchRule] = []
        for rule in rules:
            if rule.field == MatchField.BLOB_PREFIX:
                self.prefixes.append(rule)
            else:
                self.exact.setdefault((rule.field, rule.value.upper()), []).append(rule)

    def candidates(self, attributes: dict) -> list[MatchRule]:
        found: list[MatchRule] = []
        for field, values in _values(attributes).items():
            for value in values:
                found.extend(self.exact.get((field, value.upper()), ()))
        blob_path = attributes.get("blob_path")
        if blob_path:
            path = str(blob_path).upper()
            found.extend(r for r in self.prefixes if path.startswith(r.value.upper()))
        return found


def _rule_index() -> RuleIndex:
    return RuleIndex(list(MatchRule.objects.filter(enabled=True)))


def rule_for(attributes: dict) -> MatchRule | None:
    """The enabled rule that matches these attributes first (by FIELD_ORDER); the longest
    value wins within a field (what matters for blob prefixes), then the oldest rule. The rule
    comes from this process's copy of the rules: read-only, its catalog model not loaded."""
    rules = config_cache.cached("match_rules", _rule_index).candidates(attributes)
    for field in FIELD_ORDER:
        candidates = [r for r in rules if r.field == field]
        if candidates:
            return min(candidates, key=lambda r: (-len(r.value), r.pk))
    return None


def _values(attributes: dict) -> dict[str, list[str]]:
    """The values each exact field compares, from a signal's attributes."""

    def clean(values) -> list[str]:
        return [str(v) for v in values if v not in (None, "")]

    return {
        MatchField.MODEL_FIELD: clean([attributes.get("model")]),
        MatchField.RESOURCE_ID: clean(attributes.get("resource_ids") or []),
        MatchField.JOB_ID: clean([attributes.get("job_id")]),
        MatchField.ALERT_RULE: clean([attributes.get("alert_rule")]),
        MatchField.TAG: clean([f"{k}={v}" for k, v in (attributes.get("tags") or {}).items()]),
    }


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
