"""Delivering decisions to the ADO simulator over HTTP through the outbox: once, never twice,
with visible terminal outcomes, retries with backoff (Retry-After honoured), the admin's
retry, the sweep of stuck messages and the claim that keeps two deliverers apart."""

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
    OutboxMessage,
    OutboxState,
)
from pipelines.client import AdoClient, AdoCredentials
from tests.approvals.conftest import PAT, mirror, wait_at
from tests.approvals.factories import ApprovalRequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(make_user):
    return make_user("approver", first_name="Alice", last_name="Approver")


@pytest.fixture
def admin(make_user):
    return make_user("admin")


def approve(approval, user, comment="Metrics look right") -> OutboxMessage:
    decision = services.approval_decide(
        approval_id=approval.pk, user=user, status="approved", comment=comment
    )
    return decision.outbox


def deliver(message, client=None) -> services.DeliveryOutcome:
    outcome = services.outbox_deliver(message_id=message.pk, client=client)
    message.refresh_from_db()
    return outcome


def patches(sim, since=0) -> list[dict]:
    return [r for r in sim.request_log(since) if r["method"] == "PATCH"]


def delivery_audit(message, action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(decision_id=message.decision_id, action=action))


# Delivered -----------------------------------------------------------------------------------


def test_a_decision_is_patched_once_with_the_approver_s_name_and_the_portal_mark(
    sim, project, ado_client, waiting_qa, alice
):
    message = approve(waiting_qa, alice, comment="Metrics look right")
    outcome = deliver(message, ado_client)

    assert outcome.state == OutboxState.DELIVERED and outcome.retry_in is None
    [patch] = sim.patch_log
    [body] = patch["body"]
    assert set(body) == {"approvalId", "status", "comment"}
    assert body["approvalId"] == waiting_qa.ado_id and body["status"] == "approved"
    assert body["comment"].startswith("Metrics look right")
    assert "Alice Approver" in body["comment"]
    assert f"{services.PORTAL_MARK} {message.decision_id})" in body["comment"]
    assert body == message.payload[0]
    assert sim.approval(waiting_qa.ado_id).status == "approved"

    assert message.state == OutboxState.DELIVERED and message.delivered_at is not None
    assert message.attempts == 1 and message.claimed_until is None and message.last_error == ""
    assert message.ado_outcome["patched_now"] is True
    assert message.ado_outcome["ado_status"] == "approved"
    assert len(delivery_audit(message, AuditAction.DELIVERY_DELIVERED)) == 1

    # The run goes on to PROD, whose approval the next sync brings in.
    prod_id = wait_at(sim, sim.approval(waiting_qa.ado_id).run, "PROD")
    mirror(project, ado_client)
    prod = ApprovalRequest.objects.get(ado_id=prod_id)
    assert prod.environment == "PROD" and prod.run == waiting_qa.run


def test_delivering_a_delivered_message_again_sends_nothing(
    sim, project, ado_client, waiting_qa, alice
):
    message = approve(waiting_qa, alice)
    deliver(message, ado_client)
    before = sim.request_count
    outcome = deliver(message, ado_client)
    assert outcome.state == "missing" and outcome.retry_in is None  # no queued message by that id
    assert message.state == OutboxState.DELIVERED
    assert sim.request_count == before  # not even a read
    assert message.attempts == 1
    assert len(delivery_audit(message, AuditAction.DELIVERY_DELIVERED)) == 1


def test_a_retry_after_ado_took_the_patch_reads_it_back_and_sends_nothing(
    sim, project, ado_client, waiting_qa, alice
):
    """The worker died after ADO applied the PATCH, before it recorded it: the message is
    queued again; the next attempt finds the decision in ADO and does not PATCH twice."""
    message = approve(waiting_qa, alice)
    deliver(message, ado_client)
    OutboxMessage.objects.filter(pk=message.pk).update(state=OutboxState.QUEUED)
    before = sim.request_count
    outcome = deliver(message, ado_client)
    assert outcome.state == OutboxState.DELIVERED
    assert patches(sim, before) == [] and len(sim.patch_log) == 1
    assert message.ado_outcome["patched_now"] is False
    [second] = delivery_audit(message, AuditAction.DELIVERY_DELIVERED)[:1]
    assert "nothing re-sent" in second.message


