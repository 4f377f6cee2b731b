"""Template helpers of the registry pages: numbers, deltas and version links."""

from __future__ import annotations

import math
import re

from django import template
from django.urls import reverse
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from core.templatetags.portal_ui import status_badge

register = template.Library()


@register.filter
def metric_value(value):
    """A metric or param value, short but exact enough to compare (6 significant digits)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(value) if math.isnan(value) or math.isinf(value) else f"{value:.6g}"
    return str(value)


@register.filter
def soft_breaks(name: str):
    """A long dotted name (catalog.schema.model) that may wrap after its dots and underscores."""
    escaped = conditional_escape(name or "")
    return mark_safe(re.sub(r"([._/-])", r"\1<wbr>", escaped))  # noqa: S308 (escaped above)


@register.filter
def get_item(mapping, key):
    """mapping[key] (or sequence[index]) in a template (None when absent)."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    if (
        isinstance(mapping, list | tuple)
        and isinstance(key, int)
        and -len(mapping) <= key < len(mapping)
    ):
        return mapping[key]
    return None


@register.filter
def signed_delta(value):
    """A difference with its sign (a real minus sign): +0.0123, -4."""
    if value is None:
        return ""
    if value == 0:
        return "±0"
    text = f"{value:+.4g}"
    return text.replace("-", "\u2212")


@register.simple_tag
def version_url(version) -> str:
    rm = version.registered_model
    return reverse(
        "registry:version-detail",
        kwargs={"source": rm.source.name, "name": rm.name, "version": version.version},
    )


@register.simple_tag
def alias_version_url(registration, version: int) -> str:
    return reverse(
        "registry:version-detail",
        kwargs={"source": registration.source.name, "name": registration.name, "version": version},
    )


@register.filter
def category_label(value: str) -> str:
    return {
        "ml": "ML model",
        "rule_based": "Rule-based",
        "batch": "Batch",
        "real_time": "Real-time",
        "unknown": "unknown",
    }.get(value or "unknown", value)


# MLflow version statuses, in the portal's one colour meaning (portal_ui.STATUS_COLOURS).
VERSION_STATUSES = {
    "READY": ("succeeded", "ready"),
    "PENDING_REGISTRATION": ("pending", "pending registration"),
    "FAILED_REGISTRATION": ("failed", "failed registration"),
}


@register.simple_tag
def version_status_badge(status: str):
    colour_key, label = VERSION_STATUSES.get(
        (status or "").upper(), ("unknown", status or "unknown")
    )
    return status_badge(colour_key, label)


CATEGORY_ICONS = {"kind": "bi-cpu", "serving": "bi-lightning-charge", "team": "bi-people"}


@register.simple_tag
def category_badge(value: str, what: str):
    """A kind / serving / team badge; 'unknown' is shown as such, muted."""
    unknown = not value or value == "unknown"
    label = "unknown" if unknown else category_label(value)
    return format_html(
        '<span class="badge rounded-pill category-badge {}" data-category="{}" title="{}: {}">'
        '<i class="bi {} me-1" aria-hidden="true"></i>{}</span>',
        "category-unknown" if unknown else f"category-{what}",
        what,
        what.capitalize(),
        label,
        CATEGORY_ICONS.get(what, "bi-tag"),
        label,
    )


# Model cards: risk (high red, medium amber, low green, not rated grey) and review status
# (approved green, in review amber, draft blue-grey, archived grey), as UI.md's colours say.
CARD_RISKS = {"high": ("danger", "High risk"), "medium": ("warning", "Medium risk")}
CARD_RISKS["low"] = ("success", "Low risk")
CARD_STATUSES = {
    "approved": ("success", "Approved"),
    "in_review": ("warning", "In review"),
    "draft": ("info", "Draft"),
    "archived": ("secondary", "Archived"),
}


def _card_badge(colour: str, label: str, testid: str):
    text_class = " text-dark" if colour == "warning" else ""
    return format_html(
        '<span class="badge text-bg-{}{}" data-testid="{}">{}</span>',
        colour,
        text_class,
        testid,
        label,
    )


@register.simple_tag
def card_risk_badge(risk: str):
    colour, label = CARD_RISKS.get(risk or "", ("secondary", "Risk not rated"))
    return _card_badge(colour, label, "card-risk")


@register.simple_tag
def card_status_badge(status: str):
    colour, label = CARD_STATUSES.get(status or "", ("secondary", status or "No card"))
    return _card_badge(colour, label, "card-status")


# Tags MLflow writes itself: shown after the ones people and pipelines set.
SYSTEM_TAG_PREFIXES = ("mlflow.", "databricks.")


@register.filter
def tag_chips(tags, limit: int = 3):
    """A version's tags, most relevant first: people's and pipelines' tags by key, then
    MLflow's own. Returns (shown [(key, value)], rest [(key, value)]) for "+N"."""
    if not isinstance(tags, dict):
        return [], []
    ordered = sorted(
        ((str(k), "" if v is None else str(v)) for k, v in tags.items()),
        key=lambda kv: (kv[0].startswith(SYSTEM_TAG_PREFIXES), kv[0].lower()),
    )
    return ordered[:limit], ordered[limit:]


@register.filter
def run_short(version) -> str:
    """A version's source run as people know it: its run name, else the run id's first 8."""
    run_tags = version.run_tags if isinstance(version.run_tags, dict) else {}
    name = str(run_tags.get("mlflow.runName") or "")
    return name or (version.run_id or "")[:8]


@register.filter
def differing(rows) -> int:
    """How many compare rows differ between the versions."""
    return sum(1 for row in rows or () if getattr(row, "differs", False))
