"""Badges and numbers of the operations pages, in the portal's one colour meaning
(core.templatetags.portal_ui.STATUS_COLOURS: pending amber, good green, bad red, running blue,
off grey)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from core.templatetags.portal_ui import status_badge

from ..models import Disposition, EpisodeOutcome, EpisodeState

register = template.Library()

# Open states: waiting for a person amber, a machine at work blue.
STATE_STATUS = {
    EpisodeState.PROPOSED: "pending",
    EpisodeState.DEFERRED: "pending",
    EpisodeState.REQUESTED: "running",
    EpisodeState.RUNNING: "running",
    EpisodeState.EVALUATING: "running",
    EpisodeState.RELEASING: "running",
    EpisodeState.IN_QA: "pending",
    EpisodeState.IN_PROD: "pending",
}
OUTCOME_STATUS = {
    EpisodeOutcome.REACHED_PROD: "succeeded",
    EpisodeOutcome.SCORED: "succeeded",
    EpisodeOutcome.HELD: "skipped",
    EpisodeOutcome.RUN_FAILED: "failed",
    EpisodeOutcome.NO_VERSION: "failed",
    EpisodeOutcome.REJECTED: "rejected",
    EpisodeOutcome.REQUEST_FAILED: "failed",
    EpisodeOutcome.DECLINED: "canceled",
    EpisodeOutcome.EXPIRED: "canceled",
    EpisodeOutcome.DRY_RUN: "skipped",
    EpisodeOutcome.CANCELED: "canceled",
}
DISPOSITION_STATUS = {
    Disposition.PENDING: "pending",
    Disposition.UNMATCHED: "pending",
    Disposition.STARTED: "succeeded",
    Disposition.PROPOSED: "pending",
    Disposition.JOINED: "succeeded",
    Disposition.SUPPRESSED: "skipped",
    Disposition.DEFERRED: "pending",
    Disposition.DRY_RUN: "skipped",
    Disposition.IGNORED: "skipped",
    Disposition.RESOLVES: "skipped",
}


def episode_status(episode) -> tuple[str, str]:
    """(status key for the colour, label) of an episode: its state while open, else its outcome."""
    if episode.state == EpisodeState.CLOSED:
        outcome = episode.outcome or ""
        label = episode.get_outcome_display() if outcome else "Closed"
        return OUTCOME_STATUS.get(outcome, "unknown"), label
    return STATE_STATUS.get(episode.state, "unknown"), episode.get_state_display()


@register.simple_tag
def episode_badge(episode):
    key, label = episode_status(episode)
    return status_badge(key, label)


@register.simple_tag
def stalled_badge(episode):
    if not episode.stalled_reason:
        return ""
    return format_html(
        '<span class="badge bg-danger-subtle text-danger-emphasis border border-danger-subtle '
        'stalled-badge" title="{}"><i class="bi bi-exclamation-octagon me-1" aria-hidden="true">'
        "</i>stalled</span>",
        episode.stalled_reason,
    )


@register.simple_tag
def disposition_badge(signal):
    key = DISPOSITION_STATUS.get(signal.disposition, "unknown")
    return status_badge(key, signal.get_disposition_display() or "—")


def duration_text(seconds) -> str:
    """ "3 min", "2 h 5 min", "1 d 4 h"; "—" when not reached."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


register.filter("duration_text", duration_text)


@register.filter
def number(value, digits: int = 4):
    """A metric value with up to ``digits`` significant digits; "—" for none."""
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):.{int(digits)}g}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def signed(value, digits: int = 4):
    if value is None or value == "":
        return "—"
    return f"{float(value):+.{int(digits)}g}"


@register.filter
def signed_percent(fraction):
    """0.017 -> "+1.70%"."""
    if fraction is None or fraction == "":
        return "—"
    return f"{float(fraction):+.2%}"


@register.filter
def percent(fraction):
    if fraction is None or fraction == "":
        return "—"
    return f"{float(fraction):.2%}"


@register.filter
def bar_width(count, maximum) -> int:
    """A bar's width in percent of the largest count (0 when there is none)."""
    try:
        return round(100 * int(count) / int(maximum)) if int(maximum) else 0
    except (TypeError, ValueError, ZeroDivisionError):
        return 0
