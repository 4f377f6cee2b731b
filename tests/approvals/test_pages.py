"""The approvals pages: inbox, approval detail (evidence, decision box, delivery state),
decisions through the page with their refusals, re-authentication, outbox retry, the audit
trail and its CSV, and the sections approvals add to the registry's pages."""

import csv
import datetime as dt
import io
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse
from django.utils import timezone

from approvals import services
from approvals.models import (
    ApprovalStatus,
    AuditAction,
    AuditEvent,
    DecidedIn,
    Decision,
    OutboxMessage,
    OutboxState,
)
from approvals.views import inbox_page
from core.roles import Role
from core.sessions import AUTHENTICATED_AT_SESSION_KEY
from tests.approvals.factories import ApprovalRequestFactory
from tests.factories import TEST_PASSWORD
from tests.pipelines.factories import PipelineFactory, PipelineRunFactory, RunStageFactory
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db

INBOX = "/approvals/"
NOW = timezone.now()
HTMX = {"HTTP_HX_REQUEST": "true"}


def ago(**kwargs):
    return NOW - dt.timedelta(**kwargs)


def _soup(response):
    return BeautifulSoup(response.content.decode().replace("<wbr>", ""), "html.parser")


def _text(response) -> str:
    return " ".join(_soup(response).get_text(" ").split())


def _rows(response) -> list[int]:
    return [int(tr["data-approval"]) for tr in _soup(response).select("tr[data-approval]")]


def _detail(approval) -> str:
    return reverse("approvals:detail", kwargs={"pk": approval.pk})


def _decide(approval) -> str:
    return reverse("approvals:decide", kwargs={"pk": approval.pk})


@pytest.fixture
def approver(make_user):
    return make_user(Role.APPROVER, username="alice", email="alice@example.com")


@pytest.fixture
def approver_client(client, approver):
    client.force_login(approver)  # fires user_logged_in: the session's sign-in time is now
    return client


def _decided(**kwargs):
    """An approval decided in ADO an hour after it was opened."""
    created = kwargs.pop("created_on", ago(days=2))
    return ApprovalRequestFactory(
        status=ApprovalStatus.APPROVED,
        ado_status=ApprovalStatus.APPROVED,
        created_on=created,
        decided_at=created + dt.timedelta(hours=1),
        decided_by="Olga Approver",
        decided_in=DecidedIn.ADO,
        **kwargs,
    )


# --- Inbox -------------------------------------------------------------------------------------


@pytest.mark.sqlite
def test_the_inbox_lists_pending_oldest_first_with_prod_rows_marked(approver_client):
    qa = ApprovalRequestFactory(created_on=ago(hours=3), instructions="Check the AUC. " * 20)
    prod = ApprovalRequestFactory(environment_name="PROD", created_on=ago(hours=1))
    _decided()

    response = approver_client.get(INBOX)
    assert response.status_code == 200
    assert _rows(response) == [qa.pk, prod.pk]
    soup = _soup(response)
    assert soup.select_one("[data-testid=tab-count-pending]").get_text() == "2"
    assert soup.select_one("[data-testid=tab-count-decided]").get_text() == "1"
    prod_row = soup.select_one(f"tr#approval-{prod.pk}")
    assert "approval-prod" in prod_row["class"] and prod_row["data-environment"] == "PROD"
    assert prod_row.select_one(".environment-badge").get_text() == "PROD"
    assert "approval-prod" not in soup.select_one(f"tr#approval-{qa.pk}").get("class", [])
    qa_row = soup.select_one(f"tr#approval-{qa.pk}")
    instructions = qa_row.select_one(".instructions-cell span")
    assert len(instructions.get_text()) <= 80 and instructions["title"].startswith("Check the AUC")
    assert qa_row.select_one("a")["href"] == _detail(qa)
    cells = [td.get_text(" ", strip=True) for td in qa_row.select("td")]
    assert cells[2] == qa.version_label and cells[3] == "Release Bot" and cells[5] == "0 / 1"
    assert "As of" in soup.select_one("[data-testid=freshness]").get_text()


