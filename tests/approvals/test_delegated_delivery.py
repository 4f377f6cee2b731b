"""Decisions delivered to ADO under the approver's own identity: people sign in through the
portal's real Entra sign-in (msal against the local Entra stand-in over HTTPS), their MSAL token
cache is kept server-side, and the outbox PATCHes the ADO simulator with their delegated token,
which the simulator records as the approver. When the token cannot be had the decision waits
("needs your sign-in") until they sign in again, or, if the operator allows it, goes with the
portal's identity and the fallback is audited."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals import services
from approvals.models import (
    ApprovalRequest,
    ApprovalStatus,
    AuditAction,
    AuditEvent,
    Decision,
    OutboxMessage,
    OutboxState,
)
from portal.models import EntraAccount
from tests.approvals.conftest import PAT_USER, mirror, wait_at
from tests.approvals.factories import ApprovalRequestFactory
from tests.entra.standin import ADO_RESOURCE

pytestmark = pytest.mark.django_db

ANN = {
    "oid": "0c3f1a52-5e1c-4f5e-9a38-2b8d1f4c7a10",
    "name": "Ann Approver",
    "preferred_username": "ann@contoso.test",
    "roles": ["Portal.Approver"],
}
BOB = {
    "oid": "5d1e7f0a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
    "name": "Bob Builder",
    "preferred_username": "bob@contoso.test",
    "roles": ["Portal.Approver"],
}


@pytest.fixture
def entra_on(entra_on, settings):
    """The shared configuration, with the service-identity fallback off (its default)."""
    settings.APPROVALS_SERVICE_IDENTITY_FALLBACK = False
    return entra_on


def follow_sign_in(client, entra, url: str):
    """The browser's round trip from a sign-in link through Entra back to the callback."""
    response = client.get(url)
    assert response.status_code == 302, response.content
    assert response["Location"].startswith(entra.authorization_endpoint + "?")
    answer = entra.follow(response["Location"])
    callback = client.get(reverse("entra-callback"), answer)
    assert callback.status_code == 302, callback.content
    return callback


def sign_in(client, entra, who: dict):
    """``who`` signs in with Microsoft; returns their portal user."""
    entra.sign_in_as(**who)
    follow_sign_in(client, entra, reverse("entra-sign-in"))
    account = EntraAccount.objects.select_related("user").get(object_id=who["oid"])
    assert account.token_cache, "the sign-in left no token cache for the worker"
    return account.user


def decide(client, approval: ApprovalRequest, comment: str = "Evidence reviewed") -> Decision:
    """Approve through the decision box (choose, then confirm), as on the page."""
    url = reverse("approvals:decide", kwargs={"pk": approval.pk})
    asked = client.post(url, {"status": "approved", "comment": comment})
    assert asked.status_code == 200 and b"decision-confirm" in asked.content, asked.content
    done = client.post(url, {"status": "approved", "comment": comment, "confirm": "1"})
    assert done.status_code in (200, 302), done.content
    user_id = int(client.session["_auth_user_id"])
    return Decision.objects.select_related("outbox").get(approval=approval, user_id=user_id)


def deliver(decision: Decision, ado_client) -> services.DeliveryOutcome:
    outcome = services.outbox_deliver(message_id=decision.outbox.pk, client=ado_client)
    decision.outbox.refresh_from_db()
    return outcome


def in_ado(ado_client, approval: ApprovalRequest) -> dict:
    """The approval as ADO (the simulator) has it now, read over its REST API."""
    return ado_client.get_approval(approval.ado_id, expand_steps=True)


def actual_approvers(ado_client, approval) -> list[dict]:
    steps = in_ado(ado_client, approval).get("steps") or []
    return [s["actualApprover"] for s in steps if s.get("actualApprover")]


def audit(decision: Decision, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(decision=decision, action=action).order_by("pk"))


# Delivered as the person --------------------------------------------------------------------


