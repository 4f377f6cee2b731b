"""A data scientist browses the registry in a browser: list, search, model, version, compare."""

import datetime as dt

import pytest
from django.utils import timezone

from core.roles import Role
from tests.e2e.test_sign_in import _sign_in
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UC_NAME = "main.risk.fraud_detector"
NARROW = {"width": 390, "height": 844}


def _catalog():
    now = timezone.now()
    central = RegistrySourceFactory(
        name="central", is_central=True, ui_url="https://mlflow.example"
    )
    RegistrySourceFactory(name="data-discovery", last_sync_succeeded_at=now - dt.timedelta(hours=3))
    fraud = RegisteredModelFactory(
        name=UC_NAME,
        source=central,
        aliases={"champion": 2, "challenger": 3},
        tags={"data.domain": "cards", "key_metric": "auc", "team": "risk"},
        catalog_model__description="Scores card transactions in real time.",
        catalog_model__owners=["dana@example.com", "risk-ml@example.com"],
        catalog_model__registry_serving="real_time",
    )
    for number, auc, rmse, depth in [
        (1, 0.81, 0.52, "6"),
        (2, 0.912, 0.41, "8"),
        (3, 0.9, 0.43, "8"),
    ]:
        ModelVersionFactory(
            registered_model=fraud,
            version=number,
            metrics={"auc": auc, "rmse": rmse, "precision_at_1pct_fpr": auc - 0.2},
            params={"max_depth": depth, "learning_rate": "0.05", "n_estimators": "400"},
            aliases=[a for a, v in fraud.aliases.items() if v == number],
            created_upstream_at=now - dt.timedelta(days=20 - number * 5),
            experiment_id="12",
            run_id=f"{number:032x}",
        )
    for name, team, serving in [
        ("growth.marketing.churn_predictor", "growth", "batch"),
        ("operations.supply.demand_forecast", "operations", "batch"),
        ("risk.screening.transaction-screening-rules", "risk", "real_time"),
    ]:
        rm = RegisteredModelFactory(
            name=name,
            source=central,
            aliases={"champion": 4},
            catalog_model__registry_team=team,
            catalog_model__registry_serving=serving,
        )
        for number in range(1, 5):
            ModelVersionFactory(registered_model=rm, version=number)
    CatalogModelFactory(name="credit-limit-rules", kind="rule_based", serving="batch", team="risk")


# For the failure message: which elements stick out on the right.
OVERFLOWING = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 8)
  .map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


def _no_page_overflow(page):
    return page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def test_a_data_scientist_browses_and_compares(page, live_server, make_user, screenshot):
    make_user(Role.DATA_SCIENTIST, username="e2e-dana", first_name="Dana")
    _catalog()
    base = live_server.url
    _sign_in(page, base, "e2e-dana")

    page.get_by_role("link", name="Models").click()
    page.wait_for_url(f"{base}/registry/models/")
    assert page.get_by_test_id("model-count").inner_text() == "5 models"
    assert "data-discovery" in page.get_by_test_id("freshness").inner_text()
    screenshot(page, "registry-list-desktop")

    # sort by team (htmx swaps the results), then search: the sort is kept
    page.get_by_role("link", name="Team").click()
    page.wait_for_url(lambda url: "sort=team" in url)
    assert page.locator("tr[data-model]").first.get_attribute("data-model") == (
        "growth.marketing.churn_predictor"
    )
    page.get_by_label("Search").fill("fraud")
    page.wait_for_url(lambda url: "q=fraud" in url)
    assert "sort=team" in page.url
    page.get_by_test_id("model-count").filter(has_text="1 model").wait_for()
    rows = page.locator("tr[data-model]")
    assert rows.count() == 1 and rows.first.get_attribute("data-model") == UC_NAME

    page.get_by_role("link", name=UC_NAME).click()
    page.wait_for_url(f"{base}/registry/models/{UC_NAME}/")
    assert page.get_by_test_id("model-name").inner_text() == UC_NAME
    assert "Real-time" in page.get_by_test_id("model-badges").inner_text()
    screenshot(page, "registry-model-desktop")

    page.locator("[data-testid=versions-table]").get_by_role("link", name="v2").click()
    page.wait_for_url(f"{base}/registry/sources/central/models/{UC_NAME}/versions/2/")
    assert page.get_by_test_id("version-title").inner_text() == f"{UC_NAME} v2"
    assert "0.912" in page.get_by_test_id("metrics-table").inner_text()
    screenshot(page, "registry-version-desktop")

    page.go_back()
    page.wait_for_url(f"{base}/registry/models/{UC_NAME}/")
    page.locator('input[name=v][value="central:1"]').check()
    page.locator('input[name=v][value="central:2"]').check()
    page.get_by_test_id("compare-button").click()
    page.wait_for_url(lambda url: "/compare/?" in url)
    # the table lists newest first, so the newer version is the baseline...
    assert page.locator("th[data-version]").all_inner_texts()[0].startswith("central v2")
    auc = page.locator('tr[data-metric="auc"]')
    assert auc.locator(".delta").inner_text() == "\u22120.102"
    assert "delta-worse" in auc.locator(".delta").get_attribute("class")
    # ...and one click makes the older one the baseline
    page.get_by_test_id("make-baseline").click()
    page.wait_for_url(lambda url: url.endswith("?v=central%3A1&v=central%3A2"))
    assert auc.locator(".delta").inner_text() == "+0.102"
    assert "delta-better" in auc.locator(".delta").get_attribute("class")
    assert auc.locator("td[data-best=true]").count() == 1
    assert page.locator('tr[data-param="max_depth"][data-differs=true]').count() == 1
    screenshot(page, "registry-compare-desktop")

    # Narrow screens: the page itself never scrolls sideways (the model list becomes cards).
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(200)
    screenshot(page, "registry-compare-narrow")
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    for url, name in [
        (f"{base}/registry/models/", "registry-list-narrow"),
        (f"{base}/registry/models/{UC_NAME}/", "registry-model-narrow"),
        (
            f"{base}/registry/sources/central/models/{UC_NAME}/versions/2/",
            "registry-version-narrow",
        ),
    ]:
        page.goto(url)
        assert _no_page_overflow(page), f"{name} overflows the viewport"
        screenshot(page, name)
    page.goto(f"{base}/registry/models/")
    table_box = page.locator(".table-responsive").first
    assert table_box.evaluate("e => e.scrollWidth <= e.clientWidth")  # cards, not a wide table
    assert page.locator("tr[data-model]").first.evaluate("e => getComputedStyle(e).display") == (
        "flex"
    )