def test_a_failing_poll_gives_users_a_short_reason_and_operators_the_details(role_client):
    from approvals.models import ApprovalSync
    from tests.pipelines.factories import AdoProjectFactory

    project = AdoProjectFactory(name="broken")
    ApprovalSync.objects.create(
        project=project,
        last_error_at=timezone.now(),
        last_error="401 Client Error: Unauthorized for url: https://dev.azure.com/contoso/x",
    )
    banner = _soup(role_client(Role.APPROVER).get(INBOX)).select_one('[data-project="broken"]')
    text = " ".join(banner.get_text().split())
    assert "Azure DevOps refused the credentials the portal uses" in text
    assert "contoso" not in text and not banner.select("details")
    banner = _soup(role_client(Role.ADMIN).get(INBOX)).select_one('[data-project="broken"]')
    assert "Unauthorized for url" in banner.select_one("details code").get_text()
    admin_link = banner.select_one("a[data-testid=source-admin]")
    assert admin_link["href"] == reverse("admin:pipelines_adoproject_change", args=[project.pk])


def test_the_decided_tab_shows_the_history_with_who_and_outcome(approver_client):
    ApprovalRequestFactory()
    decided = _decided()
    response = approver_client.get(INBOX, {"tab": "decided"})
    assert _rows(response) == [decided.pk]
    row = _soup(response).select_one(f"tr#approval-{decided.pk}")
    assert "approved" in row.select_one(".status-badge").get_text()
    assert "by Olga Approver in ADO" in row.get_text(" ", strip=True)
    assert _soup(response).select_one("a[data-tab=decided]")["aria-current"] == "page"


@pytest.mark.sqlite
def test_overdue_requests_are_marked_and_filterable(approver_client):
    fresh = ApprovalRequestFactory(created_on=ago(hours=2))
    old = ApprovalRequestFactory(created_on=ago(days=2))
    response = approver_client.get(INBOX)
    soup = _soup(response)
    assert soup.select_one(f"tr#approval-{old.pk}")["data-overdue"] == "true"
    assert soup.select_one(f"tr#approval-{old.pk} .overdue-badge") is not None
    assert soup.select_one(f"tr#approval-{fresh.pk}").get("data-overdue") is None
    assert _rows(approver_client.get(INBOX, {"overdue": "1"})) == [old.pk]
    assert _rows(approver_client.get(INBOX, {"age": "1h"})) == [old.pk, fresh.pk]
    assert _rows(approver_client.get(INBOX, {"age": "1d"})) == [old.pk]


@pytest.mark.sqlite
def test_filters_by_environment_model_and_team(approver_client):
    qa = ApprovalRequestFactory()
    prod = ApprovalRequestFactory(environment_name="PROD")
    other_team = ApprovalRequestFactory()
    other_team.catalog_model.team = "growth"
    other_team.catalog_model.save()

    assert _rows(approver_client.get(INBOX, {"environment": "PROD"})) == [prod.pk]
    assert _rows(approver_client.get(INBOX, {"model": qa.catalog_model.name})) == [qa.pk]
    assert _rows(approver_client.get(INBOX, {"team": "growth"})) == [other_team.pk]
    assert set(_rows(approver_client.get(INBOX, {"team": "risk"}))) == {qa.pk, prod.pk}
    # the filter state lives in the URL and is shown back
    soup = _soup(approver_client.get(INBOX, {"environment": "PROD", "team": "risk"}))
    assert soup.select_one("#id_environment option[selected]")["value"] == "PROD"
    assert soup.select_one("#id_team option[selected]")["value"] == "risk"


def test_an_unknown_filter_value_is_shown_and_ignored_not_a_crash(approver_client):
    ApprovalRequestFactory()
    response = approver_client.get(INBOX, {"environment": "STAGING", "age": "1y", "tab": "x"})
    assert response.status_code == 200
    assert _soup(response).select_one("[data-testid=filter-errors]") is not None
    assert len(_rows(response)) == 1


@pytest.mark.sqlite
def test_sorting_by_column_keeps_the_filters(approver_client):
    a = ApprovalRequestFactory(created_on=ago(hours=3))
    b = ApprovalRequestFactory(created_on=ago(hours=2), environment_name="PROD")
    assert _rows(approver_client.get(INBOX, {"sort": "-waiting"})) == [b.pk, a.pk]
    assert _rows(approver_client.get(INBOX, {"sort": "-environment"})) == [a.pk, b.pk]
    response = approver_client.get(INBOX, {"sort": "waiting", "environment": "PROD"})
    header = _soup(response).select_one("th[aria-sort]")
    assert header["aria-sort"] == "ascending" and "Waiting" in header.get_text()
    link = parse_qs(urlsplit(header.select_one("a")["href"]).query)
    assert link == {"sort": ["-waiting"], "environment": ["PROD"]}