def test_the_approver_s_own_token_makes_them_the_actual_approver_in_ado(
    client, entra_on, sim, project, ado_client, waiting_qa
):
    ann = sign_in(client, entra_on, ANN)
    decision = decide(client, waiting_qa)

    outcome = deliver(decision, ado_client)

    assert outcome.state == OutboxState.DELIVERED, decision.outbox.last_error
    [patch] = sim.patch_log
    assert patch["scheme"] == "Bearer" and patch["status"] == 200
    assert patch["identity"]["id"] == ANN["oid"]
    assert patch["identity"]["uniqueName"] == "ann@contoso.test"
    assert patch["claims"]["upn"] == "ann@contoso.test" and patch["claims"]["tid"] == (
        entra_on.tenant_id
    )
    # The token is the one the stand-in issued for Azure DevOps at Ann's sign-in.
    ado_tokens = [t for t in entra_on.issued if t["aud"] == ADO_RESOURCE]
    assert (
        ado_tokens
        and entra_on.decode(ado_tokens[-1]["access_token"], audience=ADO_RESOURCE)["oid"]
        == ANN["oid"]
    )
    [actual] = actual_approvers(ado_client, waiting_qa)
    assert actual["id"] == ANN["oid"] and actual["displayName"] == "Ann Approver"
    assert in_ado(ado_client, waiting_qa)["status"] == "approved"
    assert decision.outbox.ado_outcome["identity"] == "user"
    assert decision.outbox.ado_outcome["actual_approver"] == "Ann Approver"
    [delivered] = audit(decision, AuditAction.DELIVERY_DELIVERED)
    assert delivered.message == "Delivered to Azure DevOps as Ann Approver"
    assert not audit(decision, AuditAction.DELIVERY_FALLBACK)
    assert ann.email == "ann@contoso.test"
    # The sign-in itself is in the audit trail as an Entra sign-in.
    [signed_in] = AuditEvent.objects.filter(action=AuditAction.SIGN_IN, actor=ann)
    assert signed_in.detail["method"] == "entra"
    # The portal read ADO with its own credentials; only the PATCH was Ann's.
    reads = [r for r in sim.request_log(0) if r["method"] == "GET" and "approvals" in r["path"]]
    assert reads and {r["identity"] for r in reads} == {PAT_USER}


def test_an_expired_access_token_is_refreshed_silently_for_the_delivery(
    client, entra_on, sim, project, ado_client, waiting_qa
):
    entra_on.expire_access_tokens()  # the sign-in's access token is born expired
    sign_in(client, entra_on, ANN)
    entra_on.access_token_lifetime = 3600
    decision = decide(client, waiting_qa)

    assert deliver(decision, ado_client).state == OutboxState.DELIVERED
    assert entra_on.issued[-1]["grant_type"] == "refresh_token"
    [patch] = sim.patch_log
    assert patch["identity"]["id"] == ANN["oid"]


# Needs your sign-in ---------------------------------------------------------------------------


