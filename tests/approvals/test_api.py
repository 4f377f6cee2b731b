"""The approvals API: the inbox list and its filters, one approval with its evidence and the
caller's rules, decisions (201 with the outbox row, and each refusal's status and message,
as the service decides them for the page too), the audit trail, and an admin's retry."""

import datetime as dt
import json
from urllib.parse import quote

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

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
from core.roles import Role
from core.sessions import AUTHENTICATED_AT_SESSION_KEY
from tests.approvals.factories import ApprovalRequestFactory
from tests.pipelines.factories import PipelineRunFactory, RunStageFactory
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/approvals/"
NOW = timezone.now()


def ago(**kwargs):
    return NOW - dt.timedelta(**kwargs)


def decision_url(pk) -> str:
    return f"{BASE}{pk}/decision"


@pytest.fixture
def api_as(make_user):
    """An API client signed in as ``user`` (or a fresh user holding ``roles``)."""

    def sign_in(*roles, user=None):
        client = APIClient()
        client.force_login(user or make_user(*roles))
        return client

    return sign_in


@pytest.fixture
def alice(make_user):
    return make_user(Role.APPROVER, username="alice", email="alice@example.com")


@pytest.fixture
def approval():
    """A pending QA approval of fraud-detector v2, assigned to the QA approvers group."""
    registered = RegisteredModelFactory(name="fraud-detector")
    version = ModelVersionFactory(
        registered_model=registered, version=2, metrics={"auc": 0.93, "log_loss": 0.25}
    )
    return ApprovalRequestFactory(model_version=version)


def decide(client, pk, **body):
    return client.post(decision_url(pk), body, format="json")


# --- List ----------------------------------------------------------------------------------


@pytest.fixture
def inbox():
    fraud = RegisteredModelFactory(name="fraud-detector")  # team "risk" from the registry
    churn = RegisteredModelFactory(name="churn-predictor")
    churn.catalog_model.team = "growth"
    churn.catalog_model.save()
    qa_fraud = ApprovalRequestFactory(
        model_version=ModelVersionFactory(registered_model=fraud), created_on=ago(hours=2)
    )
    prod_churn = ApprovalRequestFactory(
        model_version=ModelVersionFactory(registered_model=churn),
        environment_name="PROD",
        created_on=ago(days=3),
    )
    approved = ApprovalRequestFactory(
        model_version=ModelVersionFactory(registered_model=fraud),
        created_on=ago(days=5),
        status=ApprovalStatus.APPROVED,
        ado_status=ApprovalStatus.APPROVED,
        decided_at=ago(days=4),
        decided_by="Bob Approver",
        decided_in=DecidedIn.ADO,
    )
    rejected = ApprovalRequestFactory(
        model_version=ModelVersionFactory(registered_model=churn),
        created_on=ago(days=2),
        status=ApprovalStatus.REJECTED,
        ado_status=ApprovalStatus.REJECTED,
        decided_at=ago(days=1),
        decided_by="Bob Approver",
        decided_in=DecidedIn.ADO,
    )
    return {
        "qa_fraud": qa_fraud,
        "prod_churn": prod_churn,
        "approved": approved,
        "rejected": rejected,
    }


