"""Shared UI pieces, so every page shows times and statuses the same way."""

from datetime import UTC

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

register = template.Library()

# One colour meaning everywhere (UI.md): pending amber, good green, bad red, running blue, off grey.
STATUS_COLOURS = {
    "pending": "warning",
    "waiting": "warning",
    "queued": "warning",
    "approved": "success",
    "succeeded": "success",
    "delivered": "success",
    "ok": "success",
    "rejected": "danger",
    "failed": "danger",
    "error": "danger",
    "running": "primary",
    "inprogress": "primary",
    "canceled": "secondary",
    "cancelled": "secondary",
    "skipped": "secondary",
    "unknown": "secondary",
}


@register.filter
def has_role(user, role: str) -> bool:
    """{% if user|has_role:"admin" %}: what only that role may see on a shared page."""
    from portal.roles import user_has_role

    return user_has_role(user, role)


@register.simple_tag
def status_badge(status: str, label: str | None = None):
    key = (status or "unknown").lower().replace(" ", "").replace("_", "")
    colour = STATUS_COLOURS.get(key, "secondary")
    text_class = " text-dark" if colour == "warning" else ""
    return format_html(
        '<span class="badge text-bg-{}{} status-badge">{}</span>',
        colour,
        text_class,
        label or status,
    )


@register.filter
def when(value):
    """Relative time ("3 hours ago") with the exact UTC time on hover."""
    if not value:
        return mark_safe('<span class="text-body-secondary">never</span>')
    exact = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    now = timezone.now()
    relative = f"{timesince(value, now)} ago" if value <= now else f"in {timesince(now, value)}"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, relative
    )


@register.inclusion_tag("portal/_filter_select.html")
def filter_select(
    name: str,
    label: str,
    options,
    selected="",
    any_label: str = "Any",
    col: str = "col-6 col-md-4 col-lg-2",
    testid: str = "",
    keep_unknown: bool = False,
):
    """One select of a list page's filter bar (the same markup on every list page).

    ``options`` are ``(value, label)`` pairs or plain strings; ``keep_unknown`` keeps a value
    from the URL that is not among them (a model or team that left the list) selected."""
    pairs = [(str(o), str(o)) if isinstance(o, str) else (str(o[0]), o[1]) for o in options]
    chosen = "" if selected is None else str(selected)
    return {
        "name": name,
        "label": label,
        "options": pairs,
        "selected": chosen,
        "any_label": any_label,
        "col": col,
        "testid": testid,
        "unknown": keep_unknown and chosen and chosen not in {value for value, _ in pairs},
    }
