"""Decisions stay human: no token, a portal API token or an Entra ID app token, approves or
rejects, whatever its roles and scope. The decision endpoint answers 403
``human_decision_required`` and the attempt is in the audit trail like every other refused
decision (``decision.refused``, through ``decision_refusal_record``)."""

import pytest
from rest_framework.test import APIClient

from approvals.models import ApprovalStatus, AuditAction, AuditEvent, Decision, OutboxMessage
from core import clients
from core.roles import Role
from portal import api_tokens
from tests.approvals.factories import ApprovalRequestFactory
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

APPROVER_APP = {
    "client_id": "55555555-5555-5555-5555-555555555555",
    "client_secret": "approver-app-secret",
    "object_id": "66666666-6666-6666-6666-666666666666",
}


@pytest.fixture
def approval():
    registered = RegisteredModelFactory(name="fraud-detector")
    return ApprovalRequestFactory(
        model_version=ModelVersionFactory(registered_model=registered, version=2)
    )


def bearer(token: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _assert_human_decision_required(response, approval, kind):
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["code"] == "human_decision_required"
    assert "stay human" in body["detail"] and set(body) == {"detail", "code", "request_id"}
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    assert not Decision.objects.exists() and not OutboxMessage.objects.exists()
    (refused,) = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED)
    assert refused.approval_id == approval.pk
    assert refused.detail["code"] == "human_decision_required"
    assert refused.detail["via"] == "api" and refused.detail["credential"]["kind"] == kind


@pytest.mark.parametrize("scope", ["read", "write"])
def test_an_approvers_portal_token_cannot_decide(make_user, approval, scope):
    approver = make_user(Role.APPROVER)
    token, raw = api_tokens.token_create(user=approver, name="bot", scope=scope)
    response = bearer(raw).post(
        f"/api/v1/approvals/{approval.pk}/decision", {"status": "approved"}, format="json"
    )
    _assert_human_decision_required(response, approval, "portal_token")
    refused = AuditEvent.objects.get(action=AuditAction.DECISION_REFUSED)
    assert refused.actor_id == approver.pk
    assert refused.detail["credential"]["token_id"] == token.key_id


def test_an_approver_app_with_an_entra_token_cannot_decide(entra_on, approval):
    entra_on.register_app(**APPROVER_APP, roles=["Portal.Approver"])
    app = clients.confidential_client(
        APPROVER_APP["client_id"],
        APPROVER_APP["client_secret"],
        entra_on.authority,
        timeout=10,
        verify=entra_on.ca_file,
    )
    token = app.acquire_token_for_client(scopes=[f"api://{entra_on.client_id}/.default"])
    response = bearer(token["access_token"]).post(
        f"/api/v1/approvals/{approval.pk}/decision",
        {"status": "rejected", "comment": "no"},
        format="json",
    )
    _assert_human_decision_required(response, approval, "entra_app")


def test_a_person_in_a_session_still_decides(make_user, approval):
    client = APIClient()
    client.force_login(make_user(Role.APPROVER))
    response = client.post(
        f"/api/v1/approvals/{approval.pk}/decision", {"status": "approved"}, format="json"
    )
    assert response.status_code == 201, response.content


def test_the_detail_tells_a_token_it_cannot_decide(make_user, approval):
    _token, raw = api_tokens.token_create(user=make_user(Role.APPROVER), name="bot", scope="write")
    detail = bearer(raw).get(f"/api/v1/approvals/{approval.pk}/").json()
    assert detail["can_decide"] is False
    assert detail["rules"][0]["code"] == "human_decision_required"
    assert detail["rules"][0]["ok"] is False
