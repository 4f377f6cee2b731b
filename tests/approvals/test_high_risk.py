"""A high-risk model's PROD approval needs two approvers (the policy's
``high_risk_min_approvers``): the first approval is recorded and held, not sent to ADO; the
second releases it and closes the request; a rejection withdraws what was held. Against the
ADO simulator over HTTP."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals import services
from approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    AuditAction,
    AuditEvent,
    OutboxState,
    PolicyScope,
)
from core.roles import Role
from registry.models import ModelCard, RiskRating
from tests.approvals.conftest import mirror, wait_at
from tests.approvals.factories import ApprovalRequestFactory

pytestmark = pytest.mark.django_db


def decide(approval, user, status="approved", comment=""):
    """A PROD decision just after signing in (the recent sign-in rule)."""
    return services.approval_decide(
        approval_id=approval.pk,
        user=user,
        status=status,
        comment=comment,
        authenticated_at=timezone.now(),
    )


def _card(catalog, risk=RiskRating.HIGH):
    return ModelCard.objects.create(
        catalog_model=catalog, intended_use="Score card payments", risk_rating=risk
    )


@pytest.fixture
def people(make_user):
    return {
        n: make_user(Role.APPROVER, username=n, email=f"{n}@example.com")
        for n in ("alice", "bob", "carol")
    }


@pytest.fixture
def waiting_prod(sim, project, ado_client, fraud, release, people):
    """fraud-detector v2 released: QA approved by carol (delivered), the run waits at PROD."""
    run = sim.queue_run(
        release,
        template_parameters={
            "modelName": "fraud-detector",
            "modelVersion": "2",
            "deployTarget": "aks",
        },
    )
    qa_id = wait_at(sim, run, "QA")
    mirror(project, ado_client)
    qa = ApprovalRequest.objects.get(ado_id=qa_id)
    decision = services.approval_decide(approval_id=qa.pk, user=people["carol"], status="approved")
    services.outbox_deliver(message_id=decision.outbox.pk, client=ado_client)
    prod_id = wait_at(sim, sim.run(qa.build_id), "PROD")
    mirror(project, ado_client)
    prod = ApprovalRequest.objects.get(ado_id=prod_id)
    assert prod.environment == "PROD" and prod.min_required_approvers == 1
    return prod


@pytest.mark.parametrize("sim", [dt.timedelta(hours=2)], indirect=True)
def test_ado_stays_pending_after_the_first_approval_and_approves_after_the_second(
    sim, ado_client, fraud, waiting_prod, people, client
):
    _card(fraud["catalog"])
    prod = waiting_prod
    first = decide(prod, people["alice"])
    first.outbox.refresh_from_db()
    assert first.outbox.state == OutboxState.HELD
    # Held: nothing is claimed or swept, ADO's approval stays pending.
    assert services.outbox_deliver(message_id=first.outbox.pk, client=ado_client).state != (
        OutboxState.DELIVERED
    )
    assert first.outbox.pk not in services.outbox_sweep()
    assert sim.approval(prod.ado_id).status == "pending"
    prod.refresh_from_db()
    assert prod.is_open
    assert AuditEvent.objects.filter(approval=prod, action=AuditAction.DELIVERY_HELD).exists()

    client.force_login(people["bob"])
    page = client.get(reverse("approvals:detail", kwargs={"pk": prod.pk})).content.decode()
    assert "1 of 2 approvals (a high-risk model needs two in PROD)" in page
    assert "high risk, so PROD needs 2 distinct approvals" in page
    inbox = client.get(reverse("approvals:inbox")).content.decode()
    assert 'data-testid="high-risk-badge"' in inbox and "1 / 2" in inbox

    second = decide(prod, people["bob"])
    prod.refresh_from_db()
    assert prod.status == "approved"
    first.outbox.refresh_from_db()
    assert first.outbox.state == OutboxState.QUEUED
    assert services.outbox_deliver(message_id=first.outbox.pk, client=ado_client).state == (
        OutboxState.DELIVERED
    )
    assert sim.approval(prod.ado_id).status == "approved"
    # The closing message reads ADO first: already decided, not sent twice.
    assert services.outbox_deliver(message_id=second.outbox.pk, client=ado_client).state in (
        OutboxState.ALREADY_DECIDED,
        OutboxState.DELIVERED,
    )
    assert AuditEvent.objects.filter(approval=prod, action=AuditAction.DELIVERY_RELEASED).exists()


@pytest.mark.parametrize("sim", [dt.timedelta(hours=2)], indirect=True)
def test_a_rejection_after_a_held_approval_closes_it_and_withdraws_the_approval(
    sim, ado_client, fraud, waiting_prod, people
):
    _card(fraud["catalog"])
    prod = waiting_prod
    first = decide(prod, people["alice"])
    reject = decide(prod, people["bob"], "rejected", "Not this week")
    first.outbox.refresh_from_db()
    assert first.outbox.state == OutboxState.WITHDRAWN
    assert AuditEvent.objects.filter(approval=prod, action=AuditAction.DELIVERY_WITHDRAWN).exists()
    services.outbox_deliver(message_id=reject.outbox.pk, client=ado_client)
    assert sim.approval(prod.ado_id).status == "rejected"


def test_policy_sets_the_number_and_other_models_need_adoes_minimum(fraud, people):
    _card(fraud["catalog"])
    prod = ApprovalRequestFactory(
        model_version=fraud["v2"], environment="PROD", min_required_approvers=1
    )
    assert prod.required_approvers == 2
    qa = ApprovalRequestFactory(model_version=fraud["v1"], environment="QA")
    assert qa.required_approvers == qa.min_required_approvers
    ApprovalPolicy.objects.create(
        environment="PROD",
        scope=PolicyScope.MODEL,
        catalog_model=fraud["catalog"],
        high_risk_min_approvers=3,
    )
    fresh = ApprovalRequest.objects.get(pk=prod.pk)
    assert fresh.required_approvers == 3
    effective = services.approval_policy_for(catalog_model=fraud["catalog"], environment="PROD")
    assert effective.high_risk_min_approvers == 3
    assert effective.source("high_risk_min_approvers").startswith("model")
    ModelCard.objects.filter(catalog_model=fraud["catalog"]).update(risk_rating=RiskRating.LOW)
    assert ApprovalRequest.objects.get(pk=prod.pk).required_approvers == 1
    decision = decide(qa, people["alice"])  # not high risk in QA: sent at once
    assert decision.outbox.state == OutboxState.QUEUED
