"""Approval policies in a browser: the decision box of a PROD approval with a soak time in
warn mode (a warning, when it ends, the effective policy), the same in block mode (refused),
and a post-deployment sign-off closed from the inbox. Screenshots at 1280 and 390 px go to
docs/screenshots/issue-16/ when POLICY_SCREENSHOTS is set (else test-artifacts/)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalPolicy, SignOff, SignOffStatus
from core.roles import Role
from tests.approvals.factories import ApprovalRequestFactory
from tests.e2e.test_registry_browse import NARROW, OVERFLOWING, _no_page_overflow
from tests.e2e.test_sign_in import _sign_in
from tests.pipelines.factories import RunStageFactory
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "issue-16"


@pytest.fixture
def shoot(screenshot):
    def take(page, name: str):
        for width, viewport in (("1280", DESKTOP), ("390", NARROW)):
            page.set_viewport_size(viewport)
            page.wait_for_timeout(200)
            assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
            if os.environ.get("POLICY_SCREENSHOTS"):
                DOCS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(DOCS / f"{name}-{width}.png"), full_page=True)
            else:
                screenshot(page, f"{name}-{width}")
        page.set_viewport_size(DESKTOP)

    return take


def _prod_after_qa(hours_in_qa: float):
    registered = RegisteredModelFactory(name="fraud-detector")
    ModelVersionFactory(registered_model=registered, version=1, metrics={"auc": 0.90})
    version = ModelVersionFactory(registered_model=registered, version=2, metrics={"auc": 0.93})
    approval = ApprovalRequestFactory(model_version=version, environment_name="PROD")
    finished = timezone.now() - dt.timedelta(hours=hours_in_qa)
    RunStageFactory(
        run=approval.run,
        environment="QA",
        order=0,
        started_at=finished - dt.timedelta(minutes=5),
        finished_at=finished,
    )
    return approval


def test_the_decision_box_shows_a_soak_warning_then_refuses_in_block_mode(
    page, live_server, make_user, shoot
):
    make_user(Role.APPROVER, username="e2e-alice", first_name="Alice", email="alice@example.com")
    approval = _prod_after_qa(3)
    policy = ApprovalPolicy.objects.create(
        environment="PROD",
        scope="global",
        soak_hours=24,
        soak_mode="warn",
        note="PROD deployments soak a day in QA first (risk team's release rule).",
    )
    _sign_in(page, live_server.url, "e2e-alice")
    page.goto(f"{live_server.url}/approvals/{approval.pk}/")
    box = page.get_by_test_id("decision-box")
    assert "soak time ends at" in box.get_by_test_id("decision-warnings").inner_text()
    assert box.get_by_test_id("decision-form").is_visible()
    page.locator("[data-testid=effective-policy] summary").click()
    assert box.get_by_test_id("policy-soak_hours").inner_text() == "24 h (warn)"
    box.scroll_into_view_if_needed()
    shoot(page, "decision-box-soak-warning")

    policy.soak_mode = "block"
    policy.save()
    page.reload()
    gated = page.get_by_test_id("decision-gated").inner_text()
    assert "In QA for 3 h, policy 24 h; soak time ends at" in gated
    form = page.get_by_test_id("decision-form")  # only a rejection is offered
    assert form.get_by_role("button", name="Approve").count() == 0
    assert form.get_by_role("button", name="Reject").is_visible()
    shoot(page, "decision-box-soak-refused")


def test_a_signoff_is_closed_from_the_inbox(page, live_server, make_user, shoot):
    make_user(Role.APPROVER, username="e2e-bob", first_name="Bob", email="bob@example.com")
    ApprovalPolicy.objects.create(environment="PROD", scope="global", signoff_required=True)
    approval = _prod_after_qa(30)
    stage = approval.stage
    stage.state, stage.result, stage.waiting_for_approval = "completed", "succeeded", False
    stage.finished_at = timezone.now() - dt.timedelta(minutes=20)
    stage.save()
    [signoff] = services.signoffs_open(run_ids=[approval.run.pk])
    _sign_in(page, live_server.url, "e2e-bob")
    page.goto(f"{live_server.url}/approvals/")
    item = page.locator(f"[data-signoff='{signoff.pk}']")
    assert item.get_attribute("data-status") == "open"
    shoot(page, "signoff-inbox")
    item.get_by_label("Comment").fill("Latency and error rate as in QA.")
    item.get_by_role("button", name="Sign off").click()
    page.wait_for_load_state()
    signoff.refresh_from_db()
    assert signoff.status == SignOffStatus.SIGNED_OFF
    page.goto(f"{live_server.url}/approvals/{approval.pk}/")
    assert "Signed off by Bob" in page.locator(f"[data-signoff='{signoff.pk}']").inner_text()
    shoot(page, "signoff-closed")
    assert SignOff.objects.get().closed_by_name.startswith("Bob")
