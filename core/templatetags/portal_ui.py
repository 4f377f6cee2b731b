"""Shared UI pieces, so every page shows times and statuses the same way."""

from datetime import UTC

from django import template
from django.utils import timezone
from django.utils.html import avoid_wrapping, format_html
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince

from core.roles import user_has_role

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


# Largest first, for one-unit times; a month and a year counted in days, like timesince.
UNITS = [
    ("year", 365 * 86400),
    ("month", 30 * 86400),
    ("week", 7 * 86400),
    ("day", 86400),
    ("hour", 3600),
    ("minute", 60),
]


def _one_unit(seconds: float) -> str:
    """The nearest whole number of the largest unit that fits: 2 h 59 min is "3 hours"."""
    for index, (name, size) in enumerate(UNITS):
        if seconds < size:
            continue
        count = int(seconds / size + 0.5)
        if index and count * size >= UNITS[index - 1][1]:  # 59.7 minutes: "1 hour"
            name, size = UNITS[index - 1]
            count = int(seconds / size + 0.5)
        return avoid_wrapping(f"{count} {name}{'' if count == 1 else 's'}")
    return avoid_wrapping("1 minute")


def relative_time(value, *, now=None, depth: int = 2) -> str:
    """ "just now", "3 hours ago", "in 2 days": the one humanizer of the portal's pages.

    ``depth`` 2 adds a second, exact unit ("2 hours, 59 minutes"); 1 rounds to one unit."""
    now = now or timezone.now()
    seconds = abs((now - value).total_seconds())
    past = value <= now
    if seconds < 60:
        return "just now" if past else "in less than a minute"
    if depth == 1:
        text = _one_unit(seconds)
    else:
        text = timesince(value, now, depth=depth) if past else timesince(now, value, depth=depth)
    return f"{text} ago" if past else f"in {text}"


def time_tag(value, *, depth: int = 2):
    """A relative time with the exact UTC time on hover, or "never"."""
    if not value:
        return mark_safe('<span class="text-body-secondary">never</span>')
    exact = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.isoformat(),
        exact,
        relative_time(value, depth=depth),
    )


@register.filter
def when(value):
    """Relative time ("2 hours, 59 minutes ago") with the exact UTC time on hover."""
    return time_tag(value, depth=2)


@register.filter
def when_short(value):
    """Like ``when`` with one rounded unit ("3 hours ago"), for narrow table columns."""
    return time_tag(value, depth=1)


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