def test_the_list_shows_pending_oldest_first_with_the_inbox_filters(api_as, inbox):
    client = api_as(Role.APPROVER)
    response = client.get(BASE)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [r["id"] for r in body["results"]] == [inbox["prod_churn"].pk, inbox["qa_fraud"].pk]
    prod, qa = body["results"]
    assert prod["environment"] == "PROD" and prod["is_prod"] is True and prod["overdue"] is True
    assert prod["catalog_model"] == "churn-predictor" and prod["team"] == "growth"
    assert qa["is_prod"] is False and qa["overdue"] is False and qa["team"] == "risk"
    assert qa["status"] == "pending" and qa["status_label"] == "Pending"
    assert qa["approvals_so_far"] == 0 and qa["min_required_approvers"] == 1
    assert qa["requested_by"] == "Release Bot"
    assert qa["url"] == f"/approvals/{inbox['qa_fraud'].pk}/"
    version = inbox["qa_fraud"].model_version
    assert qa["model_version"] == {
        "source": "central",
        "model": "fraud-detector",
        "version": version.version,
        "url": f"/registry/sources/central/models/fraud-detector/versions/{version.version}/",
    }

    def ids(query):
        response = client.get(BASE + query)
        assert response.status_code == 200, response.json()
        return [r["id"] for r in response.json()["results"]]

    assert ids("?environment=PROD") == [inbox["prod_churn"].pk]
    assert ids("?model=fraud-detector") == [inbox["qa_fraud"].pk]
    assert ids("?team=growth") == [inbox["prod_churn"].pk]
    assert ids("?team=risk") == [inbox["qa_fraud"].pk]
    assert ids("?overdue=true") == [inbox["prod_churn"].pk]
    assert ids("?older_than=1d") == [inbox["prod_churn"].pk]
    assert ids("?q=churn") == [inbox["prod_churn"].pk]
    assert ids("?sort=-waiting") == [inbox["qa_fraud"].pk, inbox["prod_churn"].pk]
    # the decided tab: newest decision first, filterable by outcome
    assert ids("?tab=decided") == [inbox["rejected"].pk, inbox["approved"].pk]
    assert ids("?tab=decided&status=approved") == [inbox["approved"].pk]
    assert ids("?tab=decided&model=churn-predictor") == [inbox["rejected"].pk]


def test_the_list_pages(api_as, inbox):
    body = api_as(Role.MANAGER).get(BASE + "?page_size=1").json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["next"]
    assert api_as(Role.MANAGER).get(BASE + "?page=9").status_code == 400  # invalid_page


@pytest.mark.parametrize(
    "query, field",
    [
        ("?tab=later", "tab"),
        ("?environment=DEV", "environment"),
        ("?older_than=1y", "older_than"),
        ("?status=maybe", "status"),
        ("?overdue=perhaps", "overdue"),
        ("?sort=colour", "sort"),
    ],
)
def test_a_bad_filter_is_a_400_that_names_it(api_as, query, field):
    response = api_as(Role.APPROVER).get(BASE + query)
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith(f"Invalid filters: {field}:")
    assert field in body["errors"] and body["request_id"]


def test_who_reads_the_list(api_as, client, inbox):
    for role in (Role.APPROVER, Role.MANAGER, Role.ADMIN, Role.DATA_SCIENTIST):
        assert api_as(role).get(BASE).status_code == 200, role
    assert api_as().get(BASE).status_code == 403  # signed in, no role
    anonymous = client.get(BASE)
    assert anonymous.status_code in (401, 403) and "detail" in anonymous.json()


# --- Detail --------------------------------------------------------------------------------


