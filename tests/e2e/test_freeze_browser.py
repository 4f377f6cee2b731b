"""A manager opens the freeze windows page in a browser: what is frozen now, the calendar and
the next occurrences, at desktop and phone width without sideways scrolling, and creates a
window with the form (the wall-clock start in the window's zone)."""

from datetime import UTC, datetime, timedelta

import pytest

from approvals.models import FreezeWindow
from core.roles import Role
from tests.e2e.test_registry_browse import NARROW, OVERFLOWING, _no_page_overflow
from tests.e2e.test_sign_in import _sign_in
from tests.registry.factories import RegisteredModelFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}


def _windows():
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    fraud = RegisteredModelFactory(name="fraud-detector").catalog_model
    FreezeWindow.objects.create(
        name="Incident INC-2231",
        reason="Feature store degraded; no PROD changes until it is fixed",
        environment="PROD",
        dtstart=now - timedelta(hours=1),
        duration_minutes=150,
        timezone="Europe/Amsterdam",
    )
    FreezeWindow.objects.create(
        name="Friday freeze",
        reason="No changes before the weekend",
        environment="all",
        rrule="FREQ=WEEKLY;BYDAY=FR",
        dtstart=datetime(2026, 1, 2, 16, 0, tzinfo=UTC),
        duration_minutes=8 * 60,
        timezone="Europe/Amsterdam",
    )
    FreezeWindow.objects.create(
        name="Risk release window Tue-Thu 09-17",
        kind="allow",
        reason="Risk models ship while the risk on-call is staffed",
        environment="PROD",
        team="risk",
        rrule="FREQ=WEEKLY;BYDAY=TU,WE,TH",
        dtstart=datetime(2026, 1, 6, 8, 0, tzinfo=UTC),
        duration_minutes=8 * 60,
        timezone="Europe/Amsterdam",
    )
    FreezeWindow.objects.create(
        name="Fraud model retraining blackout",
        catalog_model=fraud,
        environment="QA",
        rrule="FREQ=MONTHLY;BYMONTHDAY=1",
        dtstart=datetime(2026, 1, 1, 0, 0, tzinfo=UTC),
        duration_minutes=24 * 60,
        active=False,
    )


def test_a_manager_reads_the_freeze_page_and_creates_a_window(
    page, live_server, make_user, screenshot
):
    _windows()
    make_user(Role.MANAGER, username="mona", first_name="Mona")
    _sign_in(page, live_server.url, "mona")
    page.goto(f"{live_server.url}/approvals/")
    page.get_by_test_id("freeze-link").click()
    page.wait_for_url(f"{live_server.url}/approvals/freeze/")
    prod = page.locator("[data-environment=PROD]")
    assert prod.get_attribute("data-frozen") == "true"
    assert "Incident INC-2231" in prod.inner_text()
    assert page.locator("[data-testid=freeze-calendar] .freeze-week").count() >= 3
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    screenshot(page, "freeze-1280")

    page.set_viewport_size(NARROW)
    page.wait_for_timeout(200)
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    screenshot(page, "freeze-390")
    page.set_viewport_size(DESKTOP)

    page.get_by_test_id("freeze-new").click()
    page.get_by_label("Name").fill("Year-end freeze")
    page.get_by_label("Environment").select_option("PROD")
    page.get_by_label("Time zone").fill("Europe/Amsterdam")
    page.get_by_label("First occurrence starts").fill("2026-12-18T16:00")
    page.get_by_label("First occurrence ends").fill("2027-01-04T09:00")
    page.get_by_label("Repeats (RRULE)").fill("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30")
    page.get_by_role("button", name="Create window").click()
    error = page.locator("[data-field=rrule]")
    assert "no occurrence in the next 2 years" in error.inner_text()
    screenshot(page, "freeze-form-error-1280")
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(200)
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    screenshot(page, "freeze-form-error-390")
    page.set_viewport_size(DESKTOP)
    page.get_by_label("Repeats (RRULE)").fill("")
    page.get_by_role("button", name="Create window").click()
    page.wait_for_url(f"{live_server.url}/approvals/freeze/")
    created = FreezeWindow.objects.get(name="Year-end freeze")
    assert created.dtstart == datetime(2026, 12, 18, 15, 0, tzinfo=UTC)


def test_an_approver_sees_the_freeze_refuse_a_decision(page, live_server, make_user, screenshot):
    from tests.approvals.factories import ApprovalRequestFactory

    approval = ApprovalRequestFactory()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    FreezeWindow.objects.create(
        name="Year-end freeze",
        reason="Finance closes the books",
        environment="QA",
        dtstart=now - timedelta(hours=1),
        duration_minutes=6 * 60,
        timezone="Europe/Amsterdam",
    )
    make_user(Role.APPROVER, username="alice", first_name="Alice", email="alice@example.com")
    _sign_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/approvals/{approval.pk}/")
    gated = page.get_by_test_id("decision-gated")
    assert "Year-end freeze" in gated.inner_text() and "reopens at" in gated.inner_text()
    assert "you can still reject it" in gated.inner_text()
    assert page.locator("[data-rule=freeze_window]").get_attribute("data-ok") == "false"
    # a freeze holds the approval back, not a rejection: only Reject is offered
    form = page.get_by_test_id("decision-form")
    assert form.get_by_role("button", name="Reject").is_visible()
    assert form.get_by_role("button", name="Approve").count() == 0
    page.locator("#decision-box").scroll_into_view_if_needed()
    screenshot(page, "freeze-decision-1280")
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(200)
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    screenshot(page, "freeze-decision-390")
