"""The history page's timeline as drawing instructions for an inline SVG (no JS library).

Positions are percentages of the chart's width, so the SVG scales to any screen while its
text keeps its size. A window the syncs could not see into (a span's ``start_after`` ..
``start``, ``end_after`` .. ``end``) is drawn hatched, its title saying "between A and B".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from registry.timeline import Lane, Span

LANE_HEIGHT = 44
BAR_OFFSET = 16
BAR_HEIGHT = 22
AXIS_HEIGHT = 28
TICKS = 5
# Fewer than this share of the width hides a span's label (it would not fit).
LABEL_MIN_PERCENT = 4.0
# A hatched window narrower than this (2 px at 1366) is not drawn: the span's title says it.
WINDOW_MIN_PERCENT = 0.15


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str
    title: str
    url: str
    current: bool
    uncertain: bool = False  # a hatched window, not the span's sure part
    show_label: bool = True


@dataclass
class DrawnLane:
    key: str
    title: str
    kind: str
    y: int
    bars: list[Bar] = field(default_factory=list)

    @property
    def bar_y(self) -> int:
        return self.y + BAR_OFFSET

    @property
    def label_y(self) -> int:
        return self.y + 11

    @property
    def text_y(self) -> int:
        return self.y + BAR_OFFSET + 15


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    anchor: str


@dataclass
class Chart:
    start: dt.datetime
    end: dt.datetime
    lanes: list[DrawnLane]
    ticks: list[Tick]
    height: int

    @property
    def axis_y(self) -> int:
        return self.height - AXIS_HEIGHT

    @property
    def empty(self) -> bool:
        return not any(lane.bars for lane in self.lanes)


def chart_window(lanes: list[Lane], now: dt.datetime, days: int | None) -> dt.datetime:
    """The chart's first moment: ``days`` before now, or (all) the earliest known moment."""
    if days is not None:
        return now - dt.timedelta(days=days)
    moments = [
        moment
        for lane in lanes
        for span in lane.spans
        for moment in (span.start_after, span.start, span.end_after, span.end)
        if moment is not None
    ]
    earliest = min(moments, default=now - dt.timedelta(days=30))
    return min(earliest, now - dt.timedelta(days=1))


def _ticks(start: dt.datetime, end: dt.datetime) -> list[Tick]:
    total = (end - start).total_seconds()
    fmt = "%Y-%m-%d" if total > 2 * 86400 else "%m-%d %H:%M"
    ticks = []
    for index in range(TICKS + 1):
        share = index / TICKS
        moment = start + dt.timedelta(seconds=total * share)
        anchor = "start" if index == 0 else "end" if index == TICKS else "middle"
        ticks.append(Tick(round(share * 100, 3), moment.strftime(fmt), anchor))
    return ticks


class _Scale:
    def __init__(self, start: dt.datetime, end: dt.datetime):
        self.start, self.end = start, end
        self.total = max((end - start).total_seconds(), 1.0)

    def x(self, moment: dt.datetime | None) -> float:
        if moment is None or moment <= self.start:
            return 0.0
        if moment >= self.end:
            return 100.0
        return (moment - self.start).total_seconds() / self.total * 100


def _span_bars(span: Span, scale: _Scale) -> list[Bar]:
    """The span's sure part, and its hatched windows, within the chart; [] if outside it."""
    sure_from = span.start if span.start is not None else scale.start
    sure_to = span.end_after if span.end_uncertain else span.end
    first = span.start_after if span.start_uncertain else sure_from
    last = span.end or scale.end
    if last <= scale.start or (first is not None and first >= scale.end):
        return []
    bars = []
    if span.start_uncertain:
        x0, x1 = scale.x(span.start_after), scale.x(span.start)
        if x1 - x0 >= WINDOW_MIN_PERCENT:
            bars.append(Bar(x0, x1 - x0, "", span.title, span.url, False, True, False))
    x0, x1 = scale.x(sure_from), scale.x(sure_to or scale.end)
    bars.append(
        Bar(
            round(x0, 3),
            round(max(x1 - x0, 0.3), 3),
            span.label,
            span.title,
            span.url,
            span.is_current,
            span.start is None,  # before the portal looked: drawn lighter
            x1 - x0 >= LABEL_MIN_PERCENT,
        )
    )
    if span.end_uncertain:
        x0, x1 = scale.x(span.end_after), scale.x(span.end)
        if x1 - x0 >= WINDOW_MIN_PERCENT:
            bars.append(Bar(x0, x1 - x0, "", span.title, span.url, False, True, False))
    return bars