def test_the_detail_has_the_evidence_steps_stages_and_my_rules(api_as, alice, approval):
    registered = approval.model_version.registered_model
    champion = ModelVersionFactory(
        registered_model=registered, version=1, metrics={"auc": 0.90, "log_loss": 0.30}
    )
    earlier = PipelineRunFactory(
        pipeline=approval.run.pipeline, model_version=champion, queued_at=ago(days=10)
    )
    RunStageFactory(run=earlier, environment="QA", name="QA", finished_at=ago(days=9))
    response = api_as(user=alice).get(f"{BASE}{approval.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == approval.pk and body["environment"] == "QA"
    assert body["instructions"] == "Check the evidence before deploying."
    evidence = body["evidence"]
    assert evidence["challenger"]["version"] == 2 and evidence["champion"]["version"] == 1
    metrics = {m["name"]: m for m in evidence["metrics"]}
    assert metrics["auc"]["verdict"] == "better"
    assert metrics["auc"]["delta"] == pytest.approx(0.03)
    assert metrics["log_loss"]["lower_is_better"] is True
    assert metrics["log_loss"]["verdict"] == "better"
    assert evidence["qa_outcome"] is None  # QA: no earlier stage to show
    assert body["run"]["id"] == approval.run.pk
    assert [s["environment"] for s in body["stages"]] == ["QA"]
    assert body["stages"][0]["status"] == "waiting"
    assert body["steps"][0]["assigned"]["is_group"] is True
    assert body["decisions"] == []
    assert {r["code"]: r["ok"] for r in body["rules"]} == {
        "approver_role": True,
        "assigned_approver": True,
        "requester": True,
        "version_creator": True,
    }
    assert body["can_decide"] is True
    assert [e["action"] for e in body["audit"]] == []


def test_a_reader_who_cannot_decide_is_told_why(api_as, approval):
    body = api_as(Role.MANAGER).get(f"{BASE}{approval.pk}/").json()
    assert body["rules"] == [
        {
            "code": "not_an_approver",
            "ok": False,
            "message": "Only people with the approver role can decide.",
            "warning": False,
            "until": None,
            "approve_only": False,
        }
    ]
    assert body["can_decide"] is False


def test_a_prod_detail_shows_the_qa_outcome_of_the_same_version(api_as, alice):
    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", name="QA", order=0)
    body = api_as(user=alice).get(f"{BASE}{approval.pk}/").json()
    qa = body["evidence"]["qa_outcome"]
    assert qa["succeeded"] is True
    assert qa["stage"]["result"] == "succeeded" and qa["stage"]["run"]["id"] == approval.run.pk
    rules = {r["code"]: r["ok"] for r in body["rules"]}
    assert rules["qa_first"] is True and rules["recent_sign_in"] is True


def test_an_unknown_approval_is_a_404(api_as):
    response = api_as(Role.APPROVER).get(f"{BASE}999999/")
    assert response.status_code == 404 and "detail" in response.json()


# --- Decide --------------------------------------------------------------------------------


def test_a_decision_is_201_with_its_outbox_message_and_audit_row(api_as, alice, approval):
    client = api_as(user=alice)
    response = decide(client, approval.pk, status="approved", comment="Metrics are better")
    assert response.status_code == 201, response.json()
    body = response.json()
    decision = Decision.objects.get()
    assert body["id"] == decision.pk and body["approval"] == approval.pk
    assert body["status"] == "approved" and body["via"] == "api" and body["user"] == "alice"
    assert body["comment"] == "Metrics are better"
    assert body["delivery"]["state"] == "queued" and body["delivery"]["attempts"] == 0
    message = OutboxMessage.objects.get()
    assert body["delivery"]["outbox_id"] == message.pk
    assert message.decision == decision and message.state == OutboxState.QUEUED
    [patch] = message.payload
    assert patch["approvalId"] == approval.ado_id and patch["status"] == "approved"
    assert patch["comment"].startswith("Metrics are better")
    made = AuditEvent.objects.get(action=AuditAction.DECISION_MADE)
    assert made.decision == decision and made.detail["via"] == "api"
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.decided_in == DecidedIn.PORTAL
    # the detail now shows the decision and its delivery state
    detail = client.get(f"{BASE}{approval.pk}/").json()
    assert detail["decisions"][0]["delivery"]["state"] == "queued"
    assert detail["approvals_so_far"] == 1 and detail["can_decide"] is False


def test_a_rejection_with_a_comment_is_accepted(api_as, alice, approval):
    response = decide(api_as(user=alice), approval.pk, status="rejected", comment="AUC too low")
    assert response.status_code == 201 and response.json()["status"] == "rejected"


def assert_refused(response, status, code, message=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    if message is not None:
        assert body["detail"] == message
    assert body["request_id"]
    return body


def test_a_rejection_needs_a_comment(api_as, alice, approval):
    response = decide(api_as(user=alice), approval.pk, status="rejected", comment="  ")
    assert_refused(response, 400, "comment_required", "A rejection needs a comment saying why.")
    refused = AuditEvent.objects.get(action=AuditAction.DECISION_REFUSED)
    assert refused.actor == alice and refused.detail["code"] == "comment_required"


@pytest.mark.parametrize("role", [Role.MANAGER, Role.ADMIN, Role.DATA_SCIENTIST])
def test_only_approvers_decide(api_as, approval, role):
    response = decide(api_as(role), approval.pk, status="approved")
    assert_refused(
        response, 403, "not_an_approver", "Only people with the approver role can decide."
    )
    refused = AuditEvent.objects.get(action=AuditAction.DECISION_REFUSED)
    assert refused.approval == approval and refused.detail["code"] == "not_an_approver"
    assert not Decision.objects.exists()


def test_whoever_queued_the_run_cannot_approve_it(api_as, make_user, approval):
    requester = make_user(Role.APPROVER, username="bot", email="release-bot@example.com")
    response = decide(api_as(user=requester), approval.pk, status="approved")
    assert_refused(
        response,
        403,
        "requester",
        "You queued this run, so you cannot approve it (separation of duties).",
    )
    assert not Decision.objects.exists()


def test_whoever_created_the_version_cannot_approve_it(api_as, make_user, approval):
    creator = make_user(Role.APPROVER, username="dana", email="dana@example.com")
    body = assert_refused(
        decide(api_as(user=creator), approval.pk, status="approved"), 403, "version_creator"
    )
    assert "You created version 2" in body["detail"]


def test_an_approver_ado_does_not_name_is_refused(api_as, alice):
    bob = {"id": "b", "name": "Bob B", "unique_name": "bob@example.com", "is_group": False}
    approval = ApprovalRequestFactory(assigned_approvers=[bob])
    body = assert_refused(
        decide(api_as(user=alice), approval.pk, status="approved"), 403, "assigned_approver"
    )
    assert body["detail"] == "ADO assigns this approval to Bob B; you are not one of them."


def test_a_decided_approval_is_a_409_that_says_so(api_as, alice, make_user, approval):
    assert decide(api_as(user=alice), approval.pk, status="approved").status_code == 201
    other = make_user(Role.APPROVER, first_name="Olga", last_name="Other")
    body = assert_refused(
        decide(api_as(user=other), approval.pk, status="rejected", comment="no"),
        409,
        "already_decided",
    )
    assert body["detail"] == f"Already approved by {alice.get_full_name()}; nothing left to decide."
    assert Decision.objects.count() == 1


def test_deciding_twice_is_a_409(api_as, alice):
    approval = ApprovalRequestFactory(min_required_approvers=2)
    client = api_as(user=alice)
    assert decide(client, approval.pk, status="approved").status_code == 201
    assert_refused(
        decide(client, approval.pk, status="approved"),
        409,
        "already_decided_by_you",
        "You already approved this request.",
    )


def test_an_expired_approval_is_a_409(api_as, alice):
    approval = ApprovalRequestFactory(expires_at=ago(minutes=1))
    body = assert_refused(
        decide(api_as(user=alice), approval.pk, status="approved"), 409, "expired"
    )
    assert "expired" in body["detail"]


@pytest.fixture
def prod_approval():
    """A PROD approval whose QA stage succeeded for the same version."""
    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", name="QA", order=0)
    return approval


def test_a_prod_decision_after_a_stale_sign_in_asks_to_reauthenticate(api_as, alice, prod_approval):
    client = api_as(user=alice)
    session = client.session
    session[AUTHENTICATED_AT_SESSION_KEY] = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    session.save()
    response = decide(client, prod_approval.pk, status="approved", comment="ok")
    body = assert_refused(response, 401, "reauthentication_required")
    assert "within the last 15 minutes" in body["detail"]
    back = quote(f"/approvals/{prod_approval.pk}/", safe="")
    assert body["reauthenticate_url"] == f"/accounts/reauthenticate/?next={back}"
    assert not Decision.objects.exists()
    # a fresh sign-in (what re-authenticating does) lets the same request through
    fresh = api_as(user=alice)
    assert decide(fresh, prod_approval.pk, status="approved", comment="ok").status_code == 201


def test_a_session_that_never_recorded_its_sign_in_must_reauthenticate(
    api_as, alice, prod_approval
):
    client = api_as(user=alice)
    session = client.session
    del session[AUTHENTICATED_AT_SESSION_KEY]
    session.save()
    assert_refused(
        decide(client, prod_approval.pk, status="approved"), 401, "reauthentication_required"
    )


def test_prod_waits_for_qa(api_as, alice):
    approval = ApprovalRequestFactory(environment_name="PROD")  # no QA stage succeeded
    assert_refused(
        decide(api_as(user=alice), approval.pk, status="approved"),
        403,
        "qa_first",
        "PROD can be approved only after QA succeeded for the same version.",
    )


def test_an_unknown_approval_cannot_be_decided(api_as, alice):
    response = decide(api_as(user=alice), 999999, status="approved")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body, content_type, code, message",
    [
        ("{not json", "application/json", "bad_request", None),
        ("[1, 2]", "application/json", "bad_request", None),
        ('{"status": 5}', "application/json", "bad_request", "status and comment must be strings."),
        ('{"status": "maybe"}', "application/json", "invalid_status", "Choose approve or reject."),
        ("{}", "application/json", "invalid_status", "Choose approve or reject."),
    ],
)
def test_bad_input_is_a_400(api_as, alice, approval, body, content_type, code, message):
    response = api_as(user=alice).post(decision_url(approval.pk), body, content_type=content_type)
    assert_refused(response, 400, code, message)
    assert not Decision.objects.exists()


def test_a_form_encoded_decision_works_too(api_as, alice, approval):
    response = api_as(user=alice).post(
        decision_url(approval.pk), {"status": "approved", "comment": "ok"}, format="multipart"
    )
    assert response.status_code == 201


def test_an_anonymous_decision_is_refused(client, approval):
    response = client.post(
        decision_url(approval.pk),
        json.dumps({"status": "approved"}),
        content_type="application/json",
    )
    assert response.status_code in (401, 403)
    assert not Decision.objects.exists()


def test_a_session_decision_needs_the_csrf_token(alice, approval):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    body = json.dumps({"status": "approved", "comment": "ok"})
    response = client.post(decision_url(approval.pk), body, content_type="application/json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not Decision.objects.exists()
    token = "a" * 32  # any well-formed secret: the cookie and the header must match
    client.cookies["csrftoken"] = token
    response = client.post(
        decision_url(approval.pk), body, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201
    assert Decision.objects.count() == 1


# --- Audit ---------------------------------------------------------------------------------


def test_the_audit_trail_lists_decisions_and_refusals(api_as, alice, make_user, approval):
    client = api_as(user=alice)
    decide(client, approval.pk, status="rejected")  # refused: no comment
    decide(client, approval.pk, status="approved", comment="fine")
    other = ApprovalRequestFactory(environment_name="PROD")
    response = client.get(BASE + "audit/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [e["action"] for e in body["results"]] == ["decision.made", "decision.refused"]
    made = body["results"][0]
    assert made["approval"] == approval.pk and made["actor_name"] == alice.get_full_name()
    assert made["environment"] == "QA" and made["model_name"] == "fraud-detector"
    assert made["decision"] == Decision.objects.get().pk and made["action_label"]

    def actions(query):
        response = client.get(BASE + "audit/" + query)
        assert response.status_code == 200, response.json()
        return [e["action"] for e in response.json()["results"]]

    assert actions("?action=decision.refused") == ["decision.refused"]
    assert actions(f"?approval={approval.pk}") == ["decision.made", "decision.refused"]
    assert actions(f"?approval={other.pk}") == []
    assert actions("?environment=PROD") == []
    assert actions(f"?actor={quote(alice.last_name.upper())}") == [
        "decision.made",
        "decision.refused",
    ]
    assert actions("?model=fraud-detector") == ["decision.made", "decision.refused"]
    assert actions(f"?since={quote(ago(hours=1).isoformat())}") == [
        "decision.made",
        "decision.refused",
    ]
    assert actions(f"?until={quote(ago(hours=1).isoformat())}") == []
    assert client.get(BASE + "audit/?action=nope").status_code == 400
    assert client.get(BASE + "audit/?since=yesterday").status_code == 400
    assert client.get(BASE + "audit/?approval=x").status_code == 400


def test_who_reads_the_audit_trail(api_as):
    for role in (Role.APPROVER, Role.MANAGER, Role.ADMIN):
        assert api_as(role).get(BASE + "audit/").status_code == 200
    assert api_as(Role.DATA_SCIENTIST).get(BASE + "audit/").status_code == 403


def test_the_audit_api_is_read_only(api_as):
    client = api_as(Role.ADMIN)
    assert client.post(BASE + "audit/", {}, format="json").status_code == 405
    assert client.delete(BASE + "audit/").status_code == 405


# --- Retry ---------------------------------------------------------------------------------


@pytest.fixture
def failed_message(alice, approval):
    decision = services.approval_decide(
        approval_id=approval.pk, user=alice, status="approved", comment="ok"
    )
    OutboxMessage.objects.filter(pk=decision.outbox.pk).update(
        state=OutboxState.FAILED, last_error="ADO refused the portal's credentials", attempts=3
    )
    return OutboxMessage.objects.get(pk=decision.outbox.pk)


def test_an_admin_retries_a_failed_delivery(api_as, make_user, failed_message):
    admin = make_user(Role.ADMIN, username="oscar")
    client = api_as(user=admin)
    url = f"{BASE}outbox/{failed_message.pk}/retry"
    response = client.post(url)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["outbox_id"] == failed_message.pk and body["state"] == "queued"
    assert body["decision"]["user"] == "alice" and body["approval"] == failed_message.approval_id
    failed_message.refresh_from_db()
    assert failed_message.state == OutboxState.QUEUED
    retried = AuditEvent.objects.get(action=AuditAction.DELIVERY_RETRY_REQUESTED)
    assert retried.actor == admin and "credentials" in retried.message
    # once queued, it is not failed any more
    again = client.post(url)
    assert again.status_code == 409 and again.json()["code"] == "not_failed"
    assert "Only a failed delivery can be retried" in again.json()["detail"]
    assert client.post(f"{BASE}outbox/999999/retry").status_code == 404


def test_only_admins_retry(api_as, alice, failed_message):
    url = f"{BASE}outbox/{failed_message.pk}/retry"
    for client in (api_as(user=alice), api_as(Role.MANAGER), api_as(Role.DATA_SCIENTIST)):
        assert client.post(url).status_code == 403
    failed_message.refresh_from_db()
    assert failed_message.state == OutboxState.FAILED


# --- Schema --------------------------------------------------------------------------------


def test_the_schema_documents_the_approvals_api(api_as):
    schema = api_as(Role.APPROVER).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert set(paths) >= {
        "/api/v1/approvals/",
        "/api/v1/approvals/{id}/",
        "/api/v1/approvals/{id}/decision",
        "/api/v1/approvals/audit/",
        "/api/v1/approvals/outbox/{id}/retry",
    }
    decision = paths["/api/v1/approvals/{id}/decision"]["post"]
    assert set(decision["responses"]) == {"201", "400", "401", "403", "404", "409", "429", "503"}
    assert [p["name"] for p in decision["parameters"]] == ["id"]
    filters = {p["name"] for p in paths["/api/v1/approvals/"]["get"]["parameters"]}
    assert filters >= {"tab", "environment", "model", "team", "overdue", "older_than", "q"}