def test_a_filter_the_server_fails_to_apply_says_so_and_hides_the_old_rows(
    page, live_server, make_user, screenshot
):
    make_user(Role.DATA_SCIENTIST, username="e2e-failing-filter")
    _catalog()
    _sign_in(page, live_server.url, "e2e-failing-filter")
    page.goto(f"{live_server.url}/registry/models/")
    assert page.get_by_test_id("model-count").inner_text() == "5 models"

    # The server's answer to the filter change is an error (as it was for team=risk on SQLite).
    def fail(route):
        if route.request.headers.get("hx-request"):
            route.fulfill(status=500, body="Server Error", content_type="text/html")
        else:
            route.continue_()

    page.route("**/registry/models/?*", fail)
    page.get_by_label("Tag", exact=True).fill("team=risk")
    page.get_by_label("Tag", exact=True).press("Enter")
    error = page.get_by_test_id("filter-error")
    error.wait_for()
    assert "could not be filtered" in error.inner_text()
    assert "500" in error.inner_text()
    assert page.get_by_test_id("model-count").count() == 0  # no stale count...
    assert page.locator("tr[data-model]").count() == 0  # ...and no stale rows
    screenshot(page, "registry-list-filter-error")


def test_the_filters_work_without_javascript(browser, live_server, make_user, screenshot):
    make_user(Role.DATA_SCIENTIST, username="e2e-nojs")
    _catalog()
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, "e2e-nojs")
        page.goto(f"{live_server.url}/registry/models/")
        page.get_by_label("Team").select_option("growth")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url(lambda url: "team=growth" in url)
        assert page.get_by_test_id("model-count").inner_text() == "1 model"
        page.get_by_role("link", name="Name").click()  # sort header: a plain link
        page.wait_for_url(lambda url: "sort=-name" in url)
        assert "team=growth" in page.url
        page.get_by_label("Kind").select_option("ml")
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url(lambda url: "kind=ml" in url)
        assert "sort=-name" in page.url  # the sort survives a filter change
    finally:
        context.close()


def test_an_editor_adds_a_rule_based_model(page, live_server, make_user, screenshot):
    make_user(Role.DATA_SCIENTIST, username="e2e-editor")
    RegistrySourceFactory(name="central", is_central=True)
    base = live_server.url
    _sign_in(page, base, "e2e-editor")
    page.goto(f"{base}/registry/models/?q=credit")
    assert "No model matches these filters" in page.get_by_test_id("empty-state").inner_text()
    screenshot(page, "registry-list-empty")

    page.get_by_role("link", name="New catalog entry").click()
    page.get_by_label("Name").fill("credit-limit-rules")
    page.get_by_label("Kind").select_option("rule_based")
    page.get_by_label("Owners").fill("risk@example.com, not an address")
    page.get_by_role("button", name="Create entry").click()
    error = page.locator('[data-field="owners"]')
    assert "Not an e-mail address: not an address" in error.inner_text()
    screenshot(page, "registry-create-error")
    page.set_viewport_size(NARROW)
    assert _no_page_overflow(page)
    screenshot(page, "registry-create-error-narrow")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_label("Owners").fill("risk@example.com")
    page.get_by_role("button", name="Create entry").click()
    page.wait_for_url(f"{base}/registry/models/credit-limit-rules/")
    assert "Not registered." in page.get_by_test_id("not-registered").inner_text()
    assert "Rule-based" in page.get_by_test_id("model-badges").inner_text()
    screenshot(page, "registry-model-not-registered")
