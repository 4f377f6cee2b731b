"""Post-deployment sign-off for PROD: opened when a PROD deployment succeeds and the policy
asks for one (end to end over the ADO simulator, through the pipelines sync's runs_changed
signal), shown on the inbox and the approval page, closed by an approver who did not deploy
(signed off, or flagged with a comment) through the page and the API, audited, notified."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from approvals import services
from approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    AuditAction,
    AuditEvent,
    OutboxState,
    SignOff,
    SignOffStatus,
)
from core.roles import Role
from pipelines.models import PipelineRun
from pipelines.signals import runs_changed
from tests.approvals.conftest import mirror, wait_at
from tests.approvals.factories import ApprovalRequestFactory
from tests.pipelines.factories import RunStageFactory

pytestmark = pytest.mark.django_db

SIGNOFFS = "/api/v1/approvals/signoffs/"


def signoff_policy(**fields):
    return ApprovalPolicy.objects.create(
        environment="PROD", scope="global", signoff_required=True, **fields
    )


@pytest.fixture
def people(make_user):
    return {
        name: make_user(Role.APPROVER, username=name, email=f"{name}@example.com")
        for name in ("alice", "bob")
    }


@pytest.fixture
def deployed():
    """A PROD approval whose run then deployed to PROD (the stage succeeded)."""
    approval = ApprovalRequestFactory(environment_name="PROD")
    approval.stage.state, approval.stage.result = "completed", "succeeded"
    approval.stage.waiting_for_approval = False
    approval.stage.finished_at = approval.created_on
    approval.stage.save()
    return approval


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def close(user, signoff, status="signed_off", comment=""):
    return api_as(user).post(
        f"{SIGNOFFS}{signoff.pk}/close", {"status": status, "comment": comment}, format="json"
    )


def test_a_prod_deployment_opens_a_signoff_once_when_the_policy_asks(deployed):
    signoff_policy()
    run = deployed.run
    runs_changed.send(sender=PipelineRun, project=run.pipeline.project, run_ids=[run.pk])
    runs_changed.send(sender=PipelineRun, project=run.pipeline.project, run_ids=[run.pk])
    signoff = SignOff.objects.get()
    assert signoff.status == SignOffStatus.OPEN and signoff.approval == deployed
    assert signoff.stage == deployed.stage and signoff.deployed_by == run.requested_by_id
    assert signoff.model_version == deployed.model_version
    [row] = AuditEvent.objects.filter(action=AuditAction.SIGNOFF_OPENED)
    assert row.approval == deployed and row.environment == "PROD"


def test_no_signoff_without_the_policy_nor_for_qa_or_a_failed_deployment(deployed):
    services.signoffs_open(run_ids=[deployed.run.pk])
    assert not SignOff.objects.exists()
    signoff_policy()
    qa = ApprovalRequestFactory()
    RunStageFactory(run=qa.run, environment="QA")
    failed = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=failed.run, environment="PROD", result="failed")
    assert services.signoffs_open(run_ids=[qa.run.pk, failed.run.pk]) == []
    ApprovalPolicy.objects.create(
        environment="PROD",
        scope="model",
        catalog_model=deployed.catalog_model,
        signoff_required=False,
    )
    assert services.signoffs_open(run_ids=[deployed.run.pk]) == []  # the model opts out


def test_approvers_are_told_a_signoff_waits(deployed, people):
    signoff_policy()
    [signoff] = services.signoffs_open(run_ids=[deployed.run.pk])
    services.signoff_notify(signoff_id=signoff.pk)
    services.signoff_notify(signoff_id=signoff.pk)  # once
    [message] = mail.outbox
    assert "Sign off the PROD deployment" in message.subject
    assert set(message.to) == {"alice@example.com", "bob@example.com"}
    assert f"/approvals/{deployed.pk}/" in message.body


def test_an_approver_who_did_not_deploy_signs_off_through_the_api(deployed, people):
    signoff_policy()
    [signoff] = services.signoffs_open(run_ids=[deployed.run.pk])
    listed = api_as(people["bob"]).get(SIGNOFFS + "?status=open").json()["results"]
    assert [s["id"] for s in listed] == [signoff.pk] and listed[0]["status"] == "open"
    response = close(people["bob"], signoff, comment="Latency fine")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "signed_off" and response.json()["closed_by"]
    signoff.refresh_from_db()
    assert signoff.closed_by == people["bob"] and signoff.comment == "Latency fine"
    [row] = AuditEvent.objects.filter(action=AuditAction.SIGNOFF_CLOSED)
    assert row.actor == people["bob"] and "Latency fine" in row.message
    again = close(people["alice"], signoff)
    assert again.status_code == 409 and again.json()["code"] == "already_closed"


def test_the_deployer_and_non_approvers_may_not_close_it_and_flagging_needs_a_comment(
    deployed, people, make_user
):
    signoff_policy()
    deployed.run.requested_by_id = "ALICE@example.com"
    deployed.run.save()
    [signoff] = services.signoffs_open(run_ids=[deployed.run.pk])
    refused = close(people["alice"], signoff)
    assert refused.status_code == 403 and refused.json()["code"] == "deployer"
    manager = close(make_user(Role.MANAGER), signoff)
    assert manager.status_code == 403 and manager.json()["code"] == "not_an_approver"
    bare = close(people["bob"], signoff, status="flagged")
    assert bare.status_code == 400 and bare.json()["code"] == "comment_required"
    bad = close(people["bob"], signoff, status="maybe")
    assert bad.status_code == 400
    codes = [
        r.detail["code"] for r in AuditEvent.objects.filter(action=AuditAction.SIGNOFF_REFUSED)
    ]
    assert sorted(codes) == ["comment_required", "deployer", "invalid_status", "not_an_approver"]
    assert SignOff.objects.get().status == SignOffStatus.OPEN
    assert api_as(people["bob"]).post(f"{SIGNOFFS}999999/close", {}).status_code == 404


def test_the_signoff_is_shown_and_flagged_from_the_pages(client, deployed, people):
    signoff_policy()
    [signoff] = services.signoffs_open(run_ids=[deployed.run.pk])
    client.force_login(people["bob"])
    inbox = BeautifulSoup(client.get(reverse("approvals:inbox")).content, "html.parser")
    item = inbox.select_one(f"[data-signoff='{signoff.pk}']")
    assert item["data-status"] == "open" and item.select_one("[data-testid=signoff-form]")
    detail_url = reverse("approvals:detail", kwargs={"pk": deployed.pk})
    response = client.post(
        reverse("approvals:signoff-close", kwargs={"pk": signoff.pk}),
        {"status": "flagged", "comment": "Error rate up 2%", "next": detail_url},
    )
    assert response.status_code == 302 and response["Location"] == detail_url
    page = BeautifulSoup(client.get(detail_url).content, "html.parser")
    shown = page.select_one(f"[data-signoff='{signoff.pk}']")
    assert shown["data-status"] == "flagged" and "Error rate up 2%" in shown.text
    services.signoff_notify(signoff_id=signoff.pk)  # what the queued task runs
    assert "flagged" in mail.outbox[-1].subject  # the flag is told to the approvers
    assert "Error rate up 2%" in mail.outbox[-1].body
    # the deployer sees why they cannot close one
    other = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=other.run, environment="PROD")
    other.run.requested_by_id = "bob@example.com"
    other.run.save()
    services.signoffs_open(run_ids=[other.run.pk])
    inbox = BeautifulSoup(client.get(reverse("approvals:inbox")).content, "html.parser")
    assert "You deployed this run" in inbox.select_one("[data-testid=signoff-refusal]").text


def test_end_to_end_a_prod_deployment_in_the_simulator_opens_the_signoff(
    sim, project, ado_client, waiting_qa, people
):
    """QA and PROD approved in the portal and delivered to the simulator over HTTP; the run
    deploys to PROD; the pipelines sync opens the sign-off; bob closes it."""
    signoff_policy()
    alice, bob = people["alice"], people["bob"]
    qa = services.approval_decide(approval_id=waiting_qa.pk, user=alice, status="approved")
    assert services.outbox_deliver(message_id=qa.outbox.pk, client=ado_client).state == (
        OutboxState.DELIVERED
    )
    run = sim.run(waiting_qa.build_id)
    prod_id = wait_at(sim, run, "PROD")
    mirror(project, ado_client)
    prod = ApprovalRequest.objects.get(ado_id=prod_id)
    assert not SignOff.objects.exists()  # not deployed yet
    decision = services.approval_decide(
        approval_id=prod.pk, user=bob, status="approved", authenticated_at=timezone.now()
    )
    delivered = services.outbox_deliver(message_id=decision.outbox.pk, client=ado_client)
    assert delivered.state == OutboxState.DELIVERED
    for _ in range(20):
        sim.advance(60)
    mirror(project, ado_client)
    signoff = SignOff.objects.get()
    assert signoff.approval == prod and signoff.stage.result == "succeeded"
    assert close(alice, signoff).status_code == 200


def test_bad_input_to_close_is_a_400_never_a_500(deployed, people, client):
    signoff_policy()
    [signoff] = services.signoffs_open(run_ids=[deployed.run.pk])
    client_api = api_as(people["bob"])
    url = f"{SIGNOFFS}{signoff.pk}/close"
    for body in ({"status": ["x"]}, {"status": "flagged", "comment": "a\x00b"}, ["list"]):
        assert client_api.post(url, body, format="json").status_code == 400
    client.force_login(people["bob"])
    page = client.post(
        reverse("approvals:signoff-close", kwargs={"pk": signoff.pk}),
        {"status": "flagged", "comment": "bad\x00"},
    )
    assert page.status_code == 400
    effective = client_api.get("/api/v1/approvals/policies/effective?environment=QA&model=a%00")
    assert effective.status_code in (400, 404)
    created = client_api.post(
        "/api/v1/approvals/policies/",
        {"environment": "QA", "scope": "model", "catalog_model": "x\x00"},
        format="json",
    )
    assert created.status_code in (400, 403)
    assert SignOff.objects.get().status == SignOffStatus.OPEN
