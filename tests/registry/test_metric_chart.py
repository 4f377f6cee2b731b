"""One metric across every version of a model: the model page's chart, its own page, the API,
the alias marks and the PROD marks pipelines add through REGISTRY_VERSION_MARKERS."""

import datetime as dt
import itertools

import pytest
from bs4 import BeautifulSoup
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.roles import Role
from pipelines.models import DeploymentRecord
from pipelines.sections import version_markers
from registry.charts import _tick_text, _y_range
from registry.models import ModelVersion
from registry.selectors import metric_series
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db

NAME = "fraud-detector"
PAGE = f"/registry/models/{NAME}/"
METRICS = f"/registry/models/{NAME}/metrics/"
API = f"/api/v1/registry/models/{NAME}/metric-series"
_ids = itertools.count(900_000)


def _soup(response):
    return BeautifulSoup(response.content, "html.parser")


@pytest.fixture
def client_ds(role_client):
    return role_client(Role.DATA_SCIENTIST)


@pytest.fixture
def fraud():
    """Five versions; @champion on v4, @challenger on v5; v3 lacks rmse; key metric auc."""
    source = RegistrySourceFactory(name="central", is_central=True, ui_url="https://mlflow.example")
    rm = RegisteredModelFactory(
        name=NAME,
        source=source,
        aliases={"champion": 4, "challenger": 5},
        tags={"key_metric": "auc"},
    )
    now = timezone.now()
    versions = {}
    for number, auc, rmse in [
        (1, 0.80, 0.50),
        (2, 0.84, 0.46),
        (3, 0.83, None),
        (4, 0.91, 0.40),
        (5, 0.89, 0.42),
    ]:
        metrics = {"auc": auc} if rmse is None else {"auc": auc, "rmse": rmse}
        versions[number] = ModelVersionFactory(
            registered_model=rm,
            version=number,
            metrics=metrics,
            created_upstream_at=now - dt.timedelta(days=10 - number),
        )
    return versions


def _record(version, environment, target, days_ago):
    """A deployment history row (its run and stage are not needed by the chart)."""
    started = timezone.now() - dt.timedelta(days=days_ago)
    return DeploymentRecord.objects.create(
        catalog_model=version.registered_model.catalog_model,
        environment=environment,
        target=target,
        run_id=next(_ids),
        stage_id=next(_ids),
        model_version=version,
        version_label=f"v{version.version}",
        started_at=started,
        observed_at=started,
    )


@pytest.fixture
def deployed(fraud):
    """v1 then v4 on PROD AKS (v4 now); v5 now on the PROD Databricks job; v2 only in QA."""
    _record(fraud[1], "PROD", "aks", 8)
    _record(fraud[4], "PROD", "aks", 4)
    _record(fraud[5], "PROD", "databricks-job", 1)
    _record(fraud[2], "QA", "aks", 7)
    return fraud


def _points(soup):
    return {a["data-version"]: a for a in soup.select("[data-testid=metric-chart] a")}


def test_the_model_page_charts_the_key_metric_with_aliases_marked(client_ds, fraud):
    response = client_ds.get(PAGE)
    assert response.status_code == 200
    soup = _soup(response)
    section = soup.select_one("[data-testid=section-metric-across-versions]")
    assert section.h2.get_text(strip=True) == "Metric across versions"
    select = section.select_one("select[name=metric]")
    assert [o["value"] for o in select.select("option")] == ["auc", "rmse"]
    assert select.select_one("option[selected]")["value"] == "auc"  # the key_metric tag
    assert "higher is better" in section.select_one("[data-testid=metric-direction]").get_text()
    svg = section.select_one("svg[data-testid=metric-chart]")
    assert svg["role"] == "img" and "auc across the versions" in svg.title.get_text()
    points = _points(soup)
    assert list(points) == ["1", "2", "3", "4", "5"]  # oldest left
    assert points["4"]["href"] == f"/registry/sources/central/models/{NAME}/versions/4/"
    assert points["4"]["data-aliases"] == "champion"
    assert points["4"].title.get_text() == "v4: 0.91 (@champion)"
    assert sorted(t.get_text() for t in svg.select("[data-testid=chart-alias]")) == [
        "@challenger",
        "@champion",
    ]
    # the best auc is marked; the y axis has round ticks
    assert "chart-best" in points["4"].select("circle")[-1]["class"]
    ticks = [t.get_text() for t in svg.select(".chart-grid .chart-tick")][:3]
    assert ticks == ["0.800", "0.825", "0.850"]  # 0.80 to 0.91: steps of 0.025
    # the numbers beneath, the same versions
    table = section.select_one("[data-testid=metric-table]")
    rows = table.select("tbody tr")
    assert [r["data-point-version"] for r in rows] == ["1", "2", "3", "4", "5"]
    cells = [td.get_text(" ", strip=True) for td in rows[3].select("td")]
    assert cells[0] == "0.91 (best)" and cells[2] == "@champion"
    assert rows[3].select_one("time")["title"].endswith("UTC")
    link = section.select_one("[data-testid=metric-page-link]")["href"]
    assert link == f"{METRICS}?metric=auc"


