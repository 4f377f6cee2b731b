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
