"""The approvals admin: read-only mirrors, a strictly read-only audit trail, and the "Retry
delivery" action on failed outbox messages."""

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.urls import reverse

from approvals import services
from approvals.models import (
    ApprovalRequest,
    ApprovalSync,
    AuditAction,
    AuditEvent,
    Decision,
    Notification,
    OutboxMessage,
    OutboxState,
)
from core.roles import Role
from tests.approvals.factories import ApprovalRequestFactory

pytestmark = pytest.mark.django_db

MODELS = [ApprovalRequest, Decision, OutboxMessage, AuditEvent, Notification, ApprovalSync]


def admin_url(model, view: str, *args) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.fixture
def operator(make_user):
    return make_user(Role.ADMIN, username="oscar")


@pytest.fixture
def admin_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def decided(make_user):
    """A decision on a pending approval, with its outbox message and audit rows, and a
    notification: a row in every table."""
    approval = ApprovalRequestFactory()
    approver = make_user(Role.APPROVER, username="alice")
    decision = services.approval_decide(
        approval_id=approval.pk, user=approver, status="approved", comment="ok"
    )
    Notification.objects.create(approval=approval, kind="arrived", channel="email")
    ApprovalSync.objects.create(project=approval.project, last_error="HTTP 503")
    return decision


def test_every_changelist_and_change_page_renders_for_an_operator(admin_client, decided):
    for model in MODELS:
        response = admin_client.get(admin_url(model, "changelist"))
        assert response.status_code == 200, model
        row = model.objects.first()
        assert admin_client.get(admin_url(model, "change", row.pk)).status_code == 200, model


def test_the_changelists_filter_and_search(admin_client, decided):
    url = admin_url(ApprovalRequest, "changelist")
    assert (
        admin_client.get(url + "?environment__exact=QA&status__exact=approved").status_code == 200
    )
    assert admin_client.get(url + "?q=Release+Bot").status_code == 200
    url = admin_url(OutboxMessage, "changelist")
    assert admin_client.get(url + "?state__exact=queued").status_code == 200
    url = admin_url(AuditEvent, "changelist")
    who = decided.user_name.split()[-1]
    response = admin_client.get(f"{url}?action__exact=decision.made&environment__exact=QA&q={who}")
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    response = admin_client.get(f"{url}?action__exact=decision.refused")
    assert response.context["cl"].result_count == 0


def test_the_audit_trail_cannot_be_added_changed_or_deleted(admin_client, rf, operator, decided):
    model_admin = admin.site._registry[AuditEvent]
    request = rf.get("/")
    request.user = operator
    operator.is_superuser = True  # not even a superuser
    event = AuditEvent.objects.first()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, event)
    assert not model_admin.has_delete_permission(request, event)
    assert "delete_selected" not in model_admin.get_actions(request)
    operator.is_superuser = False
    before = list(AuditEvent.objects.values_list("pk", "message"))
    assert admin_client.get(admin_url(AuditEvent, "add")).status_code == 403
    assert admin_client.get(admin_url(AuditEvent, "delete", event.pk)).status_code == 403
    posted = admin_client.post(admin_url(AuditEvent, "change", event.pk), {"message": "edited"})
    assert posted.status_code == 403
    bulk = admin_client.post(
        admin_url(AuditEvent, "changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert list(AuditEvent.objects.values_list("pk", "message")) == before


@pytest.mark.parametrize("model", [ApprovalRequest, Decision, OutboxMessage, Notification])
def test_the_mirrors_are_read_only(admin_client, decided, model):
    assert admin_client.get(admin_url(model, "add")).status_code == 403
    row = model.objects.first()
    assert admin_client.get(admin_url(model, "delete", row.pk)).status_code == 403


def test_retry_delivery_requeues_failed_messages_and_names_the_others(
    admin_client, operator, decided, make_user
):
    failed = decided.outbox
    OutboxMessage.objects.filter(pk=failed.pk).update(
        state=OutboxState.FAILED, last_error="ADO refused the portal's credentials"
    )
    other_approval = ApprovalRequestFactory()
    delivered = services.approval_decide(
        approval_id=other_approval.pk,
        user=make_user(Role.APPROVER),
        status="approved",
        comment="fine",
    ).outbox
    OutboxMessage.objects.filter(pk=delivered.pk).update(state=OutboxState.DELIVERED)
    response = admin_client.post(
        admin_url(OutboxMessage, "changelist"),
        {"action": "retry_delivery", "_selected_action": [failed.pk, delivered.pk]},
    )
    assert response.status_code == 302
    notes = [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]
    assert ("success", f"Outbox message #{failed.pk} is queued for delivery again.") in notes
    assert (
        "warning",
        f"Outbox message #{delivered.pk} was not retried: only a failed delivery can be, "
        "and it is delivered to ado.",
    ) in notes
    failed.refresh_from_db()
    delivered.refresh_from_db()
    assert failed.state == OutboxState.QUEUED and delivered.state == OutboxState.DELIVERED
    retried = AuditEvent.objects.get(action=AuditAction.DELIVERY_RETRY_REQUESTED)
    assert retried.actor == operator and retried.decision == decided


def test_the_admin_is_refused_to_approvers(client, make_user, decided):
    client.force_login(make_user(Role.APPROVER))
    assert client.get(admin_url(OutboxMessage, "changelist")).status_code == 403
