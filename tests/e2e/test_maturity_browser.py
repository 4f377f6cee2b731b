"""A manager opens the maturity dashboard in a browser: the charts draw from the vendored
Chart.js, their numbers are in tables beneath, a level filter narrows the table, and a model's
name leads to its registry page at the maturity section."""

import pytest
from django.utils import timezone

from core.roles import Role
from maturity import services
from maturity.models import Result
from tests.e2e.test_registry_browse import NARROW, OVERFLOWING, _no_page_overflow
from tests.e2e.test_sign_in import _sign_in
from tests.maturity.factories import AssessedRecordFactory, results_for, set_maturity
from tests.registry.factories import CatalogModelFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
# name, team, kind, serving, assessed level history (oldest first, a week apart), declared
PORTFOLIO = [
    ("fraud-detector", "risk", "ml", "real_time", [2, 3, 3, 4, 4, 5], None),
    ("transaction-screening-rules", "risk", "rule_based", "real_time", [2, 3, 3, 3, 4, 4], None),
    ("credit-scoring", "risk", "ml", "batch", [3, 3, 3, 4, 4, 4], None),
    ("churn-predictor", "growth", "ml", "batch", [3, 3, 4, 4, 4, 4], None),
    ("marketing-uplift", "growth", "ml", "batch", [2, 2, 2, 3, 3, 3], 4),
    ("customer-lifetime-value", "growth", "ml", "batch", [1, 1, 2, 2, 2, 2], None),
    ("demand-forecast", "operations", "ml", "batch", [3, 3, 4, 4, 4, 3], None),
    ("inventory-anomaly", "operations", "ml", "real_time", [1, 2, 2, 3, 3, 3], None),
    ("claims-triage-rules", "operations", "rule_based", "batch", [1, 1, 1, 1, 1, 1], None),
    ("credit-limit-rules", "operations", "rule_based", "batch", [2, 2, 3, 3, 3, 3], None),
]


def _portfolio():
    """Ten models over three teams and all five levels, with six weeks of snapshots."""
    now = timezone.now()
    for name, team, kind, serving, history, declared in PORTFOLIO:
        model = CatalogModelFactory(
            name=name, team=team, kind=kind, serving=serving, description=f"{name} (demo)"
        )
        set_maturity(model, history=history, declared=declared, at=now)
    # one whose next level could not be measured, shown differently from a failure
    unmeasured = CatalogModelFactory(
        name="recommendation-ranker", team="growth", kind="ml", serving="real_time"
    )
    AssessedRecordFactory(
        catalog_model=unmeasured,
        level=2,
        results=results_for(2, next_result=Result.NOT_MEASURED),
        created_at=now,
    )
    services.model_maturity_rebuild(catalog_model_ids=[unmeasured.pk])
    CatalogModelFactory(name="new-pricing-model", team="growth")  # not assessed yet
    services.snapshots_backfill(weeks=6, now=now)
    services.snapshot_take(now=now)