# Terminal outcomes ---------------------------------------------------------------------------


def test_ado_already_decided_by_someone_else_is_terminal_and_visible(
    sim, project, ado_client, waiting_qa, alice
):
    message = approve(waiting_qa, alice)
    sim.decide(waiting_qa.ado_id, "rejected", "someone@example.com", "blocked by security")
    outcome = deliver(message, ado_client)

    assert outcome.state == OutboxState.ALREADY_DECIDED and outcome.retry_in is None
    assert patches(sim) == []
    assert message.state == OutboxState.ALREADY_DECIDED and message.is_final
    assert "already rejected in Azure DevOps by someone@example.com" in message.last_error
    assert message.ado_outcome == {"ado_status": "rejected", "decided_by": "someone@example.com"}
    approval = ApprovalRequest.objects.get(pk=waiting_qa.pk)
    assert approval.status == approval.ado_status == ApprovalStatus.REJECTED
    assert approval.decided_in == DecidedIn.ADO and approval.decided_by == "someone@example.com"
    assert len(delivery_audit(message, AuditAction.DELIVERY_ALREADY_DECIDED)) == 1

    before = sim.request_count
    assert deliver(message, ado_client).retry_in is None  # no loop
    assert message.state == OutboxState.ALREADY_DECIDED and sim.request_count == before