def test_a_revoked_sign_in_waits_visibly_and_is_sent_after_signing_in_again(
    client, entra_on, sim, project, ado_client, waiting_qa
):
    entra_on.expire_access_tokens()  # so the worker must use the refresh token...
    ann = sign_in(client, entra_on, ANN)
    entra_on.revoke_refresh_tokens()  # ...which Entra no longer honours
    decision = decide(client, waiting_qa)

    outcome = deliver(decision, ado_client)

    assert outcome.state == OutboxState.NEEDS_SIGNIN and outcome.retry_in is None
    message = decision.outbox
    assert message.state == OutboxState.NEEDS_SIGNIN and message.claimed_until is None
    assert sim.patch_log == []  # nothing went to ADO under anyone's name
    assert in_ado(ado_client, waiting_qa)["status"] == "pending"
    [waiting] = audit(decision, AuditAction.DELIVERY_NEEDS_SIGNIN)
    assert "Ann Approver" in waiting.message

    # The sweep leaves it alone, however old.
    OutboxMessage.objects.filter(pk=message.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert services.outbox_sweep() == []
    message.refresh_from_db()
    assert message.state == OutboxState.NEEDS_SIGNIN

    # The page says so, with a way to sign in again that comes back here.
    page = client.get(reverse("approvals:detail", kwargs={"pk": waiting_qa.pk}))
    soup = BeautifulSoup(page.content, "html.parser")
    state = soup.select_one('[data-testid="delivery-state"]')
    assert state["data-state"] == "needs_signin" and "Needs your sign-in" in state.text
    link = soup.select_one('[data-testid="sign-in-again"]')
    assert link is not None and link.text.strip() == "Sign in again"
    parts = urlsplit(link["href"])
    assert parts.path == reverse("entra-sign-in")
    assert parse_qs(parts.query)["next"] == [f"/approvals/{waiting_qa.pk}/"]
    assert soup.select_one('[data-testid="decision-box"]').get("data-polling") is None
    # ...and so does Ann's home page, among her delivery problems.
    home = BeautifulSoup(client.get("/").content, "html.parser")
    waiting_item = home.select_one(f'.home-delivery-problems [data-outbox="{message.pk}"]')
    assert waiting_item is not None and waiting_item["data-delivery"] == "needs_signin"
    assert "Needs your sign-in" in waiting_item.text

    # Signing in again puts it back in the queue, and it is delivered as Ann.
    entra_on.access_token_lifetime = 3600
    back = follow_sign_in(client, entra_on, link["href"])
    assert back["Location"] == f"/approvals/{waiting_qa.pk}/"
    message.refresh_from_db()
    assert message.state == OutboxState.QUEUED
    [requeued] = audit(decision, AuditAction.DELIVERY_RETRY_REQUESTED)
    assert requeued.actor_id == ann.pk and requeued.detail["after"] == "sign_in"

    assert deliver(decision, ado_client).state == OutboxState.DELIVERED
    [patch] = sim.patch_log
    assert patch["scheme"] == "Bearer" and patch["identity"]["id"] == ANN["oid"]
    [actual] = actual_approvers(ado_client, waiting_qa)
    assert actual["id"] == ANN["oid"]


def test_ado_refusing_the_approver_s_token_waits_for_their_sign_in(
    client, entra_on, sim, project, ado_client, waiting_qa
):
    sign_in(client, entra_on, ANN)
    decision = decide(client, waiting_qa)
    sim.fail_next(1, 401, method="PATCH")

    assert deliver(decision, ado_client).state == OutboxState.NEEDS_SIGNIN
    assert "did not accept Ann Approver's sign-in" in decision.outbox.last_error
    [patch] = [r for r in sim.request_log(0) if r["method"] == "PATCH"]
    assert patch["status"] == 401 and patch["identity"] == "ann@contoso.test"


def test_ado_forbidding_the_approver_fails_visibly_naming_them(
    client, entra_on, sim, project, ado_client, waiting_qa
):
    sign_in(client, entra_on, ANN)
    decision = decide(client, waiting_qa)
    sim.fail_next(1, 403, method="PATCH")

    assert deliver(decision, ado_client).state == OutboxState.FAILED
    assert "refused Ann Approver's own permission" in decision.outbox.last_error


def test_a_sign_in_without_waiting_decisions_re_queues_nothing(client, entra_on):
    sign_in(client, entra_on, ANN)
    assert not AuditEvent.objects.filter(action=AuditAction.DELIVERY_RETRY_REQUESTED).exists()


# The operator's fallback ----------------------------------------------------------------------


def test_the_fallback_sends_with_the_portal_s_identity_and_audits_it(
    client, entra_on, settings, sim, project, ado_client, waiting_qa
):
    settings.APPROVALS_SERVICE_IDENTITY_FALLBACK = True
    entra_on.expire_access_tokens()
    sign_in(client, entra_on, ANN)
    entra_on.revoke_refresh_tokens()
    decision = decide(client, waiting_qa, comment="Numbers are fine")

    outcome = deliver(decision, ado_client)

    assert outcome.state == OutboxState.DELIVERED, decision.outbox.last_error
    [patch] = sim.patch_log
    assert patch["scheme"] == "Basic" and patch["identity"]["uniqueName"] == PAT_USER
    comment = patch["body"][0]["comment"]
    assert comment.startswith("Numbers are fine") and "— Ann Approver (via MLOps Portal" in comment
    assert decision.outbox.ado_outcome["identity"] == "portal"
    [fallback] = audit(decision, AuditAction.DELIVERY_FALLBACK)
    assert "portal's own identity instead of Ann Approver's" in fallback.message
    assert "revoked" in fallback.detail["reason"]
    assert fallback.actor_name == services.DELIVERY_ACTOR


# Several approvers ----------------------------------------------------------------------------


@pytest.fixture
def two_approver_check(sim, project, ado_client, fraud):
    """A release whose QA check names Ann and Bob and needs both."""
    pipeline = sim.create_pipeline(
        "risk-fraud-detector-release",
        "release",
        folder="\\risk\\fraud-detector",
        model="fraud-detector",
        stage_seconds={"Build": 60, "Deploy_QA": 60, "Deploy_PROD": 60},
        approvers={"Deploy_QA": ["ann@contoso.test", "bob@contoso.test"]},
        min_required_approvers=2,
    )
    run = sim.queue_run(
        pipeline,
        template_parameters={"modelName": "fraud-detector", "modelVersion": "2"},
    )
    approval_id = wait_at(sim, run, "QA")
    mirror(project, ado_client)
    approval = ApprovalRequest.objects.get(ado_id=approval_id)
    assert approval.min_required_approvers == 2
    return approval


def test_two_entra_approvers_on_a_two_approver_check_are_both_delivered(
    client, entra_on, sim, project, ado_client, two_approver_check
):
    approval = two_approver_check
    sign_in(client, entra_on, ANN)
    bob_browser = Client()
    sign_in(bob_browser, entra_on, BOB)

    first = decide(client, approval, comment="one")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING
    rules = {r.code: r for r in services.decision_rules(approval=approval, user=first.user)}
    assert "one_identity" not in rules
    second = decide(bob_browser, approval, comment="two")  # not refused: ADO counts Bob himself
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED

    assert deliver(first, ado_client).state == OutboxState.DELIVERED, first.outbox.last_error
    assert deliver(second, ado_client).state == OutboxState.DELIVERED, second.outbox.last_error

    assert [p["identity"]["id"] for p in sim.patch_log] == [ANN["oid"], BOB["oid"]]
    assert {a["id"] for a in actual_approvers(ado_client, approval)} == {ANN["oid"], BOB["oid"]}
    assert in_ado(ado_client, approval)["status"] == "approved"
    mirror(project, ado_client)
    approval.refresh_from_db()
    assert approval.ado_status == ApprovalStatus.APPROVED
    assert AuditEvent.objects.filter(
        approval=approval, action=AuditAction.APPROVAL_CONFIRMED
    ).exists()


# The one-identity rule per person -------------------------------------------------------------


@pytest.fixture
def entra_configured(settings):
    """Entra sign-in configured (no stand-in needed: these rules ask Entra nothing)."""
    settings.ENTRA_TENANT_ID = "11111111-1111-1111-1111-111111111111"
    settings.ENTRA_CLIENT_ID = "22222222-2222-2222-2222-222222222222"
    settings.ENTRA_CLIENT_SECRET = "not-a-real-secret"
    settings.ENTRA_ENABLED = True
    settings.APPROVALS_SERVICE_IDENTITY_FALLBACK = False


def entra_user(make_user, name: str):
    user = make_user("approver", username=f"entra-{name}", first_name=name.capitalize())
    EntraAccount.objects.create(
        user=user, tenant_id="11111111", object_id=f"oid-{name}", preferred_username=name
    )
    return user


def codes(approval, user) -> dict:
    approval = ApprovalRequest.objects.get(pk=approval.pk)
    return {r.code: r.ok for r in services.decision_rules(approval=approval, user=user)}


def test_the_one_identity_rule_binds_only_decisions_sent_under_the_portal_s_identity(
    entra_configured, make_user
):
    approval = ApprovalRequestFactory(min_required_approvers=3)
    carol = make_user("approver", first_name="Carol")  # a local account
    dave = make_user("approver", first_name="Dave")  # another local account
    ann = entra_user(make_user, "ann")
    assert services.delivers_with_portal_identity(carol)
    assert not services.delivers_with_portal_identity(ann)

    services.approval_decide(approval_id=approval.pk, user=carol, status="approved")
    assert "one_identity" not in codes(approval, ann)  # Ann's goes under her own name
    assert codes(approval, dave)["one_identity"] is False  # two under the portal's: refused

    services.approval_decide(approval_id=approval.pk, user=ann, status="approved")
    assert codes(approval, dave)["one_identity"] is False  # still Carol's portal identity


def test_an_entra_decision_does_not_block_a_local_approver(entra_configured, make_user):
    approval = ApprovalRequestFactory(min_required_approvers=2)
    ann = entra_user(make_user, "ann")
    carol = make_user("approver", first_name="Carol")
    services.approval_decide(approval_id=approval.pk, user=ann, status="approved")
    assert "one_identity" not in codes(approval, carol)
    services.approval_decide(approval_id=approval.pk, user=carol, status="approved")


def test_with_the_fallback_on_an_entra_user_without_a_token_counts_as_the_portal(
    entra_configured, settings, make_user
):
    settings.APPROVALS_SERVICE_IDENTITY_FALLBACK = True
    approval = ApprovalRequestFactory(min_required_approvers=2)
    carol = make_user("approver", first_name="Carol")
    ann = entra_user(make_user, "ann")  # no token cache: no token to be had
    assert services.delivers_with_portal_identity(ann)
    services.approval_decide(approval_id=approval.pk, user=carol, status="approved")
    assert codes(approval, ann)["one_identity"] is False


def test_without_entra_configured_everyone_goes_as_the_portal(settings, make_user):
    settings.ENTRA_TENANT_ID = ""
    ann = entra_user(make_user, "ann")
    assert services.delivers_with_portal_identity(ann)
    assert services.delivers_with_portal_identity(None)
