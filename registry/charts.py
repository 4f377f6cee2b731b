"""Server-rendered SVG geometry of the "Metric across versions" chart (no JS chart library).

The template draws what ``metric_chart`` computes: points placed by version order (oldest
left), a line through those with a value, y ticks at round numbers, and the marks (aliases,
PROD) of each version. Points get thinner as versions grow, and x labels sparser, so 500
versions still read as a line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .selectors.metrics import MetricSeries, SeriesPoint

WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 20, 34, 44
MAX_X_LABELS = 12


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float | None  # None: this version has no value (drawn as a tick on the axis)
    point: SeriesPoint
    url: str
    label: str  # "v3", or "central v3" when several registries hold the model
    markers: list = field(default_factory=list)
    is_best: bool = False

    @property
    def version(self):
        return self.point.version

    @property
    def value(self):
        return self.point.value

    @property
    def aliases(self) -> list[str]:
        return self.point.aliases

    @property
    def alias_labels(self) -> list[tuple[str, int]]:
        """(alias, vertical offset) of each alias label, stacked above the point."""
        return [(alias, -(8 + 13 * i)) for i, alias in enumerate(self.aliases)]

    @property
    def anchor(self) -> str:
        """Where its labels hang from: near an edge they grow inwards, not off the chart."""
        if self.x > WIDTH - RIGHT - 50:
            return "end"
        return "start" if self.x < LEFT + 30 else "middle"

    @property
    def prod_now(self) -> bool:
        return any(m.tone == "danger" for m in self.markers)

    @property
    def served_prod(self) -> bool:
        return bool(self.markers)

    @property
    def title(self) -> str:
        value = "no value" if self.value is None else f"{self.value:.6g}"
        extra = [f"@{a}" for a in self.aliases] + [m.text for m in self.markers]
        return f"{self.label}: {value}" + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: int
    top: int
    right_edge: int
    bottom_edge: int
    points: list[ChartPoint]
    path: str
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    radius: float
    valued: int  # points with a value

    @property
    def marked(self) -> list[ChartPoint]:
        """Points with an alias or a PROD mark, drawn last so they sit on top."""
        return [p for p in self.points if p.aliases or p.markers]


def _nice_step(span: float, count: int = 5) -> float:
    raw = span / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _tick_text(value: float, step: float) -> str:
    """A tick with as many decimals as the step needs (0.05 -> 2, 2.5 -> 1, 10 -> 0)."""
    decimals = 0
    while decimals < 8 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-9:
        decimals += 1
    text = f"{value:.{decimals}f}"
    return "0" if text.strip("-0.") == "" else text


def _y_range(values: list[float]) -> tuple[float, float, float]:
    low, high = min(values), max(values)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        low, high = low - pad, high + pad
    step = _nice_step(high - low)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def metric_chart(series: MetricSeries, *, markers: dict, url_for, label_for) -> Chart | None:
    """The chart of ``series``; None when no version has a value of the metric."""
    valued = [p.value for p in series.points if p.value is not None]
    if not valued:
        return None
    low, high, step = _y_range(valued)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = len(series.points)
    best = (min(valued) if series.lower_is_better else max(valued)) if len(valued) > 1 else None

    def y_of(value: float) -> float:
        return round(TOP + plot_h * (1 - (value - low) / (high - low)), 2)

    points = []
    for i, p in enumerate(series.points):
        x = round(LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2), 2)
        points.append(
            ChartPoint(
                x=x,
                y=None if p.value is None else y_of(p.value),
                point=p,
                url=url_for(p.version),
                label=label_for(p.version),
                markers=list(markers.get(p.version.pk, [])),
                is_best=best is not None and p.value == best,
            )
        )
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{p.x},{p.y}"
        for i, p in enumerate(q for q in points if q.y is not None)
    )
    ticks = []
    value = low
    while value <= high + step / 2:
        ticks.append((y_of(value), _tick_text(value, step)))
        value += step
    every = max(1, math.ceil(n / MAX_X_LABELS))
    x_ticks = [(p.x, p.label) for i, p in enumerate(points) if i % every == 0 or i == n - 1]
    if len(x_ticks) > 1 and x_ticks[-1][0] - x_ticks[-2][0] < plot_w / MAX_X_LABELS / 1.5:
        del x_ticks[-2]  # the last label would sit on the one before it
    radius = 4.5 if n <= 40 else 3 if n <= 120 else 2 if n <= 300 else 1.5
    return Chart(
        WIDTH,
        HEIGHT,
        LEFT,
        TOP,
        WIDTH - RIGHT,
        HEIGHT - BOTTOM,
        points,
        path,
        ticks,
        x_ticks,
        radius,
        len(valued),
    )
