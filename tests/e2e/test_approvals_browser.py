"""An approver approves a QA request in a browser and watches the real worker deliver it to the
ADO simulator; whoever queued a run is shown the separation-of-duties rule and cannot approve.

The approvals are mirrored over HTTP from the simulator; delivery is done by the session's
Celery worker process, which reaches the simulator with its own PAT ("simulator-pat", the test
settings' default), so this simulator accepts that PAT too.
"""

import datetime as dt
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from ado_simulator import AdoSimulator
from approvals.models import ApprovalRequest, Decision, OutboxState
from core.roles import Role
from pipelines.models import Pipeline
from tests.approvals import conftest as approvals_fixtures
from tests.approvals.conftest import PAT, PAT_USER, mirror, wait_at
from tests.approvals.factories import ApprovalRequestFactory
from tests.e2e.test_registry_browse import NARROW, OVERFLOWING, _no_page_overflow
from tests.e2e.test_sign_in import _sign_in
from tests.factories import TEST_PASSWORD
from tests.pipelines.factories import PipelineFactory, PipelineRunFactory, RunStageFactory
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The approvals fixtures (tests/approvals/conftest.py): an ADO project mirrored from the
# simulator, its client, fraud-detector v1/v2 and its release pipeline there.
project = approvals_fixtures.project
ado_client = approvals_fixtures.ado_client
fraud = approvals_fixtures.fraud
release = approvals_fixtures.release

DESKTOP = {"width": 1280, "height": 900}
WORKER_PAT = "simulator-pat"  # what the worker process sends (portal/settings/test.py)
RELEASE_PARAMETERS = {"modelName": "fraud-detector", "modelVersion": "2", "deployTarget": "aks"}