def test_another_metric_and_lower_is_better(client_ds, fraud):
    soup = _soup(client_ds.get(f"{PAGE}?metric=rmse"))
    section = soup.select_one("[data-testid=section-metric-across-versions]")
    assert section.select_one("option[selected]")["value"] == "rmse"
    assert "lower is better" in section.select_one("[data-testid=metric-direction]").get_text()
    points = _points(soup)
    assert "3" not in points  # v3 logged no rmse: no point, an honest "—" in the table
    rows = {
        r["data-point-version"]: r
        for r in section.select("[data-testid=metric-table] tr[data-point-version]")
    }
    assert rows["3"].td.get_text(strip=True) == "—"
    assert "chart-best" in points["4"].select("circle")[-1]["class"]  # 0.40, the lowest
    assert (
        section.select_one("[data-testid=chart-summary]")
        .get_text(" ", strip=True)
        .startswith("rmse of 4 of 5 versions")
    )


def test_an_unknown_metric_says_which_are_known(client_ds, fraud):
    page = client_ds.get(f"{PAGE}?metric=f1")
    assert page.status_code == 200  # the model page still shows, with the default metric
    error = _soup(page).select_one("[data-testid=metric-error]").get_text(strip=True)
    assert error == f"{NAME} has no metric “f1”. Known metrics: auc, rmse."
    standalone = client_ds.get(f"{METRICS}?metric=f1")
    assert standalone.status_code == 400
    assert "Known metrics: auc, rmse." in standalone.content.decode()


def test_the_standalone_page(client_ds, deployed):
    response = client_ds.get(f"{METRICS}?metric=rmse")
    assert response.status_code == 200
    soup = _soup(response)
    assert soup.h1.get_text(" ", strip=True).startswith("rmse across the versions of")
    assert soup.select_one("form[data-testid=metric-form]")["action"] == METRICS
    assert soup.select_one("[data-testid=freshness]") is not None
    assert len(_points(soup)) == 4


def test_prod_deployments_are_marked(client_ds, deployed):
    soup = _soup(client_ds.get(PAGE))
    points = _points(soup)
    assert points["4"]["data-prod"] == "now" and points["5"]["data-prod"] == "now"
    assert points["1"]["data-prod"] == "before"
    assert "data-prod" not in points["2"].attrs  # QA only
    assert "PROD now · AKS" in points["4"].title.get_text()
    assert len(soup.select("[data-testid=chart-prod]")) == 2
    rows = {
        r["data-point-version"]: r
        for r in soup.select("[data-testid=metric-table] tr[data-point-version]")
    }
    marks = {n: [b.get_text() for b in r.select("td")[3].select(".badge")] for n, r in rows.items()}
    assert marks == {
        "1": ["served in PROD"],
        "2": [],
        "3": [],
        "4": ["PROD now · AKS"],
        "5": ["PROD now · Databricks"],
    }
    badge = rows["1"].select("td")[3].select_one(".badge")
    assert badge["class"][1] == "text-bg-secondary" and "first from" in badge["title"]
    assert rows["4"].select("td")[3].select_one(".badge")["class"][1] == "text-bg-danger"


def test_without_a_marker_provider_the_page_shows_no_prod_marks(client_ds, deployed, settings):
    settings.REGISTRY_VERSION_MARKERS = []
    soup = _soup(client_ds.get(PAGE))
    assert not soup.select("[data-testid=metric-chart] a[data-prod]")
    summary = soup.select_one("[data-testid=chart-summary]").get_text(" ", strip=True)
    assert "in PROD now" not in summary


def test_the_markers_hook_reads_the_history_in_one_query(deployed):
    catalog_model = deployed[1].registered_model.catalog_model
    versions = list(ModelVersion.objects.filter(registered_model__catalog_model=catalog_model))
    with CaptureQueriesContext(connection) as queries:
        markers = version_markers(catalog_model, versions)
    assert len(queries) == 1
    assert [m.text for m in markers[deployed[4].pk]] == ["PROD now · AKS"]
    assert markers[deployed[1].pk][0].title.startswith("Served in PROD 1 time, first from")