def chart_build(lanes: list[Lane], now: dt.datetime, days: int | None) -> Chart:
    start = chart_window(lanes, now, days)
    scale = _Scale(start, now)
    drawn = []
    for index, lane in enumerate(lanes):
        bars = [bar for span in lane.spans for bar in _span_bars(span, scale)]
        drawn.append(DrawnLane(lane.key, lane.title, lane.kind, index * LANE_HEIGHT, bars))
    height = len(drawn) * LANE_HEIGHT + AXIS_HEIGHT
    return Chart(start, now, drawn, _ticks(start, now), height)


def _bar_markup(bar: Bar, lane: DrawnLane) -> str:
    classes = "span"
    if bar.uncertain:
        classes += " span-window" if not bar.label else " span-uncertain"
    if bar.current:
        classes += " span-current"
    text_class = "span-label span-label-light" if bar.uncertain else "span-label"
    label = (
        f'<text x="{bar.x:.3f}%" dx="4" y="{lane.text_y}" class="{text_class}" '
        f'aria-hidden="true">{escape(bar.label)}</text>'
        if bar.show_label
        else ""
    )
    return (
        f'<a href="{escape(bar.url or "#")}" class="span-link">'
        f'<rect x="{bar.x:.3f}%" y="{lane.bar_y}" width="{bar.width:.3f}%" '
        f'height="{BAR_HEIGHT}" rx="3" class="{classes}" data-testid="timeline-span">'
        f"<title>{escape(bar.title)}</title></rect>{label}</a>"
    )


def chart_svg(chart: Chart, *, labelledby: str, description: str) -> SafeString:
    """The chart as inline SVG markup (built here, not in a template loop: a long history
    draws thousands of bars). Every text is escaped."""
    parts = [
        f'<svg class="history-timeline" width="100%" height="{chart.height}" role="img" '
        f'aria-labelledby="{escape(labelledby)}" data-testid="timeline">'
        f'<desc id="timeline-desc">{escape(description)}</desc>'
        '<defs><pattern id="history-hatch" patternUnits="userSpaceOnUse" width="6" height="6" '
        'patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"></rect>'
        '<rect width="2.5" height="6" class="hatch-line"></rect></pattern></defs>'
    ]
    for lane in chart.lanes:
        parts.append(
            f'<g class="lane lane-{escape(lane.kind)}" data-lane="{escape(lane.key)}" '
            f'data-testid="timeline-lane"><text x="0" y="{lane.label_y}" class="lane-title">'
            f"{escape(lane.title)}</text>"
            f'<rect x="0" y="{lane.bar_y}" width="100%" height="{BAR_HEIGHT}" class="lane-bg">'
            "</rect>"
        )
        parts.extend(_bar_markup(bar, lane) for bar in lane.bars)
        parts.append("</g>")
    y = chart.axis_y
    parts.append(f'<g class="axis" aria-hidden="true"><line x1="0" x2="100%" y1="{y}" y2="{y}">')
    parts.append("</line>")
    for index, tick in enumerate(chart.ticks):
        # Narrow screens show the first and last dates only (tick-inner is hidden there).
        inner = ' class="tick-inner"' if 0 < index < len(chart.ticks) - 1 else ""
        parts.append(
            f'<line x1="{tick.x:.3f}%" x2="{tick.x:.3f}%" y1="{y}" y2="{y + 5}"></line>'
            f'<text x="{tick.x:.3f}%" y="{y + 18}" text-anchor="{tick.anchor}"{inner}>'
            f"{escape(tick.label)}</text>"
        )
    parts.append("</g></svg>")
    return mark_safe("".join(parts))  # noqa: S308 - built from escaped parts above