@pytest.fixture
def sim():
    """The simulator, accepting the test's PAT and the worker's."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    simulator = AdoSimulator(start=start, pats={PAT: PAT_USER, WORKER_PAT: PAT_USER}).start()
    yield simulator
    simulator.stop()


def _v1_in_qa(models):
    """fraud-detector v1 went through QA five days ago: the champion v2 is compared with."""
    pipeline = Pipeline.objects.get(name="risk-fraud-detector-release")
    shipped = PipelineRunFactory(
        pipeline=pipeline,
        model_version=models["v1"],
        queued_at=timezone.now() - dt.timedelta(days=5),
        parameters={"modelVersion": "1", "deployTarget": "aks"},
    )
    RunStageFactory(run=shipped, environment="QA", target="aks")


def _narrow_screenshot(page, screenshot, name):
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(200)
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    screenshot(page, name)
    page.set_viewport_size(DESKTOP)


@pytest.mark.worker
def test_an_approver_approves_a_qa_request_and_sees_it_delivered(
    page,
    browser,
    live_server,
    make_user,
    screenshot,
    sim,
    project,
    ado_client,
    fraud,
    release,
    celery_worker_process,
):
    make_user(Role.APPROVER, username="e2e-alice", first_name="Alice", email="alice@example.com")
    make_user(Role.APPROVER, username="e2e-rita", first_name="Rita", email="rita@example.com")
    by_pipeline = sim.queue_run(release, template_parameters=RELEASE_PARAMETERS)
    by_rita = sim.queue_run(
        release, template_parameters=RELEASE_PARAMETERS, requested_for="rita@example.com"
    )
    first_id = wait_at(sim, by_pipeline, "QA")
    ritas_id = wait_at(sim, by_rita, "QA")
    mirror(project, ado_client)
    _v1_in_qa(fraud)
    approval = ApprovalRequest.objects.get(ado_id=first_id)
    ritas = ApprovalRequest.objects.get(ado_id=ritas_id)
    churn = ModelVersionFactory(registered_model=RegisteredModelFactory(name="churn-predictor"))
    churn_release = PipelineFactory(
        project=project,
        ado_id=901,
        catalog_model=churn.registered_model.catalog_model,
        kind="release",
    )
    overdue_prod = ApprovalRequestFactory(
        model_version=churn,
        run=PipelineRunFactory(
            pipeline=churn_release,
            model_version=churn,
            running=True,
            requested_by="Dana Scientist",
            requested_by_id="dana@example.com",
        ),
        environment_name="PROD",
        created_on=timezone.now() - dt.timedelta(days=2),
        instructions="Check the QA run's drift report and the PROD change window before approving.",
    )
    assert ritas.run.requested_by_id == "rita@example.com"
    base = live_server.url

    # Alice signs in and opens the inbox from the navigation, which counts what waits
    _sign_in(page, base, "e2e-alice")
    nav_item = page.locator("#portal-nav").get_by_role("link", name=re.compile(r"^Approvals"))
    badge = nav_item.get_by_test_id("nav-badge").text_content()
    assert " ".join(badge.split()) == "3 pending approvals"
    nav_item.click()
    page.wait_for_url(f"{base}/approvals/")
    assert page.get_by_test_id("tab-count-pending").inner_text() == "3"
    assert page.locator("tr[data-approval]").count() == 3
    prod_row = page.locator(f"tr#approval-{overdue_prod.pk}")
    assert "approval-prod" in prod_row.get_attribute("class")
    assert prod_row.get_attribute("data-overdue") == "true"
    screenshot(page, "approvals-inbox-desktop")
    _narrow_screenshot(page, screenshot, "approvals-inbox-narrow")

    # the QA request: evidence, rules, decision box
    page.locator(f"tr#approval-{approval.pk} a").first.click()
    page.wait_for_url(f"{base}/approvals/{approval.pk}/")
    metrics = page.get_by_test_id("metrics")
    assert "v2 against v1, in QA now" in metrics.inner_text()
    assert metrics.locator("tr[data-metric=auc]").get_attribute("data-verdict") == "better"
    assert metrics.locator("tr[data-metric=log_loss]").get_attribute("data-verdict") == "better"
    rules = page.get_by_test_id("decision-rules")
    assert rules.locator("[data-rule=requester]").get_attribute("data-ok") == "true"
    screenshot(page, "approvals-detail-desktop")
    _narrow_screenshot(page, screenshot, "approvals-detail-narrow")

    # a rejection without a comment is refused in place (a 400 swapped into the box)
    page.get_by_role("button", name="Reject", exact=True).click()
    error = page.get_by_test_id("comment-error")
    error.wait_for()
    assert error.inner_text() == "A rejection needs a comment saying why."
    assert page.url == f"{base}/approvals/{approval.pk}/"

    # approve with a comment, through the confirmation step (htmx: no page change)
    page.get_by_label("Comment").fill("AUC up, log loss down; QA checks done.")
    page.get_by_role("button", name="Approve", exact=True).click()
    confirm = page.get_by_test_id("decision-confirm")
    confirm.wait_for()
    assert "You are about to approve the deployment of fraud-detector v2 to QA" in (
        confirm.inner_text()
    )
    assert Decision.objects.count() == 0
    screenshot(page, "approvals-detail-confirm")
    confirm.get_by_role("button", name="Confirm: approve").click()

    # the worker delivers it; the box polls until it says so
    page.locator("[data-testid=delivery-state][data-state=delivered]").wait_for(timeout=30000)
    assert page.url == f"{base}/approvals/{approval.pk}/"
    box = page.get_by_test_id("decision-box")
    assert "Delivered" in box.inner_text()
    assert box.get_attribute("hx-trigger") is None  # polling stopped
    # the rest of the page followed (out-of-band swaps): status, approvers, decisions
    assert page.get_by_test_id("approval-status").inner_text() == "approved"
    assert page.locator("[data-testid=decisions] [data-delivery=delivered]").count() == 1
    assert "1 of 1 required" in page.get_by_test_id("approvers").inner_text()
    decision = Decision.objects.get()
    assert decision.comment == "AUC up, log loss down; QA checks done."
    assert decision.outbox.state == OutboxState.DELIVERED
    assert sim.approval(first_id).status == "approved"
    patches = [r for r in sim.request_log() if r["method"] == "PATCH"]
    assert len(patches) == 1
    screenshot(page, "approvals-detail-delivered")
    _narrow_screenshot(page, screenshot, "approvals-detail-delivered-narrow")

    # the audit trail of this approval, then Alice's home
    page.get_by_role("link", name="Open in the audit trail").click()
    page.wait_for_url(f"{base}/approvals/audit/?approval={approval.pk}")
    actions = page.locator("tr[data-action]").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert {"decision.made", "delivery.delivered"} <= set(actions)
    screenshot(page, "approvals-audit-desktop")
    _narrow_screenshot(page, screenshot, "approvals-audit-narrow")
    page.goto(f"{base}/")
    decided = page.locator("[data-card=approvals-decided]")
    assert "Delivered" in decided.inner_text()
    screenshot(page, "approvals-home-approver")

    # Rita queued the other run: she is told why she cannot approve it, and cannot
    context = browser.new_context(viewport=DESKTOP)
    rita = context.new_page()
    try:
        _sign_in(rita, base, "e2e-rita")
        rita.goto(f"{base}/approvals/{ritas.pk}/")
        blocked = rita.get_by_test_id("decision-blocked").inner_text()
        assert "You queued this run, so you cannot approve it (separation of duties)." in blocked
        assert rita.get_by_role("button", name="Approve", exact=True).count() == 0
        screenshot(rita, "approvals-detail-requester")
        token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
        forced = rita.request.post(
            f"{base}/approvals/{ritas.pk}/decide/",
            form={"status": "approved", "confirm": "1"},
            headers={"X-CSRFToken": token},
        )
        assert forced.status == 403
        assert "You queued this run" in forced.text()
        assert Decision.objects.count() == 1
        _narrow_screenshot(rita, screenshot, "approvals-detail-requester-narrow")
    finally:
        context.close()


def test_deciding_works_without_javascript(browser, live_server, make_user, screenshot):
    make_user(Role.APPROVER, username="e2e-nojs-approver", email="nojs@example.com")
    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", order=0)
    context = browser.new_context(java_script_enabled=False, viewport=NARROW)
    page = context.new_page()
    try:
        base = live_server.url
        _sign_in(page, base, "e2e-nojs-approver")
        page.goto(f"{base}/approvals/{approval.pk}/")
        page.get_by_role("button", name="Reject", exact=True).click()  # no comment: refused
        page.wait_for_url(f"{base}/approvals/{approval.pk}/decide/")
        assert "A rejection needs a comment" in page.get_by_test_id("comment-error").inner_text()
        page.get_by_label("Comment").fill("The PROD target is frozen this week.")
        page.get_by_role("button", name="Reject", exact=True).click()
        page.get_by_test_id("decision-confirm").wait_for()
        assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
        screenshot(page, "approvals-confirm-nojs-narrow")
        page.get_by_role("button", name="Confirm: reject").click()
        page.wait_for_url(f"{base}/approvals/{approval.pk}/")
        assert page.locator("main > .alert-success").inner_text().startswith("Rejected:")
        assert page.get_by_test_id("delivery-state").get_attribute("data-state") == "queued"
        assert Decision.objects.get().status == "rejected"
    finally:
        context.close()


ACTIVE = """() => {
  const el = document.activeElement;
  return {
    tag: el.tagName.toLowerCase(),
    id: el.id,
    testid: el.dataset.testid || "",
    text: el.innerText.trim(),
    inBox: Boolean(el.closest("#decision-box")),
  };
}"""


def _focused(page) -> dict:
    """The focused element once focus has left <body> (it moves just after the swap)."""
    page.wait_for_function("() => document.activeElement !== document.body", timeout=3000)
    return page.evaluate(ACTIVE)


def _live_says(page, words: str) -> str:
    """The decision box's live region once it says ``words`` (it is filled just after the swap)."""
    page.wait_for_function(
        "w => document.getElementById('decision-live').textContent.includes(w)", arg=words
    )
    return page.get_by_test_id("decision-live").text_content()