def test_a_model_without_metrics_or_versions_says_what_will_appear(client_ds):
    rm = RegisteredModelFactory(name="no-metrics")
    ModelVersionFactory(registered_model=rm, version=1, metrics={})
    soup = _soup(client_ds.get("/registry/models/no-metrics/"))
    empty = soup.select_one("[data-testid=metric-chart-empty]").get_text(" ", strip=True)
    assert "No version of this model has metrics in the mirror yet" in empty
    CatalogModelFactory(name="rules-only", kind="rule_based")
    soup = _soup(client_ds.get("/registry/models/rules-only/"))
    assert soup.select_one("[data-testid=section-metric-across-versions]") is None


def test_deleted_versions_are_left_out(client_ds, fraud):
    ModelVersion.objects.filter(pk=fraud[2].pk).update(deleted_upstream_at=timezone.now())
    assert "2" not in _points(_soup(client_ds.get(PAGE)))


# --- API -------------------------------------------------------------------------------------


def test_the_api_gives_the_series_with_marks(role_client, deployed):
    api = role_client(Role.APPROVER)
    response = api.get(f"{API}?metric=rmse")
    assert response.status_code == 200
    data = response.json()
    assert data["catalog_model"] == NAME and data["metric"] == "rmse"
    assert data["lower_is_better"] is True and data["metrics"] == ["auc", "rmse"]
    assert [p["version"] for p in data["points"]] == [1, 2, 3, 4, 5]
    v3, v4 = data["points"][2], data["points"][3]
    assert v3["value"] is None
    assert v4 == {
        "source": "central",
        "model": NAME,
        "version": 4,
        "url": f"/registry/sources/central/models/{NAME}/versions/4/",
        "created_upstream_at": v4["created_upstream_at"],
        "value": 0.4,
        "aliases": ["champion"],
        "markers": [
            {"text": "PROD now · AKS", "tone": "danger", "title": v4["markers"][0]["title"]}
        ],
    }
    assert api.get(API).json()["metric"] == "auc"  # default: the key metric


def test_the_api_refuses_an_unknown_metric_with_the_known_ones(role_client, fraud):
    api = role_client(Role.APPROVER)
    response = api.get(f"{API}?metric=f1")
    assert response.status_code == 400
    assert response.json()["detail"] == f"{NAME} has no metric “f1”. Known metrics: auc, rmse."
    assert api.get("/api/v1/registry/models/nope/metric-series").status_code == 404


def test_the_api_of_a_model_without_metrics(role_client):
    RegisteredModelFactory(name="bare")
    data = role_client(Role.APPROVER).get("/api/v1/registry/models/bare/metric-series").json()
    assert data["metric"] is None and data["points"] == [] and data["metrics"] == []


def test_signed_out_callers_are_refused(client, fraud):
    assert client.get(API).status_code in (401, 403)
    assert client.get(METRICS).status_code == 302


# --- 500 versions ----------------------------------------------------------------------------


def test_five_hundred_versions_in_one_query_with_thin_points(
    client_ds, django_assert_max_num_queries
):
    rm = RegisteredModelFactory(name="big", aliases={"champion": 480})
    start = timezone.now() - dt.timedelta(days=600)
    ModelVersion.objects.bulk_create(
        ModelVersion(
            registered_model=rm,
            version=n,
            status="READY",
            metrics={"auc": 0.7 + (n % 37) / 200, "rmse": 0.5 - (n % 11) / 100},
            created_upstream_at=start + dt.timedelta(days=n),
        )
        for n in range(1, 501)
    )
    catalog_model = rm.catalog_model
    with django_assert_max_num_queries(1):
        series = metric_series(catalog_model=catalog_model, metric="auc")
        assert len(series.points) == 500
    client_ds.get("/registry/models/big/")  # warm the session and role caches
    # the whole model page (see test_pages' bound): the chart adds one query whatever the count
    with django_assert_max_num_queries(27):
        response = client_ds.get("/registry/models/big/")
    soup = _soup(response)
    svg = soup.select_one("[data-testid=metric-chart]")
    assert svg["data-points"] == "500"
    circles = svg.select("circle.chart-point")
    assert len(circles) == 500 and circles[0]["r"] == "1.5"
    assert len(svg.select(".chart-grid text.chart-tick")) < 30  # sparse x labels
    assert _points(soup)["480"]["data-aliases"] == "champion"


# --- the chart's arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.81, 0.912], (0.8, 0.925, 0.025)), ([3.0, 3.0], (2.6, 3.4, 0.2)), ([0, 120], (0, 125, 25))],
)
def test_y_range_is_round(values, expected):
    low, high, step = _y_range(values)
    assert (round(low, 6), round(high, 6), step) == expected


def test_tick_text():
    assert _tick_text(0.8, 0.05) == "0.80"
    assert _tick_text(2.5, 0.25) == "2.50"
    assert _tick_text(-0.0, 0.5) == "0"
    assert _tick_text(120, 20) == "120"
