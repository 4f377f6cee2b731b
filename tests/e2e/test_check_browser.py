"""The approval page's "Automated check" section in a browser, wide and narrow: the failed
rule with its numbers readable, nothing overflowing (screenshots in docs/screenshots/)."""

from __future__ import annotations

import pytest

from approvals import services
from core.roles import Role
from tests.approvals.factories import ApprovalRequestFactory
from tests.approvals.test_check import fraud_models, received
from tests.e2e.test_registry_browse import NARROW, _no_page_overflow
from tests.e2e.test_sign_in import _sign_in
from tests.pipelines.factories import RunStageFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_the_automated_check_section_wide_and_narrow(page, live_server, make_user, screenshot):
    data = fraud_models()
    approval = ApprovalRequestFactory(model_version=data[2], environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", order=0)
    services.check_evaluate(request_id=received(data, 2, run=approval.run).pk)
    make_user(Role.APPROVER, username="e2e-approver")
    _sign_in(page, live_server.url, "e2e-approver")
    page.goto(f"{live_server.url}/approvals/{approval.pk}/")
    section = page.get_by_test_id("automated-check")
    assert section.is_visible()
    assert "worse by 0.03" in section.inner_text()
    section.scroll_into_view_if_needed()
    screenshot(page, "approval-automated-check-1280")
    page.set_viewport_size(NARROW)
    page.goto(f"{live_server.url}/approvals/{approval.pk}/")
    assert _no_page_overflow(page)
    screenshot(page, "approval-automated-check-390")