CONFIRM_FOCUSED = "document.activeElement?.dataset?.testid === 'confirm-button'"


def test_focus_follows_the_redrawn_decision_box_and_a_live_region_says_what_happened(
    page, live_server, make_user, screenshot
):
    make_user(Role.APPROVER, username="e2e-keys", email="keys@example.com")
    approval = ApprovalRequestFactory()
    base = live_server.url
    _sign_in(page, base, "e2e-keys")
    page.goto(f"{base}/approvals/{approval.pk}/")
    live = page.get_by_test_id("decision-live")
    assert live.get_attribute("aria-live") == "polite"
    assert live.get_attribute("role") == "status"

    # a validation error: focus on the comment it is about, the error read out
    page.get_by_role("button", name="Reject", exact=True).click()
    page.get_by_test_id("comment-error").wait_for()
    active = _focused(page)
    assert (active["tag"], active["id"]) == ("textarea", "decision-comment"), active
    assert _live_says(page, "rejection needs a comment") == (
        "A rejection needs a comment saying why."
    )

    # Approve: focus on "Confirm", then Tab reaches "Cancel" (not skipped to the page)
    page.keyboard.type("AUC up; QA checks done.")
    page.get_by_role("button", name="Approve", exact=True).click()
    page.get_by_test_id("decision-confirm").wait_for()
    active = _focused(page)
    assert active["testid"] == "confirm-button" and active["inBox"], active
    assert "Confirm to approve" in _live_says(page, "Confirm to approve")
    page.keyboard.press("Tab")
    active = page.evaluate(ACTIVE)
    assert active["text"] == "Cancel" and active["inBox"], active

    # Cancel with the keyboard: back to the form, focus on its first control, comment kept
    page.keyboard.press("Enter")
    page.get_by_test_id("decision-form").wait_for()
    active = _focused(page)
    assert (active["tag"], active["id"]) == ("textarea", "decision-comment"), active
    assert page.get_by_label("Comment").input_value() == "AUC up; QA checks done."

    # Approve, Confirm, all from the keyboard: the result is read out, focus stays in the box
    page.get_by_role("button", name="Approve", exact=True).focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("decision-confirm").wait_for()
    # the box moves focus to "Confirm" once the swap settles: press Enter only then (on a
    # busy machine the key otherwise lands before the focus does, and nothing is confirmed)
    page.wait_for_function(CONFIRM_FOCUSED)
    page.keyboard.press("Enter")
    page.get_by_test_id("delivery-state").wait_for()
    active = _focused(page)
    assert active["tag"] != "body" and active["inBox"], active
    assert _live_says(page, "Approved:").startswith("Approved:")
    assert Decision.objects.get().comment == "AUC up; QA checks done."
    screenshot(page, "approvals-focus-after-decision")