def test_pagination_counts_and_pages(approver_client, monkeypatch):
    monkeypatch.setattr(inbox_page, "APPROVALS_PER_PAGE", 2)
    made = [ApprovalRequestFactory(created_on=ago(hours=5 - i)) for i in range(3)]
    first = approver_client.get(INBOX)
    assert _rows(first) == [made[0].pk, made[1].pk]
    text = _text(first)
    assert "3 pending approvals" in text and "Showing 1\u20132 of 3" in text
    second = approver_client.get(INBOX, {"page": 2})
    assert _rows(second) == [made[2].pk]
    assert approver_client.get(INBOX, {"page": "nonsense"}).status_code == 200


def test_the_empty_inbox_says_what_will_appear(approver_client):
    response = approver_client.get(INBOX)
    empty = _soup(response).select_one("[data-testid=empty-state]").get_text(" ", strip=True)
    assert "Nothing is waiting for an approval" in empty and "QA or PROD" in empty
    filtered = approver_client.get(INBOX, {"environment": "PROD"})
    assert "No pending approval matches these filters" in _text(filtered)


def test_htmx_filtering_swaps_only_the_results(approver_client):
    ApprovalRequestFactory(environment_name="PROD")
    response = approver_client.get(
        INBOX, {"environment": "PROD"}, HTTP_HX_TARGET="approval-results", **HTMX
    )
    body = response.content.decode()
    assert "<html" not in body and 'data-testid="approval-table"' in body
    assert response["Vary"].count("HX-Request") == 1


def test_data_scientists_may_read_but_see_no_audit_link(role_client):
    ApprovalRequestFactory()
    response = role_client(Role.DATA_SCIENTIST).get(INBOX)
    assert response.status_code == 200
    assert _soup(response).find("a", string=lambda s: s and "Audit trail" in s) is None


# --- Detail: evidence ----------------------------------------------------------------------------


@pytest.fixture
def fraud_v2_at_qa():
    """fraud-detector v1 is in QA; v2 (better AUC, worse log loss) asks to go there."""
    rm = RegisteredModelFactory(name="fraud-detector")
    v1 = ModelVersionFactory(
        registered_model=rm, version=1, metrics={"auc": 0.90, "log_loss": 0.30}
    )
    v2 = ModelVersionFactory(
        registered_model=rm,
        version=2,
        metrics={"auc": 0.93, "log_loss": 0.35, "f1": 0.8},
        tags={"dataset_version": "2025-03", "owner": "risk"},
    )
    release = PipelineFactory(catalog_model=rm.catalog_model, kind="release")
    shipped = PipelineRunFactory(pipeline=release, model_version=v1, queued_at=ago(days=5))
    RunStageFactory(run=shipped, environment="QA", target="aks")
    training = PipelineFactory(catalog_model=rm.catalog_model, kind="training")
    PipelineRunFactory(pipeline=training, model_version=v2, queued_at=ago(days=1))
    return ApprovalRequestFactory(model_version=v2, created_on=ago(hours=2))


def test_the_detail_shows_metrics_against_the_champion_with_verdicts(
    approver_client, fraud_v2_at_qa
):
    response = approver_client.get(_detail(fraud_v2_at_qa))
    assert response.status_code == 200
    soup = _soup(response)
    header = soup.select_one("[data-testid=approval-header]").get_text(" ", strip=True)
    assert "fraud-detector v2" in header and "QA" in header and "pending" in header
    assert "Release Bot" in header and "Expires" in header
    metrics = soup.select_one("[data-testid=metrics]")
    assert "v2 against v1, in QA now (AKS)" in " ".join(metrics.get_text(" ").split())
    rows = {tr["data-metric"]: tr for tr in metrics.select("tr[data-metric]")}
    assert rows["auc"]["data-verdict"] == "better"
    assert rows["auc"].select("td")[2].get_text(strip=True) == "+0.03"
    assert rows["log_loss"]["data-verdict"] == "worse"  # lower is better, and it went up
    assert "lower is better" in rows["log_loss"].get_text()
    assert rows["log_loss"].select_one(".status-badge").get_text() == "worse"
    assert rows["f1"]["data-verdict"] == ""  # the champion has no f1: nothing to compare
    lineage = soup.select_one("[data-testid=lineage]").get_text(" ", strip=True)
    assert "dataset_version" in lineage and "owner" not in lineage
    assert soup.select_one("[data-testid=training-run]") is not None
    assert soup.select_one("[data-testid=instructions]") is not None
    assert soup.select_one("[data-testid=qa-outcome]") is None  # QA: no earlier stage
    assert soup.select("[data-testid=stage-timeline] li")
    assert "Approvers" in soup.select_one("[data-testid=approvers]").get_text()


