"""The models list and the compare page read on a phone (cards, no sideways scroll; the list
also on a tablet) and fit a 1366 / 1280 px laptop without cutting off "Last updated"."""

import datetime as dt

import pytest
from django.utils import timezone

from core.roles import Role
from pipelines.models import PipelineKind
from tests.e2e.test_sign_in import _sign_in
from tests.maturity.factories import set_maturity
from tests.pipelines.factories import PipelineFactory, PipelineRunFactory, RunStageFactory
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
# Names as long as the demo's, split by hyphens the way the catalog's are.
MODELS = [
    ("churn-predictor", "growth", "batch"),
    ("claims-triage-rules", "operations", "batch"),
    ("credit-scoring", "risk", "batch"),
    ("customer-lifetime-value", "growth", "batch"),
    ("demand-forecast", "operations", "batch"),
    ("fraud-detector", "risk", "real_time"),
    ("inventory-anomaly", "operations", "real_time"),
    ("marketing-uplift", "growth", "batch"),
    ("transaction-screening-rules", "risk", "real_time"),
]
KEY_LABELS = ["@champion version", "In QA", "In PROD", "Maturity", "Last updated"]


def _catalog():
    """Ten models like the demo's, at their widest: two-digit versions, two aliases, QA and
    PROD on Databricks jobs, a maturity disagreement, and updated 2 h 59 min ago."""
    now = timezone.now()
    central = RegistrySourceFactory(name="central", is_central=True)
    for index, (name, team, serving) in enumerate(MODELS):
        rm = RegisteredModelFactory(
            name=name,
            source=central,
            aliases={"champion": 11, "challenger": 12},
            catalog_model__registry_team=team,
            catalog_model__registry_serving=serving,
            updated_upstream_at=now - dt.timedelta(hours=2, minutes=59),
        )
        versions = {
            n: ModelVersionFactory(
                registered_model=rm,
                version=n,
                metrics={"auc": 0.9 + n / 1000, "log_loss": 0.05 - n / 1000, "f1": 0.7},
                params={"algorithm": "lightgbm", "n_estimators": str(50 * n)},
            )
            for n in (9, 10, 11, 12)
        }
        release = PipelineFactory(catalog_model=rm.catalog_model, kind=PipelineKind.RELEASE)
        for version, environments in ((versions[11], ("QA", "PROD")), (versions[12], ("QA",))):
            run = PipelineRunFactory(
                pipeline=release,
                model_version=version,
                parameters={"modelVersion": str(version.version), "deployTarget": "databricks-job"},
                queued_at=now - dt.timedelta(days=3 - version.version % 2),
            )
            for order, environment in enumerate(environments):
                RunStageFactory(run=run, environment=environment, order=order)
        set_maturity(rm.catalog_model, assessed=1 + index % 5, declared=4 if index == 7 else None)
    CatalogModelFactory(name="credit-limit-rules", kind="rule_based", serving="batch", team="risk")


def _signed_in(browser, live_server, make_user, viewport):
    make_user(Role.DATA_SCIENTIST, username="e2e-layout")
    _catalog()
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    _sign_in(page, live_server.url, "e2e-layout")
    return context, page


def _page_scrolls_sideways(page) -> bool:
    return page.evaluate(
        "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )


def _box_scrolls_sideways(locator) -> bool:
    return locator.evaluate("e => e.scrollWidth > e.clientWidth + 1")


def _inside_viewport(locator, width) -> bool:
    box = locator.bounding_box()
    return (
        box is not None and box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= width
    )


def _label(cell) -> str:
    return cell.evaluate("e => getComputedStyle(e, '::before').content").strip('"')


@pytest.mark.parametrize("width", [1366, 1280])
def test_the_models_list_fits_a_laptop(browser, live_server, make_user, screenshot, width):
    context, page = _signed_in(browser, live_server, make_user, {"width": width, "height": 900})
    try:
        page.goto(f"{live_server.url}/registry/models/")
        assert page.get_by_test_id("model-count").inner_text() == "10 models"
        screenshot(page, f"layout-models-{width}")
        assert not _page_scrolls_sideways(page)
        assert not _box_scrolls_sideways(page.locator(".table-responsive").first)
        # with room to spare for longer values ("11 minutes ago", more aliases)
        spare = page.locator(".table-responsive").first.evaluate(
            """box => { const width = box.clientWidth;
                 box.style.width = '400px'; const needed = box.scrollWidth;  // the table's least
                 box.style.width = ''; return width - needed; }"""
        )
        assert spare >= 60, spare
        header = page.get_by_role("columnheader", name="Last updated")
        assert _inside_viewport(header, width)
        for row in page.locator("tr[data-model]").all():
            assert _inside_viewport(row.locator("td").last, width), row.get_attribute("data-model")
    finally:
        context.close()


@pytest.mark.parametrize("width", [390, 1024])
def test_on_a_phone_or_tablet_each_model_is_a_card_with_its_key_fields(
    browser, live_server, make_user, screenshot, width
):
    context, page = _signed_in(browser, live_server, make_user, {"width": width, "height": 844})
    try:
        page.goto(f"{live_server.url}/registry/models/")
        screenshot(page, f"layout-models-{width}")
        assert not _page_scrolls_sideways(page)
        assert not _box_scrolls_sideways(page.locator(".table-responsive").first)
        rows = page.locator("tr[data-model]")
        assert rows.count() == 10
        for row in rows.all():
            name = row.get_attribute("data-model")
            assert _inside_viewport(row.get_by_role("link", name=name, exact=True), width), name
            for label in KEY_LABELS:
                cell = row.locator(f'td[data-label="{label}"]')
                assert _inside_viewport(cell, width), (name, label)
                assert _label(cell) == label, (name, label)
        fraud = rows.filter(has=page.get_by_role("link", name="fraud-detector", exact=True))
        assert fraud.locator('td[data-label="In PROD"]').inner_text() == "v11 · Databricks"
        # sorting stays reachable without the table header
        page.get_by_role("link", name="Last updated").click()
        page.wait_for_url(lambda url: "sort=" in url)
        assert not _page_scrolls_sideways(page)
    finally:
        context.close()


def test_on_a_phone_the_comparison_stacks_each_value_under_its_version(
    browser, live_server, make_user, screenshot
):
    context, page = _signed_in(browser, live_server, make_user, PHONE)
    try:
        refs = "&".join(f"v=central:{n}" for n in (12, 11, 10, 9))
        page.goto(f"{live_server.url}/registry/models/customer-lifetime-value/compare/?{refs}")
        screenshot(page, "layout-compare-390")
        assert not _page_scrolls_sideways(page)
        assert not _box_scrolls_sideways(page.locator(".table-responsive").first)
        for n in (12, 11, 10, 9):
            assert _inside_viewport(page.get_by_role("link", name=f"central v{n}"), 390)
        for row in page.locator("tr[data-metric], tr[data-param]").all():
            assert _inside_viewport(row.locator("th"), 390)
            cells = row.locator("td").all()
            assert [_label(c) for c in cells] == [f"central v{n}" for n in (12, 11, 10, 9)]
            for cell in cells:
                assert _inside_viewport(cell, 390)
        page.set_viewport_size({"width": 1366, "height": 900})
        screenshot(page, "layout-compare-1366")
        assert page.locator('tr[data-metric="auc"] td').first.evaluate(
            "e => getComputedStyle(e, '::before').content"
        ) in ("none", "normal")  # a plain table again on a laptop
    finally:
        context.close()
