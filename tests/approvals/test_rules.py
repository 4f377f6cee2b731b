"""The decision rules (services.decision_rules / approval_decide), one test per rule, on
approval rows built by the factory: no simulator. Every refusal writes exactly one
decision.refused audit row with its code, and nothing else."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from approvals import services
from approvals.models import (
    ApprovalRequest,
    ApprovalStatus,
    AuditAction,
    AuditEvent,
    DecidedIn,
    Decision,
    OutboxMessage,
    OutboxState,
)
from tests.approvals.factories import ApprovalRequestFactory
from tests.pipelines.factories import PipelineRunFactory, RunStageFactory
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def approver(make_user):
    return make_user("approver", first_name="Alice", last_name="Approver")


def just_now() -> dt.datetime:
    return timezone.now() - dt.timedelta(minutes=1)


def decide(approval, user, status="approved", comment="", **kwargs) -> Decision:
    return services.approval_decide(
        approval_id=approval.pk, user=user, status=status, comment=comment, **kwargs
    )


def assert_refused(approval, user, code, *, http_status=None, status="approved", **kwargs):
    """The decision is refused with ``code``; one decision.refused row, nothing else."""
    before = {
        "decisions": Decision.objects.count(),
        "outbox": OutboxMessage.objects.count(),
        "audit": AuditEvent.objects.count(),
    }
    row_before = ApprovalRequest.objects.values().get(pk=approval.pk)
    with pytest.raises(services.DecisionRefused) as refused:
        decide(approval, user, status=status, **kwargs)
    assert refused.value.code == code
    assert refused.value.message
    if http_status is not None:
        assert refused.value.http_status == http_status
    assert Decision.objects.count() == before["decisions"]
    assert OutboxMessage.objects.count() == before["outbox"]
    assert AuditEvent.objects.count() == before["audit"] + 1
    [row] = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED).order_by("-pk")[:1]
    assert row.detail["code"] == code and row.approval_id == approval.pk
    assert row.actor == user and refused.value.message in row.message
    assert ApprovalRequest.objects.values().get(pk=approval.pk) == row_before
    return refused.value


def rule(approval, user, code, **kwargs) -> services.Rule:
    rules = services.decision_rules(approval=approval, user=user, **kwargs)
    return next(r for r in rules if r.code == code)


# Allowed -------------------------------------------------------------------------------------


def test_an_approver_of_a_group_assigned_qa_approval_may_decide(approver):
    approval = ApprovalRequestFactory()
    rules = services.decision_rules(approval=approval, user=approver)
    assert [r.code for r in rules] == [
        "approver_role",
        "assigned_approver",
        "requester",
        "version_creator",
    ]
    assert all(r.ok for r in rules)
    decision = decide(approval, approver, comment="Metrics are fine")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED
    assert approval.decided_in == DecidedIn.PORTAL and approval.decided_by == "Alice Approver"
    assert decision.outbox.state == OutboxState.QUEUED
    assert AuditEvent.objects.filter(action=AuditAction.DECISION_MADE, decision=decision).count()


# Input ---------------------------------------------------------------------------------------


def test_only_the_approver_role_may_decide(make_user):
    approval = ApprovalRequestFactory()
    for roles in [("data_scientist",), ("manager", "admin")]:
        assert_refused(approval, make_user(*roles), "not_an_approver", http_status=403)


def test_a_rejection_needs_a_comment(approver):
    approval = ApprovalRequestFactory()
    assert_refused(approval, approver, "comment_required", status="rejected", comment="   ")
    decide(approval, approver, status="rejected", comment="AUC dropped")
    assert ApprovalRequest.objects.get(pk=approval.pk).status == ApprovalStatus.REJECTED


def test_a_comment_over_the_limit_is_refused(approver, settings):
    approval = ApprovalRequestFactory()
    too_long = "x" * (settings.APPROVALS_COMMENT_MAX_LENGTH + 1)
    assert_refused(approval, approver, "comment_too_long", http_status=400, comment=too_long)
    decide(approval, approver, comment="x" * settings.APPROVALS_COMMENT_MAX_LENGTH)


@pytest.mark.parametrize("status", ["maybe", "pending", "", "APPROVED"])
def test_only_approve_or_reject(approver, status):
    approval = ApprovalRequestFactory()
    assert_refused(approval, approver, "invalid_status", http_status=400, status=status)


# Already decided, expired --------------------------------------------------------------------


def test_an_approval_decided_in_the_portal_cannot_be_decided_again(approver, make_user):
    approval = ApprovalRequestFactory()
    decide(approval, approver)
    refusal = assert_refused(approval, make_user("approver"), "already_decided", http_status=409)
    assert "Alice Approver" in refusal.message


def test_an_approval_decided_in_ado_cannot_be_decided(approver):
    approval = ApprovalRequestFactory(
        status=ApprovalStatus.REJECTED,
        ado_status=ApprovalStatus.REJECTED,
        decided_in=DecidedIn.ADO,
        decided_by="Someone Else",
        decided_at=timezone.now(),
    )
    refusal = assert_refused(approval, approver, "already_decided", http_status=409)
    assert "Azure DevOps" in refusal.message and "Someone Else" in refusal.message


@pytest.mark.parametrize(
    "status", [ApprovalStatus.CANCELED, ApprovalStatus.TIMED_OUT, ApprovalStatus.SKIPPED]
)
def test_an_approval_ado_closed_cannot_be_decided(approver, status):
    approval = ApprovalRequestFactory(status=status, ado_status=status, decided_in=DecidedIn.ADO)
    assert_refused(approval, approver, "already_decided")


def test_an_expired_approval_cannot_be_decided(approver):
    approval = ApprovalRequestFactory(expires_at=timezone.now() - dt.timedelta(minutes=1))
    assert_refused(approval, approver, "expired", http_status=409)


def test_nobody_decides_twice(approver):
    approval = ApprovalRequestFactory(min_required_approvers=2)
    decide(approval, approver)
    for status, comment in [("approved", ""), ("rejected", "changed my mind")]:
        assert_refused(
            approval,
            approver,
            "already_decided_by_you",
            http_status=409,
            status=status,
            comment=comment,
        )


# Who ADO lets decide -------------------------------------------------------------------------


def named(email: str, name: str = "") -> dict:
    return {"id": email, "name": name or email, "unique_name": email, "is_group": False}


def test_named_approvers_only(make_user):
    alice = make_user("approver", email="alice@example.com")
    bob = make_user("approver", email="bob@example.com")
    approval = ApprovalRequestFactory(
        assigned_approvers=[named("Alice@Example.com", "Alice"), named("carol@example.com")]
    )
    refusal = assert_refused(approval, bob, "assigned_approver", http_status=403)
    assert "Alice" in refusal.message
    assert rule(approval, alice, "assigned_approver").ok
    decide(approval, alice)


def test_a_named_approver_may_be_known_by_user_name(make_user):
    alice = make_user("approver", username="alice.approver", email="")
    approval = ApprovalRequestFactory(assigned_approvers=[named("alice.approver")])
    decide(approval, alice)


def test_a_blocked_approver_is_refused(approver):
    approval = ApprovalRequestFactory(blocked_approvers=[named(approver.email.upper())])
    assert_refused(approval, approver, "blocked_approver", http_status=403)


# Separation of duties ------------------------------------------------------------------------


def test_whoever_queued_the_run_cannot_approve_it(approver):
    approval = ApprovalRequestFactory()
    approval.run.requested_by_id = approver.email.upper()
    approval.run.save()
    assert_refused(approval, approver, "requester", http_status=403)


def test_whoever_triggered_the_run_from_the_portal_cannot_approve_it(approver):
    approval = ApprovalRequestFactory()
    approval.run.triggered_by = approver  # ADO shows the portal's service account as requester
    approval.run.save()
    assert_refused(approval, approver, "requester")


def test_without_a_mirrored_run_the_requester_of_the_approval_counts(approver):
    approval = ApprovalRequestFactory()
    ApprovalRequest.objects.filter(pk=approval.pk).update(
        run=None, stage=None, requested_by_id=approver.email
    )
    approval.refresh_from_db()
    assert_refused(approval, approver, "requester")


def test_whoever_created_the_model_version_cannot_approve_its_deployment(approver):
    approval = ApprovalRequestFactory(model_version__user_id=approver.email)
    refusal = assert_refused(approval, approver, "version_creator", http_status=403)
    assert f"version {approval.model_version.version}" in refusal.message


# PROD: QA first ------------------------------------------------------------------------------


def test_prod_is_refused_without_a_qa_stage(approver):
    approval = ApprovalRequestFactory(environment_name="PROD")
    assert_refused(approval, approver, "qa_first", http_status=403, authenticated_at=just_now())


def test_prod_is_refused_when_qa_of_the_same_version_failed(approver):
    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", result="failed")
    assert_refused(approval, approver, "qa_first", authenticated_at=just_now())


def test_prod_is_allowed_after_qa_of_the_same_run(approver):
    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", result="succeeded")
    decide(approval, approver, authenticated_at=just_now())


def test_prod_is_allowed_after_another_run_deployed_the_same_version_to_qa(approver):
    approval = ApprovalRequestFactory(environment_name="PROD")
    earlier = PipelineRunFactory(
        pipeline=approval.run.pipeline, model_version=approval.model_version
    )
    RunStageFactory(run=earlier, environment="QA", result="succeeded")
    assert rule(approval, approver, "qa_first", authenticated_at=just_now()).ok
    decide(approval, approver, authenticated_at=just_now())


def test_qa_of_another_version_does_not_count(approver):
    approval = ApprovalRequestFactory(environment_name="PROD")
    other = ApprovalRequestFactory(
        model_version__registered_model=approval.model_version.registered_model
    )
    RunStageFactory(run=other.run, environment="QA", result="succeeded")
    assert_refused(approval, approver, "qa_first", authenticated_at=just_now())


def test_an_unregistered_model_needs_qa_of_the_same_run(approver):
    rules_model = CatalogModelFactory(name="credit-limit-rules")
    approval = ApprovalRequestFactory(
        environment_name="PROD", model_version=None, catalog_model=rules_model
    )
    other_run = PipelineRunFactory(pipeline=approval.run.pipeline, model_version=None)
    RunStageFactory(run=other_run, environment="QA", result="succeeded")
    assert_refused(approval, approver, "qa_first", authenticated_at=just_now())

    RunStageFactory(run=approval.run, environment="QA", result="succeeded")
    decide(approval, approver, authenticated_at=just_now())


# PROD: a recent sign-in ----------------------------------------------------------------------


@pytest.mark.parametrize("signed_in_minutes_ago", [None, 16, 60 * 24])
def test_prod_needs_a_sign_in_within_15_minutes(approver, signed_in_minutes_ago):
    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", result="succeeded")
    authenticated_at = (
        None
        if signed_in_minutes_ago is None
        else timezone.now() - dt.timedelta(minutes=signed_in_minutes_ago)
    )
    refusal = assert_refused(
        approval, approver, "reauthentication_required", authenticated_at=authenticated_at
    )
    assert isinstance(refusal, services.ReauthenticationRequired)
    assert refusal.http_status == 401


def test_prod_within_15_minutes_of_signing_in_is_allowed(approver):
    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", result="succeeded")
    signed_in = timezone.now() - dt.timedelta(minutes=14)
    assert rule(approval, approver, "recent_sign_in", authenticated_at=signed_in).ok
    decide(approval, approver, authenticated_at=signed_in)


def test_qa_needs_no_recent_sign_in(approver):
    approval = ApprovalRequestFactory()
    codes = [r.code for r in services.decision_rules(approval=approval, user=approver)]
    assert "recent_sign_in" not in codes and "qa_first" not in codes
    decide(approval, approver, authenticated_at=None)


# How many approvers --------------------------------------------------------------------------


def test_two_required_approvers_the_first_keeps_it_pending(approver, make_user):
    approval = ApprovalRequestFactory(min_required_approvers=2)
    first = decide(approval, approver, comment="one")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING and approval.decided_in == ""
    made = AuditEvent.objects.get(action=AuditAction.DECISION_MADE, decision=first)
    assert made.detail["closes_request"] is False and made.detail["approvals_so_far"] == 1
    assert first.outbox.state == OutboxState.QUEUED


def test_a_second_approver_is_sent_to_ado_while_the_portal_decides_as_one_identity(
    approver, make_user
):
    """ADO counts one approval per identity, and every decision reaches it with the portal's
    credentials: a second portal decision could never be delivered, so it is refused up front
    with the way out, instead of failing after the page said "approved"."""
    approval = ApprovalRequestFactory(min_required_approvers=2)
    decide(approval, approver, comment="one")
    bob = make_user("approver", first_name="Bob", last_name="Second")
    assert_refused(approval, bob, "one_identity", http_status=409)
    approval.refresh_from_db()
    assert approval.is_open
    assert OutboxMessage.objects.filter(approval=approval).count() == 1


def test_one_rejection_closes_it_at_once(approver):
    approval = ApprovalRequestFactory(min_required_approvers=3)
    decide(approval, approver, status="rejected", comment="Not with this drift")
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.REJECTED
    assert approval.decided_in == DecidedIn.PORTAL and approval.decided_by == "Alice Approver"
