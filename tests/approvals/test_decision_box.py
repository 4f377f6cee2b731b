"""The decision box around its edges: the comment and chosen action kept through a PROD
re-sign-in (local password and Entra), the identity a decision goes out under, and refused
attempts from the page recorded like the API's."""

import datetime as dt
from urllib.parse import unquote

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals import selectors, services
from approvals.models import AuditAction, AuditEvent, Decision, OutboxMessage, OutboxState
from core.roles import Role
from core.sessions import AUTHENTICATED_AT_SESSION_KEY
from pipelines.models import AdoProject
from tests.approvals import test_pages
from tests.approvals.conftest import PAT_USER
from tests.approvals.factories import ApprovalRequestFactory
from tests.approvals.test_pages import _decide, _detail, _soup
from tests.factories import TEST_PASSWORD
from tests.pipelines.factories import RunStageFactory

pytestmark = pytest.mark.django_db

# The pages' fixtures: an approver (alice) signed in, a PROD request whose QA went first.
approver = test_pages.approver
approver_client = test_pages.approver_client
prod_after_qa = test_pages.prod_after_qa

HTMX = {"HTTP_HX_REQUEST": "true"}
COMMENT = "Checked the QA run & the drift report: ship it."


def _make_stale(client, minutes=30):
    session = client.session
    session[AUTHENTICATED_AT_SESSION_KEY] = (
        timezone.now() - dt.timedelta(minutes=minutes)
    ).isoformat()
    session.save()


def _assert_confirming_with_the_draft(response, status="approved", comment=COMMENT):
    box = _soup(response).select_one("#decision-box")
    confirm = box.select_one("[data-testid=decision-confirm]")
    assert confirm is not None, box.get_text(" ", strip=True)
    assert confirm.select_one("input[name=status]")["value"] == status
    assert confirm.select_one("input[name=comment]")["value"] == comment
    assert comment in confirm.select_one(".decision-comment").get_text()
    assert "kept" in box.select_one("[data-testid=draft-restored]").get_text()


# --- 1. The comment survives the re-sign-in ---------------------------------------------------


def test_a_stale_prod_decision_keeps_the_comment_and_action_through_the_password_step(
    approver_client, prod_after_qa
):
    approval = prod_after_qa
    _make_stale(approver_client)
    asked = approver_client.post(_decide(approval), {"status": "approved", "comment": COMMENT})
    assert asked.status_code == 302
    reauth = asked["Location"]
    assert reauth.startswith(reverse("reauthenticate"))
    assert "ship" not in unquote(reauth) and "approved" not in reauth  # never in a URL

    back = approver_client.post(
        reverse("reauthenticate"), {"password": TEST_PASSWORD, "next": _detail(approval)}
    )
    assert back["Location"] == _detail(approval)
    page = approver_client.get(back["Location"])
    _assert_confirming_with_the_draft(page)
    assert Decision.objects.count() == 0  # the person still confirms

    done = approver_client.post(
        _decide(approval), {"status": "approved", "comment": COMMENT, "confirm": "1"}
    )
    assert done.status_code == 302
    assert Decision.objects.get().comment == COMMENT
    # the draft is used once: the page no longer offers it
    assert (
        _soup(approver_client.get(_detail(approval))).select_one("[data-testid=draft-restored]")
        is None
    )


def test_an_htmx_reject_is_kept_too_and_coming_back_unconfirmed_refills_the_form(
    approver_client, prod_after_qa
):
    approval = prod_after_qa
    _make_stale(approver_client)
    asked = approver_client.post(
        _decide(approval), {"status": "rejected", "comment": "Latency doubled"}, **HTMX
    )
    assert asked["HX-Redirect"].startswith(reverse("reauthenticate"))
    assert "Latency" not in unquote(asked["HX-Redirect"])
    # "Cancel" on the password page: back without a fresh sign-in, the comment is still there
    page = _soup(approver_client.get(_detail(approval)))
    assert page.select_one("#decision-comment").get_text() == "Latency doubled"
    assert page.select_one("[data-testid=draft-restored]") is not None


def test_a_draft_of_another_approval_is_not_restored_here(approver_client, prod_after_qa):
    _make_stale(approver_client)
    approver_client.post(_decide(prod_after_qa), {"status": "approved", "comment": COMMENT})
    other = ApprovalRequestFactory()
    page = _soup(approver_client.get(_detail(other)))
    assert page.select_one("#decision-comment").get_text() == ""
    assert page.select_one("[data-testid=draft-restored]") is None


def test_the_entra_round_trip_keeps_the_comment_and_action(client, entra_on):
    from tests.portal.test_entra_signin import ann, sign_in

    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", name="QA", order=0)
    sign_in(client, entra_on, **ann())
    _make_stale(client, 20)

    asked = client.post(_decide(approval), {"status": "approved", "comment": COMMENT})
    to_entra = client.get(asked["Location"])
    authorize = client.get(to_entra["Location"])
    assert "ship" not in unquote(authorize["Location"])
    back = client.get(reverse("entra-callback"), entra_on.follow(authorize["Location"]))
    assert back["Location"] == _detail(approval)
    _assert_confirming_with_the_draft(client.get(back["Location"]))


# --- 4. Which identity the decision goes out under ----------------------------------------------