def test_a_prod_request_shows_the_qa_outcome_of_the_same_version(approver_client):
    approval = ApprovalRequestFactory(environment_name="PROD")
    qa_stage = RunStageFactory(run=approval.run, environment="QA", order=0)
    qa_request = _decided(
        model_version=approval.model_version,
        run=approval.run,
        stage=qa_stage,
        environment_name="QA",
    )
    soup = _soup(approver_client.get(_detail(approval)))
    qa = soup.select_one("[data-testid=qa-outcome]")
    assert "succeeded" in qa.get_text() and f"#{qa_request.pk}" in qa.get_text()
    assert "approval-header-prod" in soup.select_one("[data-testid=approval-header]")["class"]


def test_an_unregistered_rule_based_model_shows_its_scoring_runs(approver_client):
    rules = CatalogModelFactory(name="credit-limit-rules", kind="rule_based")
    approval = ApprovalRequestFactory(model_version=None, catalog_model=rules)
    scoring = PipelineFactory(catalog_model=approval.catalog_model, kind="scoring")
    run = PipelineRunFactory(pipeline=scoring)
    soup = _soup(approver_client.get(_detail(approval)))
    assert soup.select_one("[data-testid=metrics]") is None
    assert soup.select_one(f"[data-testid=scoring-runs] [data-run='{run.pk}']") is not None


def test_an_unknown_approval_is_a_404(approver_client):
    assert approver_client.get("/approvals/999999/").status_code == 404


# --- Deciding ------------------------------------------------------------------------------------


def test_approving_a_qa_request_asks_to_confirm_then_queues_the_delivery(approver_client):
    approval = ApprovalRequestFactory()
    detail = _soup(approver_client.get(_detail(approval)))
    rules = {li["data-rule"]: li["data-ok"] for li in detail.select("[data-rule]")}
    assert rules["requester"] == "true" and rules["approver_role"] == "true"
    assert detail.select_one("[data-testid=decision-form] button[value=approved]")

    asked = approver_client.post(_decide(approval), {"status": "approved", "comment": "Fine"})
    assert asked.status_code == 200
    confirm = _soup(asked).select_one("[data-testid=decision-confirm]")
    assert "You are about to approve the deployment of" in confirm.get_text(" ", strip=True)
    assert Decision.objects.count() == 0  # nothing recorded before the confirmation

    done = approver_client.post(
        _decide(approval), {"status": "approved", "comment": "Fine", "confirm": "1"}
    )
    assert done.status_code == 302 and done["Location"] == _detail(approval)
    decision = Decision.objects.get()
    assert decision.status == "approved" and decision.via == "web"
    assert decision.outbox.state == OutboxState.QUEUED
    assert decision.outbox.payload[0]["approvalId"] == approval.ado_id
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED

    page = approver_client.get(done["Location"])
    assert "The decision is on its way to Azure DevOps" in _text(page)
    box = _soup(page).select_one("[data-testid=decision-box]")
    assert box["hx-trigger"] == "every 2s"  # polls while the message is queued
    assert box.select_one("[data-testid=delivery-state]")["data-state"] == "queued"


def test_the_htmx_decision_swaps_the_box_and_stops_polling_once_delivered(approver_client):
    approval = ApprovalRequestFactory()
    asked = approver_client.post(_decide(approval), {"status": "approved"}, **HTMX)
    assert "<html" not in asked.content.decode()
    assert _soup(asked).select_one("[data-testid=decision-confirm]") is not None
    done = approver_client.post(_decide(approval), {"status": "approved", "confirm": "1"}, **HTMX)
    assert done.status_code == 200
    box = _soup(done).select_one("#decision-box")
    assert box["hx-get"] == reverse("approvals:decision-box", kwargs={"pk": approval.pk})
    assert "Queued" in box.select_one("[data-testid=delivery-state]").get_text()

    OutboxMessage.objects.update(state=OutboxState.DELIVERED, delivered_at=timezone.now())
    polled = approver_client.get(box["hx-get"], **HTMX)
    box = _soup(polled).select_one("#decision-box")
    assert box.get("hx-trigger") is None
    assert "Delivered" in box.select_one("[data-testid=delivery-state]").get_text()