def _canvas_drawn(page, selector) -> bool:
    """Chart.js drew something: the canvas has non-transparent pixels."""
    return page.locator(selector).evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) return true; }
                  return false; }"""
    )


def test_a_manager_reads_the_dashboard_filters_by_level_and_opens_a_model(
    page, live_server, make_user, screenshot
):
    make_user(Role.MANAGER, username="e2e-maya", first_name="Maya")
    _portfolio()
    base = live_server.url
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # a script error or a CSP refusal shows on the console (the favicon's 404 does not count)
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "404" not in m.text else None,
    )
    _sign_in(page, base, "e2e-maya")

    page.get_by_role("link", name="Maturity", exact=True).click()
    page.wait_for_url(f"{base}/maturity/")
    assert page.get_by_role("heading", name="MLOps maturity").is_visible()
    # both charts rendered by the vendored Chart.js, their numbers in tables beneath
    page.wait_for_selector("#distribution-chart[data-rendered='true']")
    page.wait_for_selector("#trend-chart[data-rendered='true']")
    assert page.evaluate("() => typeof window.Chart") == "function"
    assert _canvas_drawn(page, "#distribution-chart")
    assert _canvas_drawn(page, "#trend-chart")
    assert page.get_by_test_id("summary-assessed").inner_text() == "11"
    assert page.get_by_test_id("summary-unassessed").inner_text() == "1"
    assert page.get_by_test_id("summary-disagreements").inner_text() == "1"
    distribution = page.get_by_test_id("distribution-table")
    assert not distribution.is_visible()  # in the DOM, folded under "The numbers"
    page.locator("[data-testid=distribution] details summary").click()
    assert distribution.is_visible()
    assert distribution.locator("thead th").all_inner_texts() == [
        "Level",
        "growth",
        "operations",
        "risk",
        "Total",
    ]
    assert distribution.locator("tfoot td").last.inner_text() == "11"
    assert page.get_by_test_id("trend-table").locator("tbody tr").count() == 6
    page.wait_for_timeout(600)  # let the charts' entry animation finish for the picture
    screenshot(page, "maturity-dashboard")

    # switch the stacking to kind: a link that keeps the page working without JavaScript
    page.get_by_test_id("distribution-switch").get_by_role("link", name="By kind").click()
    page.wait_for_url(f"{base}/maturity/?by=kind")
    page.wait_for_selector("#distribution-chart[data-rendered='true']")
    assert "Rule-based model" in page.get_by_test_id("distribution-table").text_content()

    # filter by level 3: the table narrows and the URL carries the filter
    page.get_by_label("Level", exact=True).select_option("3")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**level=3**")
    names = page.locator("[data-testid=maturity-table] tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.model)"
    )
    assert names == ["credit-limit-rules", "demand-forecast", "inventory-anomaly"]
    page.wait_for_selector("#distribution-chart[data-rendered='true']")
    row = page.locator("tr[data-model='demand-forecast']")
    assert "L4:" in row.inner_text() and "failed" in row.inner_text()

    # the model's name leads to its registry page, at the maturity section
    row.get_by_role("link", name="demand-forecast").click()
    page.wait_for_url(f"{base}/registry/models/demand-forecast/#maturity")
    section = page.get_by_test_id("maturity-section")
    section.wait_for()
    assert section.is_visible()
    # the browser scrolls (smoothly, Bootstrap's default) to the section
    page.wait_for_function(
        "() => { const r = document.getElementById('maturity').getBoundingClientRect();"
        " return r.top >= 0 && r.top < window.innerHeight / 2; }"
    )
    screenshot(page, "maturity-model-section")
    assert not errors, errors


def test_the_dashboard_reads_well_on_a_phone(page, live_server, make_user, screenshot):
    make_user(Role.DATA_SCIENTIST, username="e2e-dana", first_name="Dana")
    _portfolio()
    _sign_in(page, live_server.url, "e2e-dana")
    page.set_viewport_size(NARROW)
    page.goto(f"{live_server.url}/maturity/")
    page.wait_for_selector("#trend-chart[data-rendered='true']")
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    not_measured = page.locator("tr[data-model='recommendation-ranker'] [data-result]")
    assert not_measured.get_attribute("data-result") == "not_measured"
    assert "not measured" in not_measured.inner_text()
    page.wait_for_timeout(600)
    screenshot(page, "maturity-dashboard-narrow")
    page.goto(f"{live_server.url}/maturity/criteria/")
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    screenshot(page, "maturity-criteria-narrow")
    page.set_viewport_size(DESKTOP)
    screenshot(page, "maturity-criteria")


def test_with_reduced_motion_the_charts_draw_without_animation(browser, live_server, make_user):
    make_user(Role.APPROVER, username="e2e-alex", first_name="Alex")
    _portfolio()
    context = browser.new_context(viewport=DESKTOP, reduced_motion="reduce")
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, "e2e-alex")
        page.goto(f"{live_server.url}/maturity/")
        page.wait_for_selector("#distribution-chart[data-rendered='true']")
        animated = page.evaluate(
            "() => Chart.getChart('distribution-chart').options.animation !== false"
        )
        assert animated is False
    finally:
        context.close()
