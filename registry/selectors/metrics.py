"""One metric across every version of a catalog entry (the "Metric across versions" chart).

One query reads every live version's number, registered model, creation time, aliases and
metrics; the known metrics, the series and the alias marks all come from that one read, so
a model with 500 versions costs what one with 5 does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import F

from core.errors import PortalError

from ..models import LIVE, CatalogModel, ModelVersion, RegisteredModel
from .compare import lower_is_better


class MetricSeriesError(PortalError, ValueError):
    """An unknown metric was asked for; the message lists the known ones."""

    code = "bad_request"
    http_status = 400


@dataclass
class SeriesPoint:
    version: ModelVersion
    value: float | None  # None: this version has no (finite) value of the metric
    aliases: list[str]


@dataclass(frozen=True)
class MetricSeries:
    catalog_model: CatalogModel
    metric: str | None  # None: no version has any metric
    metrics: list[str]  # every metric some version has, by name
    lower_is_better: bool
    points: list[SeriesPoint]  # oldest version first

    @property
    def with_values(self) -> list[SeriesPoint]:
        return [p for p in self.points if p.value is not None]

    @property
    def latest(self) -> ModelVersion | None:
        """The newest live version (the first of the versions table)."""
        return self.points[-1].version if self.points else None


def _finite(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) or math.isinf(value) else float(value)


def metric_series(
    *, catalog_model: CatalogModel, metric: str = "", default_metric: str | None = None
) -> MetricSeries:
    """The values of ``metric`` (else ``default_metric``, else the most common metric) of every
    live version, oldest first. Raises MetricSeriesError for a metric no version has."""
    versions = list(
        ModelVersion.objects.filter(LIVE, registered_model__catalog_model=catalog_model)
        .filter(registered_model__deleted_upstream_at__isnull=True)
        .select_related("registered_model__source")
        .only(
            "pk",
            "version",
            "aliases",
            "metrics",
            "created_upstream_at",
            "registered_model__name",
            "registered_model__aliases",
            "registered_model__source__name",
            "registered_model__source__is_central",
        )
        # the reverse of catalog_model_versions: its first (the latest) is the last here
        .order_by(F("created_upstream_at").asc(nulls_first=True), "version", "pk")
    )
    counts: dict[str, int] = {}
    for v in versions:
        for name in v.metrics if isinstance(v.metrics, dict) else {}:
            counts[name] = counts.get(name, 0) + 1
    known = sorted(counts)
    metric = (metric or "").strip()
    if metric and metric not in counts:
        listed = ", ".join(known) if known else "none (no version has metrics in the mirror)"
        raise MetricSeriesError(
            f"{catalog_model.name} has no metric “{metric}”. Known metrics: {listed}."
        )
    if not metric:
        if default_metric in counts:
            metric = default_metric
        elif counts:
            metric = min(counts, key=lambda n: (-counts[n], n))
    points = []
    for v in versions:
        value = _finite((v.metrics or {}).get(metric)) if metric else None
        points.append(SeriesPoint(v, value, _aliases(v, v.registered_model)))
    return MetricSeries(
        catalog_model,
        metric or None,
        known,
        lower_is_better(metric) if metric else False,
        points,
    )


def _aliases(version: ModelVersion, registration: RegisteredModel) -> list[str]:
    from_model = {a for a, n in (registration.aliases or {}).items() if n == version.version}
    return sorted(from_model | set(version.aliases or []))
