"""An approver selects three pending QA requests in the inbox (the page warns when a PROD one is
ticked too), reviews them on the combined evidence screen, approves them with one comment and
reads the result per request; each decision reaches the ADO simulator as one PATCH.

The approvals are mirrored over HTTP from the simulator; delivery is driven here, as the
outbox's deliverer does it (services.outbox_deliver), over real HTTP.
"""

import datetime as dt
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from ado_simulator import AdoSimulator
from approvals import services
from approvals.models import ApprovalRequest, Decision, OutboxMessage, OutboxState
from core.roles import Role
from pipelines.models import Pipeline
from tests.approvals import conftest as approvals_fixtures
from tests.approvals.conftest import PAT, PAT_USER, mirror, wait_at
from tests.approvals.factories import ApprovalRequestFactory
from tests.e2e.test_registry_browse import NARROW, OVERFLOWING, _no_page_overflow
from tests.e2e.test_sign_in import _sign_in
from tests.pipelines.factories import PipelineFactory, PipelineRunFactory, RunStageFactory
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

project = approvals_fixtures.project
ado_client = approvals_fixtures.ado_client
fraud = approvals_fixtures.fraud
release = approvals_fixtures.release

DESKTOP = {"width": 1280, "height": 900}
WORKER_PAT = "simulator-pat"  # what a session worker process sends (portal/settings/test.py)


