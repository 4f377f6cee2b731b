"""What approvals put on each role's home page, and the Approvals item of the navigation with
its count of pending approvals."""

import datetime as dt

import pytest
from bs4 import BeautifulSoup
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalStatus, OutboxMessage, OutboxState
from core.roles import Role
from tests.approvals.factories import ApprovalRequestFactory

pytestmark = pytest.mark.django_db


def _soup(response):
    return BeautifulSoup(response.content, "html.parser")


def _card(response, key):
    return _soup(response).select_one(f"[data-card={key}]")


def _nav(response) -> dict[str, object]:
    return {
        a.find(string=True, recursive=False).strip(): a
        for a in _soup(response).select("#portal-nav .nav-link")
    }


def _ago(**kwargs):
    return timezone.now() - dt.timedelta(**kwargs)


def test_approvers_see_the_approvals_item_with_the_pending_count(role_client, client):
    ApprovalRequestFactory()
    ApprovalRequestFactory(environment_name="PROD")
    ApprovalRequestFactory(status=ApprovalStatus.APPROVED, ado_status=ApprovalStatus.APPROVED)

    nav = _nav(role_client(Role.APPROVER).get("/"))
    badge = nav["Approvals"].select_one("[data-testid=nav-badge]")
    assert badge.get_text(" ", strip=True) == "2 pending approvals"
    assert badge.select_one(".visually-hidden").get_text(strip=True) == "pending approvals"
    client.logout()

    manager_nav = _nav(role_client(Role.MANAGER).get("/"))
    assert manager_nav["Approvals"].select_one("[data-testid=nav-badge]") is None
    client.logout()
    assert "Approvals" in _nav(role_client(Role.ADMIN).get("/"))
    client.logout()
    assert "Approvals" not in _nav(role_client(Role.DATA_SCIENTIST).get("/"))


def test_no_badge_when_nothing_waits_and_the_item_is_active_on_approval_pages(role_client):
    client = role_client(Role.APPROVER)
    assert _nav(client.get("/"))["Approvals"].select_one("[data-testid=nav-badge]") is None
    approval = ApprovalRequestFactory()
    item = _nav(client.get(f"/approvals/{approval.pk}/"))["Approvals"]
    assert "active" in item["class"] and item["aria-current"] == "page"


def test_the_approvers_cards_list_what_waits_what_they_decided_and_delivery_problems(
    make_user, client
):
    me = make_user(Role.APPROVER)
    client.force_login(me)
    old = ApprovalRequestFactory(created_on=_ago(days=2))
    new = ApprovalRequestFactory(environment_name="PROD", created_on=_ago(hours=1))
    decided = ApprovalRequestFactory(created_on=_ago(hours=3))
    decision = services.approval_decide(approval_id=decided.pk, user=me, status="approved")
    failed_on = ApprovalRequestFactory()
    failed = services.approval_decide(approval_id=failed_on.pk, user=me, status="approved")
    OutboxMessage.objects.filter(pk=failed.outbox.pk).update(
        state=OutboxState.FAILED, last_error="ADO no longer has this approval"
    )

    response = client.get("/")
    waiting = _card(response, "approvals-waiting")
    ids = [int(li["data-approval"]) for li in waiting.select("li[data-approval]")]
    assert ids == [old.pk, new.pk]  # oldest first; the decided ones are gone
    assert waiting.select_one(f"li[data-approval='{old.pk}']")["data-overdue"] == "true"
    assert waiting.select_one(f"li[data-approval='{old.pk}'] .overdue-badge") is not None
    assert waiting.select_one(f"li[data-approval='{new.pk}']").get("data-overdue") is None
    assert waiting.select_one(".card-footer a")["href"] == "/approvals/"

    mine = _card(response, "approvals-decided")
    states = {int(li["data-decision"]): li["data-delivery"] for li in mine.select("li")}
    assert states == {decision.pk: "queued", failed.pk: "failed"}
    assert "Queued" in mine.select_one(f"li[data-decision='{decision.pk}']").get_text()

    problems = _card(response, "approvals-delivery-problems")
    assert "ADO no longer has this approval" in problems.get_text()
    assert problems.select_one("li")["data-outbox"] == str(failed.outbox.pk)


def test_a_data_scientist_sees_the_versions_waiting_for_approval(role_client):
    approval = ApprovalRequestFactory()
    card = _card(role_client(Role.DATA_SCIENTIST).get("/"), "versions-awaiting-approval")
    item = card.select_one(f"li[data-approval='{approval.pk}']")
    assert approval.version_label in item.get_text() and item.select_one("a")["href"] == (
        f"/approvals/{approval.pk}/"
    )


def test_a_manager_sees_the_approvals_waiting_over_a_day(role_client):
    overdue = ApprovalRequestFactory(created_on=_ago(days=3))
    ApprovalRequestFactory(created_on=_ago(hours=2))
    card = _card(role_client(Role.MANAGER).get("/"), "approvals-overdue")
    assert [int(li["data-approval"]) for li in card.select("li")] == [overdue.pk]
    assert card.select_one(".card-footer a")["href"] == "/approvals/?overdue=1"


def test_the_admin_sees_the_outbox_backlog_and_retries_a_failed_delivery(role_client, make_user):
    approver = make_user(Role.APPROVER)
    queued_on, failed_on = ApprovalRequestFactory(), ApprovalRequestFactory()
    services.approval_decide(approval_id=queued_on.pk, user=approver, status="approved")
    failed = services.approval_decide(approval_id=failed_on.pk, user=approver, status="approved")
    OutboxMessage.objects.filter(pk=failed.outbox.pk).update(
        state=OutboxState.FAILED, last_error="ADO refused the decision: 400"
    )

    admin = role_client(Role.ADMIN)
    card = _card(admin.get("/"), "outbox-backlog")
    backlog = " ".join(card.select_one("[data-testid=outbox-backlog]").get_text().split())
    assert backlog.startswith("1 decision waiting to be delivered") and "1 failed" in backlog
    item = card.select_one(f"li[data-outbox='{failed.outbox.pk}']")
    assert "ADO refused the decision" in item.get_text()
    form = item.select_one("form")
    assert form["action"] == f"/approvals/outbox/{failed.outbox.pk}/retry/"
    response = admin.post(form["action"], {"next": form.select_one("[name=next]")["value"]})
    assert response.status_code == 302 and response["Location"] == "/"
    failed.outbox.refresh_from_db()
    assert failed.outbox.state == OutboxState.QUEUED
    after = _card(admin.get("/"), "outbox-backlog")
    assert after.select_one("[data-testid=retry-delivery]") is None


def test_an_empty_outbox_says_so(role_client):
    card = _card(role_client(Role.ADMIN).get("/"), "outbox-backlog")
    assert "The outbox is empty" in card.select_one(".empty-state").get_text()