def test_a_prod_re_sign_in_brings_the_approver_back_to_their_comment(
    page, live_server, make_user, screenshot
):
    from django.contrib.sessions.backends.db import SessionStore

    from core.sessions import AUTHENTICATED_AT_SESSION_KEY

    make_user(Role.APPROVER, username="e2e-prod", email="prod@example.com")
    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", order=0)
    base = live_server.url
    _sign_in(page, base, "e2e-prod")
    # the sign-in is 20 minutes old: a PROD decision asks for a fresh one
    key = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    session = SessionStore(session_key=key)
    session[AUTHENTICATED_AT_SESSION_KEY] = (timezone.now() - dt.timedelta(minutes=20)).isoformat()
    session.save()

    page.goto(f"{base}/approvals/{approval.pk}/")
    page.get_by_test_id("reauth-needed").wait_for()
    comment = "QA green for a week; the change window is open."
    page.get_by_label("Comment").fill(comment)
    page.get_by_role("button", name="Approve", exact=True).click()
    page.wait_for_url(f"{base}/accounts/reauthenticate/**")
    assert "change" not in page.url and "approved" not in page.url  # nothing in the URL
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Confirm", exact=True).click()

    page.wait_for_url(f"{base}/approvals/{approval.pk}/")
    confirm = page.get_by_test_id("decision-confirm")
    confirm.wait_for()
    assert "You are about to approve" in confirm.inner_text()
    assert comment in confirm.locator(".decision-comment").inner_text()
    assert "kept" in page.get_by_test_id("draft-restored").inner_text()
    assert Decision.objects.count() == 0  # the person still confirms
    screenshot(page, "approvals-prod-after-re-sign-in")
    confirm.get_by_role("button", name="Confirm: approve").click()
    page.get_by_test_id("delivery-state").wait_for()
    decision = Decision.objects.get()
    assert (decision.status, decision.comment) == ("approved", comment)