@pytest.fixture
def sim():
    """The simulator, accepting the test's PAT and a session worker's: if one runs in this
    session it may deliver the decisions itself."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    simulator = AdoSimulator(start=start, pats={PAT: PAT_USER, WORKER_PAT: PAT_USER}).start()
    yield simulator
    simulator.stop()


def _delivered(message, ado_client) -> OutboxMessage:
    """Deliver here, or let a session worker that took the task finish, until final."""
    deadline = time.monotonic() + 60
    while True:
        services.outbox_deliver(message_id=message.pk, client=ado_client)
        message.refresh_from_db()
        if message.state != OutboxState.QUEUED or time.monotonic() > deadline:
            return message
        time.sleep(0.2)


RELEASE_PARAMETERS = {"modelName": "fraud-detector", "modelVersion": "2", "deployTarget": "aks"}


def _shots(page, screenshot, name):
    screenshot(page, f"{name}-1280")
    page.set_viewport_size(NARROW)
    page.wait_for_timeout(200)
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    screenshot(page, f"{name}-390")
    page.set_viewport_size(DESKTOP)


def test_an_approver_selects_three_requests_and_approves_them_together(
    page, live_server, make_user, screenshot, sim, project, ado_client, fraud, release
):
    make_user(Role.APPROVER, username="e2e-bulk", first_name="Alice", email="alice@example.com")
    runs = [sim.queue_run(release, template_parameters=RELEASE_PARAMETERS) for _ in range(3)]
    ado_ids = [wait_at(sim, run, "QA") for run in runs]
    mirror(project, ado_client)
    # v1 went through QA five days ago: the champion v2 is compared with
    shipped = PipelineRunFactory(
        pipeline=Pipeline.objects.get(name="risk-fraud-detector-release"),
        model_version=fraud["v1"],
        queued_at=timezone.now() - dt.timedelta(days=5),
        parameters={"modelVersion": "1", "deployTarget": "aks"},
    )
    RunStageFactory(run=shipped, environment="QA", target="aks")
    qa = [ApprovalRequest.objects.get(ado_id=a) for a in ado_ids]
    churn = ModelVersionFactory(registered_model=RegisteredModelFactory(name="churn-predictor"))
    churn_release = PipelineFactory(
        project=project,
        ado_id=902,
        catalog_model=churn.registered_model.catalog_model,
        kind="release",
    )
    prod = ApprovalRequestFactory(
        model_version=churn,
        run=PipelineRunFactory(pipeline=churn_release, model_version=churn, running=True),
        environment_name="PROD",
    )
    base = live_server.url

    _sign_in(page, base, "e2e-bulk")
    page.goto(f"{base}/approvals/")
    review = page.get_by_test_id("bulk-review")
    assert review.is_disabled()  # nothing ticked yet
    for approval in qa:
        page.locator(f"#select-{approval.pk}").check()
    assert review.is_enabled() and review.inner_text().strip() == "Review selected (3)"
    # a PROD request ticked too: said at once, and the button waits
    page.locator(f"#select-{prod.pk}").check()
    warning = page.get_by_test_id("bulk-mixed-warning")
    assert warning.is_visible() and "same environment" in warning.inner_text()
    assert review.is_disabled()
    _shots(page, screenshot, "bulk-inbox-mixed")
    page.locator(f"#select-{prod.pk}").uncheck()
    assert not warning.is_visible() and review.is_enabled()
    _shots(page, screenshot, "bulk-inbox-selected")

    review.click()
    page.wait_for_url(f"{base}/approvals/bulk/?ids=*")
    assert page.get_by_test_id("bulk-heading").inner_text() == "Decide 3 QA requests together"
    rows = page.locator("[data-testid=bulk-rows] > li")
    assert rows.count() == 3
    for approval in qa:
        row = page.locator(f"#bulk-{approval.pk}")
        assert row.get_attribute("data-decidable") == "true"
        assert "v2 against v1, in QA now" in row.inner_text()
        assert row.locator("tr[data-metric=auc]").get_attribute("data-verdict") == "better"
    _shots(page, screenshot, "bulk-evidence")

    page.get_by_text("Approve", exact=True).click()
    page.get_by_label("Comment").fill("All three beat v1 on AUC and log loss.")
    page.get_by_test_id("bulk-submit").click()
    page.wait_for_url(f"{base}/approvals/bulk/result/*/")
    assert page.get_by_test_id("result-heading").inner_text() == "3 of 3 approved"
    for approval in qa:
        assert page.locator(f"#result-{approval.pk}").get_attribute("data-outcome") == "decided"
    assert Decision.objects.count() == 3
    assert set(Decision.objects.values_list("comment", flat=True)) == {
        "All three beat v1 on AUC and log loss."
    }

    for message in OutboxMessage.objects.all():
        message = _delivered(message, ado_client)
        assert message.state == OutboxState.DELIVERED, message.last_error
    patched = sorted(b["approvalId"] for p in sim.patch_log for b in p["body"])
    assert patched == sorted(ado_ids)
    page.reload()
    _shots(page, screenshot, "bulk-result")


def test_a_request_a_rule_refuses_is_shown_refused_and_left_as_it_is(
    page, live_server, make_user, screenshot
):
    """Works without the simulator too: the decisions wait in the outbox."""
    make_user(Role.APPROVER, username="e2e-bulk-rita", first_name="Rita", email="rita@example.com")
    good = ApprovalRequestFactory.create_batch(2)
    hers = ApprovalRequestFactory()
    hers.run.requested_by, hers.run.requested_by_id = "Rita", "rita@example.com"
    hers.run.save()
    base = live_server.url
    _sign_in(page, base, "e2e-bulk-rita")
    page.goto(f"{base}/approvals/")
    page.get_by_label("Select all on this page").check()
    page.get_by_test_id("bulk-review").click()
    page.wait_for_url(f"{base}/approvals/bulk/?ids=*")
    assert page.get_by_test_id("bulk-decidable").inner_text() == "2"
    assert page.get_by_test_id("bulk-refused").inner_text() == "1"
    refused = page.locator(f"#bulk-{hers.pk}")
    assert refused.get_attribute("data-decidable") == "false"
    assert "You queued this run" in refused.inner_text()
    _shots(page, screenshot, "bulk-evidence-refusal")
    page.get_by_text("Reject", exact=True).click()
    page.get_by_test_id("bulk-submit").click()  # no comment: refused for the batch, in place
    error = page.get_by_test_id("bulk-error")
    assert "A rejection needs a comment" in error.inner_text()
    assert Decision.objects.count() == 0
    page.get_by_text("Approve", exact=True).click()
    page.get_by_test_id("bulk-submit").click()
    page.wait_for_url(f"{base}/approvals/bulk/result/*/")
    assert page.get_by_test_id("result-heading").inner_text() == "2 of 3 approved"
    row = page.locator(f"#result-{hers.pk}")
    assert row.get_attribute("data-outcome") == "refused"
    assert row.get_attribute("data-code") == "requester"
    assert {d.approval_id for d in Decision.objects.all()} == {a.pk for a in good}
    _shots(page, screenshot, "bulk-result-refusal")
