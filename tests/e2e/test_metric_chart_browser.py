"""A data scientist reads the "Metric across versions" chart of a model at 1366 and 390 px:
the points, the alias and PROD marks, and the table of numbers beneath."""

import datetime as dt
import itertools

import pytest
from django.utils import timezone

from core.roles import Role
from pipelines.models import DeploymentRecord
from tests.e2e.test_sign_in import _sign_in
from tests.registry.factories import (
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAME = "fraud-detector"
_ids = itertools.count(800_000)


def _model():
    central = RegistrySourceFactory(
        name="central", is_central=True, ui_url="https://mlflow.example"
    )
    rm = RegisteredModelFactory(
        name=NAME,
        source=central,
        aliases={"champion": 9, "challenger": 12},
        tags={"key_metric": "auc", "team": "risk"},
        catalog_model__description="Scores card transactions in real time.",
    )
    now = timezone.now()
    versions = {}
    for number in range(1, 13):
        auc = 0.78 + number * 0.012 - (0.03 if number in (5, 11) else 0)
        versions[number] = ModelVersionFactory(
            registered_model=rm,
            version=number,
            metrics={"auc": round(auc, 4), "rmse": round(0.6 - number * 0.015, 4)},
            tags={"validation": "passed", "data.snapshot": f"2026-{number:02d}-01"},
            run_tags={"mlflow.runName": f"run-{number}"},
            description=f"Version {number}: retrained on the monthly cards data.",
            created_upstream_at=now - dt.timedelta(days=120 - number * 9),
            experiment_id="12",
        )
    for number, target, days in [
        (4, "aks", 80),
        (7, "aks", 50),
        (9, "aks", 20),
        (9, "databricks-job", 18),
    ]:
        started = now - dt.timedelta(days=days)
        DeploymentRecord.objects.create(
            catalog_model=rm.catalog_model,
            environment="PROD",
            target=target,
            run_id=next(_ids),
            stage_id=next(_ids),
            model_version=versions[number],
            version_label=f"v{number}",
            started_at=started,
            observed_at=started,
        )
    return rm


def _read_the_chart(page):
    section = page.get_by_test_id("section-metric-across-versions")
    section.scroll_into_view_if_needed()
    chart = section.get_by_test_id("metric-chart")
    assert chart.is_visible()
    points = chart.locator("circle.chart-point")
    assert points.count() == 12
    for i in range(points.count()):
        box = points.nth(i).bounding_box()
        assert box and box["width"] > 0  # drawn, inside the page
    labels = chart.get_by_test_id("chart-alias")
    assert sorted(labels.all_text_contents()) == ["@challenger", "@champion"]
    assert all(labels.nth(i).is_visible() for i in range(labels.count()))
    prod = chart.get_by_test_id("chart-prod")
    assert prod.count() == 1 and prod.first.is_visible()  # v9 is in PROD now (two targets)
    assert chart.locator("a[data-prod=before]").count() == 2  # v4 and v7 served before
    table = section.get_by_test_id("metric-table")
    assert table.is_visible()
    chart_box, table_box = chart.bounding_box(), table.bounding_box()
    assert table_box["y"] >= chart_box["y"] + chart_box["height"] - 1  # the numbers beneath
    v9 = table.locator('tr[data-point-version="9"]')
    assert "PROD now · AKS" in v9.inner_text() and "@champion" in v9.inner_text()
    return section


def test_a_data_scientist_reads_the_metric_chart(browser, live_server, make_user, screenshot):
    make_user(Role.DATA_SCIENTIST, username="e2e-chart", first_name="Dana")
    _model()
    base = live_server.url
    for width, height, name in [(1366, 900, "desktop"), (390, 844, "phone")]:
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        try:
            _sign_in(page, base, "e2e-chart")
            page.goto(f"{base}/registry/models/{NAME}/")
            section = _read_the_chart(page)
            screenshot(page, f"registry-metric-chart-{name}")
            # the page never scrolls sideways; only the chart's own box may
            assert page.evaluate(
                "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
            # another metric, then a point leads to its version
            section.get_by_label("Metric").select_option("rmse")
            section.get_by_role("button", name="Show").click()
            page.wait_for_url(lambda url: "metric=rmse" in url)
            assert "lower is better" in page.get_by_test_id("metric-direction").inner_text()
            page.get_by_test_id("metric-chart").locator('a[data-version="12"]').click()
            page.wait_for_url(f"{base}/registry/sources/central/models/{NAME}/versions/12/")
        finally:
            context.close()


def test_the_standalone_chart_page(page, live_server, make_user, screenshot):
    make_user(Role.DATA_SCIENTIST, username="e2e-chart2", first_name="Dana")
    _model()
    _sign_in(page, live_server.url, "e2e-chart2")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/registry/models/{NAME}/metrics/?metric=auc")
    _read_the_chart(page)
    screenshot(page, "registry-metric-page-desktop")