def test_cancel_on_the_confirmation_returns_to_the_form_with_the_comment(approver_client):
    approval = ApprovalRequestFactory()
    back = approver_client.post(
        _decide(approval), {"status": "rejected", "comment": "Not yet", "edit": "1"}, **HTMX
    )
    assert _soup(back).select_one("#decision-comment").get_text() == "Not yet"
    assert Decision.objects.count() == 0


def test_rejecting_without_a_comment_is_a_form_error(approver_client):
    approval = ApprovalRequestFactory()
    response = approver_client.post(_decide(approval), {"status": "rejected", "comment": " "})
    assert response.status_code == 400
    error = _soup(response).select_one("[data-testid=comment-error]").get_text()
    assert error == "A rejection needs a comment saying why."
    confirmed = approver_client.post(_decide(approval), {"status": "rejected", "confirm": "1"})
    assert confirmed.status_code == 400 and Decision.objects.count() == 0
    assert approver_client.post(_decide(approval), {"status": "maybe"}).status_code == 400


def test_the_requester_of_the_run_is_refused_with_the_separation_of_duties_rule(
    approver_client, approver
):
    approval = ApprovalRequestFactory()
    approval.run.requested_by_id = approver.email.upper()
    approval.run.save()

    detail = _soup(approver_client.get(_detail(approval)))
    assert detail.select_one("[data-testid=decision-form]") is None
    blocked = detail.select_one("[data-testid=decision-blocked]").get_text(" ", strip=True)
    assert "You queued this run, so you cannot approve it" in blocked
    assert detail.select_one("[data-rule=requester]")["data-ok"] == "false"

    asked = approver_client.post(_decide(approval), {"status": "approved"})
    assert asked.status_code == 403
    assert "You queued this run" in _soup(asked).select_one("[data-testid=decision-error]").text
    forced = approver_client.post(_decide(approval), {"status": "approved", "confirm": "1"})
    assert forced.status_code == 403
    assert "separation of duties" in _soup(forced).select_one("[data-testid=decision-error]").text
    assert Decision.objects.count() == 0
    # both attempts are recorded: the first step's and the confirmed one's
    refusals = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED)
    assert [(r.actor_id, r.detail["code"]) for r in refusals] == [(approver.pk, "requester")] * 2


def test_a_decision_on_a_closed_request_is_a_409_with_its_reason(approver_client):
    approval = _decided()
    response = approver_client.post(_decide(approval), {"status": "approved", "confirm": "1"})
    assert response.status_code == 409
    assert "already approved in Azure DevOps" in _text(response)


def test_the_page_answers_a_refusal_with_the_same_status_as_the_api(approver_client, make_user):
    """The page and the API share the service's refusal (a second portal approver: 409)."""
    from approvals import services

    approval = ApprovalRequestFactory(min_required_approvers=2)
    bob = make_user(Role.APPROVER, username="bob", email="bob@example.com")
    services.approval_decide(approval_id=approval.pk, user=bob, status="approved")
    for data in ({"status": "approved"}, {"status": "approved", "confirm": "1"}):
        response = approver_client.post(_decide(approval), data)
        assert response.status_code == 409
        assert "already decided here" in _text(response)


def test_a_non_approver_sees_no_buttons_and_cannot_post(role_client):
    approval = ApprovalRequestFactory()
    manager = role_client(Role.MANAGER)
    soup = _soup(manager.get(_detail(approval)))
    assert soup.select_one("[data-testid=decision-form]") is None
    assert soup.select_one("[data-testid=not-an-approver]") is not None
    response = manager.post(_decide(approval), {"status": "approved", "confirm": "1"})
    assert response.status_code == 403
    assert Decision.objects.count() == 0


@pytest.fixture
def prod_after_qa():
    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", order=0)
    return approval


def _sign_in_minutes_ago(client, minutes):
    session = client.session
    session[AUTHENTICATED_AT_SESSION_KEY] = (
        timezone.now() - dt.timedelta(minutes=minutes)
    ).isoformat()
    session.save()


