"""The audit trail: append-only in the app and in PostgreSQL, the request id on each row, and
a row for every step of a decision's life (request, refusal, decision, delivery attempts,
ADO's own changes, notices)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from approvals import services
from approvals.models import (
    ApprovalRequest,
    AuditAction,
    AuditEvent,
    OutboxState,
)
from core.request_context import reset_request_id, set_request_id
from tests.approvals.conftest import PAT
from tests.approvals.factories import ApprovalRequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def request_id():
    token = set_request_id("req-3f2a9c")
    yield "req-3f2a9c"
    reset_request_id(token)


@pytest.fixture
def event():
    return services.audit_record(
        action=AuditAction.DECISION_MADE,
        actor_name="Alice Approver",
        approval=ApprovalRequestFactory(),
        message="Approved QA deployment",
        detail={"status": "approved"},
    )


def unchanged(event) -> bool:
    row = AuditEvent.objects.get(pk=event.pk)
    return row.message == "Approved QA deployment" and row.actor_name == "Alice Approver"


# Append-only ---------------------------------------------------------------------------------


def test_a_row_cannot_be_saved_again(event):
    event.message = "rewritten"
    with pytest.raises(TypeError, match="append-only"):
        event.save()
    assert unchanged(event)


def test_a_row_cannot_be_deleted(event):
    with pytest.raises(TypeError, match="append-only"):
        event.delete()
    assert unchanged(event)


@pytest.mark.parametrize(
    "change",
    [
        lambda qs, e: qs.filter(pk=e.pk).update(message="rewritten"),
        lambda qs, e: qs.filter(pk=e.pk).delete(),
        lambda qs, e: qs.all().delete(),
        lambda qs, e: qs.bulk_update([e], ["message"]),
        lambda qs, e: qs.update_or_create(pk=e.pk, defaults={"message": "rewritten"}),
        lambda qs, e: e.approval.audit_events.all().delete(),
        lambda qs, e: e.approval.audit_events.update(message="rewritten"),
    ],
    ids=["update", "delete", "delete-all", "bulk_update", "update_or_create", "related-delete",
         "related-update"],
)  # fmt: skip
def test_querysets_cannot_update_or_delete_rows(event, change):
    event.message = "rewritten"
    with pytest.raises(TypeError, match="append-only"):
        change(AuditEvent.objects, event)
    assert unchanged(event)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE approvals_auditevent SET message = 'rewritten' WHERE id = %s",
        "DELETE FROM approvals_auditevent WHERE id = %s",
    ],
)
def test_postgresql_refuses_update_and_delete(event, sql):
    assert connection.vendor == "postgresql"
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.pk])
    assert unchanged(event)


def test_the_admin_shows_the_trail_but_cannot_change_it(event, make_user, client):
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    assert client.get(reverse("admin:approvals_auditevent_changelist")).status_code == 200
    change_url = reverse("admin:approvals_auditevent_change", args=[event.pk])
    assert client.get(change_url).status_code == 200
    assert client.get(reverse("admin:approvals_auditevent_add")).status_code == 403
    delete_url = reverse("admin:approvals_auditevent_delete", args=[event.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert client.post(change_url, {"message": "rewritten"}).status_code == 403
    assert unchanged(event)


# The request id ------------------------------------------------------------------------------


def test_a_decision_and_its_rows_carry_the_request_id(request_id, make_user):
    approval = ApprovalRequestFactory()
    decision = services.approval_decide(
        approval_id=approval.pk, user=make_user("approver"), status="approved"
    )
    assert decision.request_id == request_id
    made = AuditEvent.objects.get(action=AuditAction.DECISION_MADE)
    assert made.request_id == request_id


def test_a_refusal_carries_the_request_id(request_id, make_user):
    approval = ApprovalRequestFactory()
    with pytest.raises(services.DecisionRefused):
        services.approval_decide(
            approval_id=approval.pk, user=make_user("manager"), status="approved"
        )
    refused = AuditEvent.objects.get(action=AuditAction.DECISION_REFUSED)
    assert refused.request_id == request_id


# Every step writes its row -------------------------------------------------------------------


def trail(approval) -> list[str]:
    return list(
        AuditEvent.objects.filter(approval=approval).order_by("pk").values_list("action", flat=True)
    )


def test_an_approval_s_trail_from_request_to_confirmation(
    sim, project, ado_client, waiting_qa, make_user, settings
):
    approval = waiting_qa
    requester = make_user("approver", email=approval.run.requested_by_id)
    alice = make_user("approver", first_name="Alice", last_name="Approver")

    with pytest.raises(services.DecisionRefused):
        services.approval_decide(approval_id=approval.pk, user=requester, status="approved")
    decision = services.approval_decide(
        approval_id=approval.pk, user=alice, status="approved", comment="fine"
    )
    settings.APPROVALS_DELIVERY_CLIENT_RETRIES = 0
    sim.fail_next(1, 503, path="/pipelines/approvals")
    assert services.outbox_deliver(message_id=decision.outbox.pk).state == OutboxState.QUEUED
    assert services.outbox_deliver(message_id=decision.outbox.pk).state == OutboxState.DELIVERED
    services.project_approvals_sync(project=project, client=ado_client)  # nothing new

    assert trail(approval) == [
        AuditAction.APPROVAL_REQUESTED,
        AuditAction.DECISION_REFUSED,
        AuditAction.DECISION_MADE,
        AuditAction.DELIVERY_ATTEMPT,
        AuditAction.DELIVERY_DELIVERED,
        AuditAction.APPROVAL_CONFIRMED,
    ]
    rows = list(AuditEvent.objects.filter(approval=approval).order_by("pk"))
    assert {r.environment for r in rows} == {"QA"}
    assert {r.model_name for r in rows} == {"fraud-detector"}
    by_action = {r.action: r for r in rows}
    assert by_action[AuditAction.DECISION_REFUSED].actor == requester
    assert by_action[AuditAction.DECISION_REFUSED].detail["code"] == "requester"
    made = by_action[AuditAction.DECISION_MADE]
    assert made.actor == alice and made.decision == decision and made.actor_name == "Alice Approver"
    assert made.detail["outbox_message"] == decision.outbox.pk
    assert by_action[AuditAction.DELIVERY_ATTEMPT].actor_name == services.DELIVERY_ACTOR
    assert by_action[AuditAction.DELIVERY_DELIVERED].decision == decision
    assert all(r.at is not None for r in rows)


def test_an_approval_s_trail_when_ado_decided_first_and_a_delivery_failed(
    sim, project, ado_client, fraud, release, make_user, settings
):
    from tests.approvals.conftest import mirror, wait_at

    alice = make_user("approver")
    admin = make_user("admin")
    runs = [sim.queue_run(release, template_parameters={"modelVersion": "2"}) for _ in range(2)]
    ids = [wait_at(sim, run, "QA") for run in runs]
    mirror(project, ado_client)
    first, second = (ApprovalRequest.objects.get(ado_id=i) for i in ids)

    # ADO decided before the portal's decision got there.
    decision = services.approval_decide(approval_id=first.pk, user=alice, status="approved")
    sim.decide(first.ado_id, "rejected", "someone@example.com", "no")
    services.outbox_deliver(message_id=decision.outbox.pk, client=ado_client)
    assert trail(first) == [
        AuditAction.APPROVAL_REQUESTED,
        AuditAction.DECISION_MADE,
        AuditAction.DELIVERY_ALREADY_DECIDED,
        AuditAction.APPROVAL_CHANGED_IN_ADO,
    ]

    # The credentials were wrong; an admin retries once they are fixed.
    settings.AZURE_DEVOPS_PAT = "wrong"
    decision = services.approval_decide(
        approval_id=second.pk, user=alice, status="rejected", comment="drift"
    )
    services.outbox_deliver(message_id=decision.outbox.pk)
    settings.AZURE_DEVOPS_PAT = PAT
    services.outbox_retry(message_id=decision.outbox.pk, user=admin)
    services.outbox_deliver(message_id=decision.outbox.pk)
    assert trail(second) == [
        AuditAction.APPROVAL_REQUESTED,
        AuditAction.DECISION_MADE,
        AuditAction.DELIVERY_FAILED,
        AuditAction.DELIVERY_RETRY_REQUESTED,
        AuditAction.DELIVERY_DELIVERED,
        AuditAction.APPROVAL_CONFIRMED,
    ]
    retry = AuditEvent.objects.get(action=AuditAction.DELIVERY_RETRY_REQUESTED)
    assert retry.actor == admin