class DecidedMeanwhile(AdoClient):
    """Someone decides in ADO between the deliverer's read and its PATCH."""

    def __init__(self, sim, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sim = sim

    def update_approvals(self, updates, **kwargs):
        self.sim.decide(updates[0]["approvalId"], "rejected", "someone@example.com", "raced")
        return super().update_approvals(updates, **kwargs)


def test_a_400_on_the_patch_is_read_back_and_classified(sim, project, waiting_qa, alice):
    client = DecidedMeanwhile(
        sim, sim.org_url, "MLOps", AdoCredentials(pat=PAT), sleep=lambda s: None
    )
    message = approve(waiting_qa, alice)
    outcome = deliver(message, client)
    assert [p["status"] for p in patches(sim)] == [400]
    assert outcome.state == OutboxState.ALREADY_DECIDED
    assert "already rejected" in message.last_error
    assert ApprovalRequest.objects.get(pk=waiting_qa.pk).status == ApprovalStatus.REJECTED


def test_a_400_while_ado_still_waits_fails_with_the_reason(
    sim, project, ado_client, waiting_qa, alice
):
    message = approve(waiting_qa, alice)
    sim.fail_next(1, 400, method="PATCH")
    outcome = deliver(message, ado_client)
    assert outcome.state == OutboxState.FAILED and outcome.retry_in is None
    assert message.state == OutboxState.FAILED
    assert message.last_error.startswith("ADO refused the decision")
    assert len(delivery_audit(message, AuditAction.DELIVERY_FAILED)) == 1


def test_an_approval_ado_no_longer_has_fails_with_the_reason(
    sim, project, ado_client, waiting_qa, alice
):
    message = approve(waiting_qa, alice)
    ApprovalRequest.objects.filter(pk=waiting_qa.pk).update(
        ado_id="00000000-0000-0000-0000-00000000dead"
    )
    outcome = deliver(message, ado_client)
    assert outcome.state == OutboxState.FAILED
    assert "no longer has this approval" in message.last_error
    assert patches(sim) == []


@pytest.mark.parametrize("pat", ["not-the-right-pat", ""])
def test_refused_or_missing_credentials_fail_with_the_reason(
    sim, project, waiting_qa, alice, settings, pat
):
    settings.AZURE_DEVOPS_PAT = pat
    message = approve(waiting_qa, alice)
    outcome = deliver(message)  # the delivery client of settings
    assert outcome.state == OutboxState.FAILED and outcome.retry_in is None
    assert message.state == OutboxState.FAILED and message.claimed_until is None
    assert "credentials" in message.last_error
    assert patches(sim) == []


# Transient failures --------------------------------------------------------------------------


@pytest.fixture
def slow_backoff(settings):
    """Backoff in tens of seconds (the fixtures' default is a few ms), one attempt per try."""
    settings.APPROVALS_DELIVERY_BACKOFF_SECONDS = 30
    settings.APPROVALS_DELIVERY_BACKOFF_MAX_SECONDS = 600
    settings.APPROVALS_DELIVERY_CLIENT_RETRIES = 0


@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_a_500_leaves_the_message_queued_for_later(
    sim, project, waiting_qa, alice, slow_backoff, method
):
    message = approve(waiting_qa, alice)
    sim.fail_next(1, 500, path="/pipelines/approvals", method=method)
    outcome = deliver(message)
    assert outcome.state == OutboxState.QUEUED and outcome.retry_in >= 15
    assert message.state == OutboxState.QUEUED and message.claimed_until is None
    assert message.next_attempt_at > timezone.now() + dt.timedelta(seconds=10)
    assert "500" in message.last_error and message.attempts == 1
    [attempt] = delivery_audit(message, AuditAction.DELIVERY_ATTEMPT)
    assert attempt.detail["retry_in_seconds"] == round(outcome.retry_in, 1)

    assert deliver(message).state == OutboxState.DELIVERED  # after recovery: once
    assert [p["status"] for p in patches(sim)] == ([500, 200] if method == "PATCH" else [200])
    assert [e["status"] for e in sim.patch_log] == [200]  # ADO applied one decision
    assert sim.approval(waiting_qa.ado_id).status == "approved"


def test_a_429_honours_retry_after(sim, project, waiting_qa, alice, slow_backoff):
    message = approve(waiting_qa, alice)
    sim.throttle_next(1, retry_after=240, path="/pipelines/approvals")
    outcome = deliver(message)
    assert outcome.state == OutboxState.QUEUED and outcome.retry_in >= 240
    assert message.next_attempt_at >= message.last_attempt_at + dt.timedelta(seconds=240)
    assert "HTTP 429" in message.last_error and message.attempts == 1
    assert patches(sim) == []


def test_backoff_grows_with_the_attempts(settings):
    settings.APPROVALS_DELIVERY_BACKOFF_SECONDS = 2
    settings.APPROVALS_DELIVERY_BACKOFF_MAX_SECONDS = 300
    assert 1 <= services.delivery_backoff(1, None) <= 2
    assert 16 <= services.delivery_backoff(5, None) <= 32
    assert 150 <= services.delivery_backoff(30, None) <= 300  # capped
    assert services.delivery_backoff(1, 90) == 90  # Retry-After wins when longer


# An admin's retry ----------------------------------------------------------------------------


def test_an_admin_retries_a_failed_delivery(
    sim, project, waiting_qa, alice, admin, make_user, settings, django_capture_on_commit_callbacks
):
    settings.AZURE_DEVOPS_PAT = "not-the-right-pat"
    message = approve(waiting_qa, alice)
    assert deliver(message).state == OutboxState.FAILED
    settings.AZURE_DEVOPS_PAT = PAT  # the operator fixed the credentials

    with pytest.raises(services.DecisionRefused) as refused:
        services.outbox_retry(message_id=message.pk, user=make_user("approver"))
    assert refused.value.code == "not_an_admin" and refused.value.http_status == 403

    with django_capture_on_commit_callbacks() as callbacks:
        services.outbox_retry(message_id=message.pk, user=admin)
    assert len(callbacks) == 1  # the delivery task, once committed
    message.refresh_from_db()
    assert message.state == OutboxState.QUEUED and message.next_attempt_at <= timezone.now()
    [retry] = delivery_audit(message, AuditAction.DELIVERY_RETRY_REQUESTED)
    assert retry.actor == admin and "credentials" in retry.message

    assert deliver(message).state == OutboxState.DELIVERED
    assert len(sim.patch_log) == 1


def test_only_a_failed_delivery_can_be_retried(sim, project, ado_client, waiting_qa, alice, admin):
    message = approve(waiting_qa, alice)
    with pytest.raises(services.DecisionRefused) as queued:
        services.outbox_retry(message_id=message.pk, user=admin)
    assert queued.value.code == "not_failed" and queued.value.http_status == 409
    deliver(message, ado_client)
    with pytest.raises(services.DecisionRefused):
        services.outbox_retry(message_id=message.pk, user=admin)
    message.refresh_from_db()
    assert message.state == OutboxState.DELIVERED
    assert delivery_audit(message, AuditAction.DELIVERY_RETRY_REQUESTED) == []


# The sweep and the claim ---------------------------------------------------------------------


def test_the_sweep_requeues_only_messages_stuck_longer_than_the_limit(alice, settings):
    settings.APPROVALS_OUTBOX_STUCK_SECONDS = 60
    now = timezone.now()
    ago = lambda seconds: now - dt.timedelta(seconds=seconds)  # noqa: E731
    later = now + dt.timedelta(seconds=60)
    cases = {
        "stuck": dict(next_attempt_at=ago(120)),
        "stuck, its claim ran out": dict(next_attempt_at=ago(600), claimed_until=ago(5)),
        "due, not for long": dict(next_attempt_at=ago(10)),
        "waiting for its backoff": dict(next_attempt_at=later),
        "claimed by a worker": dict(next_attempt_at=ago(600), claimed_until=later),
        "delivered": dict(next_attempt_at=ago(600), state=OutboxState.DELIVERED),
        "failed": dict(next_attempt_at=ago(600), state=OutboxState.FAILED),
        "already decided": dict(next_attempt_at=ago(600), state=OutboxState.ALREADY_DECIDED),
    }
    ids = {}
    for name, fields in cases.items():
        message = approve(ApprovalRequestFactory(), alice)
        OutboxMessage.objects.filter(pk=message.pk).update(**fields)
        ids[name] = message.pk

    requeued = services.outbox_sweep()  # queues real tasks on this session's Redis queue
    assert sorted(requeued) == sorted([ids["stuck"], ids["stuck, its claim ran out"]])
    stuck = OutboxMessage.objects.get(pk=ids["stuck"])
    assert stuck.next_attempt_at >= now and stuck.state == OutboxState.QUEUED
    assert services.outbox_sweep() == []  # not queued twice by the next sweep


class SecondDeliverer(AdoClient):
    """While this deliverer holds the message, another one tries to deliver it too."""

    def __init__(self, message_id, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.message_id = message_id
        self.second: services.DeliveryOutcome | None = None

    def get_approval(self, approval_id, **kwargs):
        if self.second is None:
            self.second = services.outbox_deliver(message_id=self.message_id, client=self)
        return super().get_approval(approval_id, **kwargs)


def test_a_claimed_message_is_not_delivered_by_a_second_deliverer(sim, project, waiting_qa, alice):
    message = approve(waiting_qa, alice)
    client = SecondDeliverer(
        message.pk, sim.org_url, "MLOps", AdoCredentials(pat=PAT), sleep=lambda s: None
    )
    outcome = deliver(message, client)
    assert client.second.state == "busy" and client.second.retry_in > 0
    assert outcome.state == OutboxState.DELIVERED
    assert len(sim.patch_log) == 1 and message.attempts == 1
    assert len(delivery_audit(message, AuditAction.DELIVERY_DELIVERED)) == 1