def test_a_prod_decision_with_a_stale_sign_in_goes_through_reauthentication(
    approver_client, prod_after_qa
):
    approval = prod_after_qa
    _sign_in_minutes_ago(approver_client, 30)
    detail = _soup(approver_client.get(_detail(approval)))
    assert detail.select_one("[data-testid=reauth-needed]") is not None
    assert detail.select_one("[data-rule=qa_first]")["data-ok"] == "true"

    response = approver_client.post(_decide(approval), {"status": "approved"})
    reauth = reverse("reauthenticate")
    assert response.status_code == 302
    assert response["Location"] == f"{reauth}?next=%2Fapprovals%2F{approval.pk}%2F"
    # the confirmed POST is sent to re-authenticate too, and nothing is recorded
    forced = approver_client.post(_decide(approval), {"status": "approved", "confirm": "1"})
    assert forced.status_code == 302 and forced["Location"].startswith(reauth)
    assert Decision.objects.count() == 0
    htmx = approver_client.post(_decide(approval), {"status": "approved"}, **HTMX)
    assert htmx["HX-Redirect"].startswith(reauth)

    page = approver_client.get(response["Location"])
    assert page.status_code == 200 and "Confirm it is you" in _text(page)
    back = approver_client.post(
        reauth, {"password": TEST_PASSWORD, "next": f"/approvals/{approval.pk}/"}
    )
    assert back.status_code == 302 and back["Location"] == _detail(approval)

    done = approver_client.post(_decide(approval), {"status": "approved", "confirm": "1"})
    assert done.status_code == 302
    assert Decision.objects.get().approval_id == approval.pk


def test_reauthentication_rejects_a_wrong_password_and_an_unsafe_next(
    approver_client, prod_after_qa
):
    _sign_in_minutes_ago(approver_client, 30)
    before = approver_client.session[AUTHENTICATED_AT_SESSION_KEY]
    reauth = reverse("reauthenticate")
    wrong = approver_client.post(reauth, {"password": "not it", "next": "/approvals/"})
    assert wrong.status_code == 200
    assert "That password is not right" in _text(wrong)
    assert approver_client.session[AUTHENTICATED_AT_SESSION_KEY] == before

    away = approver_client.post(
        reauth, {"password": TEST_PASSWORD, "next": "https://evil.example/"}
    )
    assert away.status_code == 302 and away["Location"] == "/"
    assert approver_client.session[AUTHENTICATED_AT_SESSION_KEY] != before


def test_reauthentication_needs_a_signed_in_user(client):
    response = client.get(reverse("reauthenticate"))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- Delivery state and retry --------------------------------------------------------------------


def _failed_decision(approval, user):
    decision = services.approval_decide(approval_id=approval.pk, user=user, status="approved")
    OutboxMessage.objects.filter(pk=decision.outbox.pk).update(
        state=OutboxState.FAILED, attempts=1, last_error="ADO refused the portal's credentials"
    )
    return decision


def test_each_decision_shows_its_delivery_state_and_only_admins_may_retry(
    approver_client, approver, role_client, client
):
    approval = ApprovalRequestFactory()
    decision = _failed_decision(approval, approver)
    retry = reverse("approvals:outbox-retry", kwargs={"pk": decision.outbox.pk})

    mine = _soup(approver_client.get(_detail(approval)))
    item = mine.select_one(f"[data-decision='{decision.pk}']")
    assert item["data-delivery"] == "failed"
    assert "ADO refused the portal's credentials" in item.get_text()
    assert mine.select_one("[data-testid=retry-delivery]") is None
    assert approver_client.post(retry).status_code == 403
    client.logout()

    admin = role_client(Role.ADMIN)
    soup = _soup(admin.get(_detail(approval)))
    assert soup.select_one("[data-testid=retry-delivery]") is not None
    done = admin.post(retry, {"next": "/"})
    assert done.status_code == 302 and done["Location"] == "/"
    decision.outbox.refresh_from_db()
    assert decision.outbox.state == OutboxState.QUEUED
    assert AuditEvent.objects.filter(action=AuditAction.DELIVERY_RETRY_REQUESTED).count() == 1
    again = admin.post(retry, {"next": "https://evil.example/"})
    assert again.status_code == 409
    assert "Only a failed delivery can be retried" in _text(again)
    assert admin.post("/approvals/outbox/999999/retry/").status_code == 404


# --- Audit trail ---------------------------------------------------------------------------------