def test_a_local_account_is_told_ado_records_the_portals_identity(approver_client, approver):
    """Until a delivery taught the portal its ADO name, it says "the portal's own identity";
    after one, it names it."""
    approval = ApprovalRequestFactory()
    help_text = _soup(approver_client.get(_detail(approval))).select_one("[data-testid=sent-as]")
    text = " ".join(help_text.get_text(" ").split())
    assert "the portal's own Azure DevOps identity" in text
    assert "your name" in text and "comment" in text
    assert "with your name" not in text

    earlier = ApprovalRequestFactory()
    decision = services.approval_decide(approval_id=earlier.pk, user=approver, status="approved")
    OutboxMessage.objects.filter(pk=decision.outbox.pk).update(
        state=OutboxState.DELIVERED,
        delivered_at=timezone.now(),
        ado_outcome={"identity": "portal", "actual_approver": "portal-demo@example.com"},
    )
    confirm = approver_client.post(_decide(approval), {"status": "approved"})
    sent_as = _soup(confirm).select_one("[data-testid=decision-confirm] [data-testid=sent-as]")
    assert "portal-demo@example.com" in sent_as.get_text()
    # and after deciding, the box still says whom ADO records
    done = approver_client.post(_decide(approval), {"status": "approved", "confirm": "1"}, **HTMX)
    after = _soup(done).select_one("#decision-box [data-testid=sent-as]")
    assert "portal-demo@example.com" in after.get_text()


def test_before_any_delivery_the_page_names_the_identity_the_sync_read(approver_client, waiting_qa):
    """The project's sync asked ADO whom the portal's PAT is (connectionData), so even the
    project's first approval names the identity its decision goes out under."""
    assert not OutboxMessage.objects.exists()
    assert waiting_qa.project.service_identity == PAT_USER
    page = _soup(approver_client.get(_detail(waiting_qa)))
    text = " ".join(page.select_one("[data-testid=sent-as]").get_text(" ").split())
    assert f"the portal's own Azure DevOps identity ( {PAT_USER} )" in text


def test_the_name_ado_showed_at_a_delivery_wins_over_the_recorded_one(approver_client, approver):
    approval = ApprovalRequestFactory()
    AdoProject.objects.filter(pk=approval.project_id).update(service_identity="Recorded Name")
    assert selectors.portal_identity_name(approval.project_id) == "Recorded Name"
    earlier = ApprovalRequestFactory(run=approval.run)
    decision = services.approval_decide(approval_id=earlier.pk, user=approver, status="approved")
    OutboxMessage.objects.filter(pk=decision.outbox.pk).update(
        state=OutboxState.DELIVERED,
        delivered_at=timezone.now(),
        ado_outcome={"identity": "portal", "actual_approver": "Shown At Delivery"},
    )
    assert selectors.portal_identity_name(approval.project_id) == "Shown At Delivery"
    sent_as = _soup(approver_client.get(_detail(approval))).select_one("[data-testid=sent-as]")
    assert "Shown At Delivery" in sent_as.get_text() and "Recorded" not in sent_as.get_text()


def test_an_entra_user_is_told_ado_records_their_own_identity(client, entra_on):
    from tests.portal.test_entra_signin import ann, sign_in

    approval = ApprovalRequestFactory()
    sign_in(client, entra_on, **ann())
    sent_as = _soup(client.get(_detail(approval))).select_one("[data-testid=sent-as]")
    text = " ".join(sent_as.get_text(" ").split())
    assert "your own Microsoft identity" in text and "ann@contoso.test" in text
    assert "portal's own" not in text


# --- 5. Refusals from the page are recorded as the API's are -----------------------------------


def _refusals():
    return list(AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED).order_by("pk"))


def test_a_reject_without_comment_on_the_page_is_recorded_like_the_apis(approver_client, approver):
    approval = ApprovalRequestFactory()
    page = approver_client.post(_decide(approval), {"status": "rejected", "comment": " "})
    assert page.status_code == 400
    api = approver_client.post(
        reverse("api:approvals:approval-decision", kwargs={"pk": approval.pk}),
        {"status": "rejected", "comment": ""},
        content_type="application/json",
    )
    assert api.status_code == 400
    web, rest = _refusals()
    assert (web.detail["code"], web.detail["via"]) == ("comment_required", "web")
    assert (rest.detail["code"], rest.detail["via"]) == ("comment_required", "api")
    assert web.message == rest.message and web.actor_id == approver.pk
    assert web.approval_id == approval.pk


def test_a_refusal_at_the_first_step_is_recorded(approver_client, approver):
    approval = ApprovalRequestFactory()
    approval.run.requested_by_id = approver.email
    approval.run.save()
    asked = approver_client.post(_decide(approval), {"status": "approved"})
    assert asked.status_code == 403
    (refusal,) = _refusals()
    assert refusal.detail == {"code": "requester", "status": "approved", "via": "web"}


@pytest.mark.parametrize("role", [Role.MANAGER, None], ids=["manager", "no-role"])
def test_a_wrong_roles_403_on_the_page_is_recorded_like_the_apis(role, client, make_user):
    approval = ApprovalRequestFactory()
    user = make_user(role) if role else make_user()
    client.force_login(user)
    page = client.post(_decide(approval), {"status": "approved", "confirm": "1"})
    assert page.status_code == 403
    assert "Only people with the approver role can decide." in page.content.decode()
    api = client.post(
        reverse("api:approvals:approval-decision", kwargs={"pk": approval.pk}),
        {"status": "approved"},
        content_type="application/json",
    )
    assert api.status_code == 403
    web, rest = _refusals()
    assert (web.detail["code"], web.detail["via"]) == ("not_an_approver", "web")
    assert (rest.detail["code"], rest.detail["via"]) == ("not_an_approver", "api")
    assert web.actor_id == rest.actor_id == user.pk
    assert web.approval_id == rest.approval_id == approval.pk
    assert Decision.objects.count() == 0
