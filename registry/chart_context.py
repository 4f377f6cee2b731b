"""What the "Metric across versions" chart needs, for the model page's section, its own page
and the API alike: the series (one query), the marks (aliases from the mirror, PROD from the
REGISTRY_VERSION_MARKERS hook, one call) and the SVG geometry."""

from __future__ import annotations

from dataclasses import dataclass

from . import selectors
from .charts import Chart, metric_chart
from .models import CatalogModel
from .sections import version_markers
from .selectors.metrics import MetricSeries, MetricSeriesError, metric_series
from .templatetags.registry_ui import version_url


@dataclass(frozen=True)
class MetricChartView:
    series: MetricSeries
    chart: Chart | None
    markers: dict  # version pk -> [Marker]; {} when no provider is configured
    markers_configured: bool
    error: str = ""  # the metric asked for is unknown (the default one is shown instead)

    @property
    def metric(self) -> str | None:
        return self.series.metric


def _key_metric(catalog_model: CatalogModel, registrations: list | None) -> str | None:
    """The key metric's tag (the most common metric otherwise: metric_series counts them)."""
    if registrations is None:
        registrations = selectors.catalog_model_registrations(catalog_model=catalog_model)
    return selectors.key_metric_name(registrations=registrations, versions=[])


def metric_series_for(
    catalog_model: CatalogModel, metric: str = "", *, registrations: list | None = None
) -> MetricSeries:
    """The series of ``metric`` (default: the key metric); raises MetricSeriesError.
    ``registrations``: the live registered models, when the caller has them already."""
    return metric_series(
        catalog_model=catalog_model,
        metric=metric,
        default_metric=_key_metric(catalog_model, registrations),
    )


def series_markers(catalog_model: CatalogModel, series: MetricSeries) -> dict | None:
    return version_markers(catalog_model, [p.version for p in series.points])


def metric_chart_view(
    catalog_model: CatalogModel,
    metric: str = "",
    *,
    tolerate_unknown: bool = False,
    registrations: list | None = None,
) -> MetricChartView:
    """The chart of ``metric``. An unknown metric raises MetricSeriesError, unless
    ``tolerate_unknown`` (the model page): then the default metric is shown with the message."""
    error = ""
    try:
        series = metric_series_for(catalog_model, metric, registrations=registrations)
    except MetricSeriesError as exc:
        if not tolerate_unknown:
            raise
        error = str(exc)
        series = metric_series_for(catalog_model, registrations=registrations)
    markers = series_markers(catalog_model, series)
    sources = {p.version.registered_model.source.name for p in series.points}
    names = {p.version.registered_model_id for p in series.points}

    def label_for(version) -> str:
        rm = version.registered_model
        if len(names) > len(sources):
            return f"{rm.source.name}:{rm.name} v{version.version}"
        return f"{rm.source.name} v{version.version}" if len(sources) > 1 else f"v{version.version}"

    chart = metric_chart(series, markers=markers or {}, url_for=version_url, label_for=label_for)
    return MetricChartView(series, chart, markers or {}, markers is not None, error)