@pytest.fixture
def audit_trail(approver):
    qa = ApprovalRequestFactory()
    prod = ApprovalRequestFactory(environment_name="PROD")
    services.audit_record(
        action=AuditAction.APPROVAL_REQUESTED,
        actor_name="Release Bot",
        approval=qa,
        message="QA approval requested",
        at=ago(days=3),
    )
    services.audit_record(
        action=AuditAction.DECISION_MADE,
        actor=approver,
        approval=prod,
        message='=HYPERLINK("x") approved',
        at=ago(hours=1),
    )
    services.audit_record(
        action=AuditAction.DELIVERY_FAILED,
        actor_name="portal (delivery)",
        approval=prod,
        message="ADO answered 500",
    )
    return qa, prod


def _audit_rows(response):
    return [tr["data-action"] for tr in _soup(response).select("tr[data-event]")]


@pytest.mark.sqlite
def test_the_audit_trail_filters_and_sorts(approver_client, audit_trail):
    qa, _ = audit_trail
    audit = reverse("approvals:audit")
    assert _audit_rows(approver_client.get(audit)) == [
        "delivery.failed",
        "decision.made",
        "approval.requested",
    ]
    assert _audit_rows(approver_client.get(audit, {"action": "decision.made"})) == ["decision.made"]
    assert _audit_rows(approver_client.get(audit, {"actor": "release"})) == ["approval.requested"]
    assert len(_audit_rows(approver_client.get(audit, {"environment": "PROD"}))) == 2
    assert _audit_rows(approver_client.get(audit, {"approval": qa.pk})) == ["approval.requested"]
    assert _audit_rows(approver_client.get(audit, {"model": qa.catalog_model.name})) == [
        "approval.requested"
    ]
    day = ago(days=3).date().isoformat()
    assert _audit_rows(approver_client.get(audit, {"date_from": day, "date_to": day})) == [
        "approval.requested"
    ]
    assert _audit_rows(approver_client.get(audit, {"sort": "at"}))[0] == "approval.requested"
    bad = approver_client.get(audit, {"date_from": "2025-02-01", "date_to": "2025-01-01"})
    assert bad.status_code == 200
    assert _soup(bad).select_one("[data-testid=filter-errors]") is not None
    empty = approver_client.get(audit, {"actor": "nobody"})
    assert "No event matches these filters" in _text(empty)


def test_the_audit_csv_streams_every_filtered_row(approver_client, audit_trail):
    _, prod = audit_trail
    for url, params in [
        (reverse("approvals:audit"), {"format": "csv", "environment": "PROD"}),
        (reverse("approvals:audit-csv"), {"environment": "PROD"}),
    ]:
        response = approver_client.get(url, params)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        body = b"".join(response.streaming_content).decode()
        rows = list(csv.reader(io.StringIO(body)))
        assert rows[0] == [
            "at",
            "action",
            "actor",
            "environment",
            "model",
            "approval_id",
            "message",
            "request_id",
        ]
        assert [r[1] for r in rows[1:]] == ["delivery.failed", "decision.made"]
        made = rows[2]
        assert made[0].endswith("+00:00") and made[3] == "PROD"
        assert made[5] == str(prod.pk) and made[4] == prod.catalog_model.name
        assert made[6].startswith("'=HYPERLINK")  # a spreadsheet will not run it


def test_the_audit_trail_is_not_for_data_scientists(role_client):
    client = role_client(Role.DATA_SCIENTIST)
    assert client.get(reverse("approvals:audit")).status_code == 403
    assert client.get(reverse("approvals:audit-csv")).status_code == 403


# --- Sections on the registry's pages ------------------------------------------------------------


def test_the_version_and_model_pages_show_their_approvals(approver_client):
    approval = ApprovalRequestFactory(environment_name="PROD")
    version = approval.model_version
    rm = version.registered_model
    page = approver_client.get(
        reverse(
            "registry:version-detail",
            kwargs={"source": rm.source.name, "name": rm.name, "version": version.version},
        )
    )
    section = _soup(page).select_one("[data-testid=section-approvals]")
    row = section.select_one(f"tr[data-approval='{approval.pk}']")
    assert row["data-environment"] == "PROD" and "Review" in row.get_text()

    model_page = approver_client.get(approval.catalog_model.get_absolute_url())
    waiting = _soup(model_page).select_one("[data-testid=section-waiting-for-approval]")
    assert waiting.select_one(f"tr[data-approval='{approval.pk}']") is not None

    other = RegisteredModelFactory(name="churn-predictor")
    empty = approver_client.get(other.catalog_model.get_absolute_url())
    assert "No release of churn-predictor waits" in _text(empty)
