"""Notices about approvals: an e-mail to the named approvers (or the approver group) when a
request arrives and when it is about to expire, once each, and an optional Teams message
(posted here to a local HTTP receiver)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from approvals import services
from approvals.models import (
    ApprovalRequest,
    ApprovalStatus,
    AuditAction,
    AuditEvent,
    Notification,
)
from tests.approvals.conftest import wait_at
from tests.approvals.factories import ApprovalRequestFactory

pytestmark = pytest.mark.django_db

RELEASE_PARAMETERS = {"modelName": "fraud-detector", "modelVersion": "2", "deployTarget": "aks"}


class TeamsReceiver:
    """A stand-in Teams incoming webhook on 127.0.0.1, port 0; records what it is sent."""

    def __init__(self, status: int = 200):
        self.status = status
        self.posts: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
                )
                answer = b"1" if receiver.status < 300 else b"Webhook message delivery failed"
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhookb2/portal"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def teams(settings):
    receiver = TeamsReceiver()
    settings.APPROVALS_TEAMS_WEBHOOK_URL = receiver.url
    yield receiver
    receiver.stop()


@pytest.fixture
def approvers(make_user):
    """Who holds the approver role: two active with e-mail, one inactive, one without e-mail;
    a data scientist who must never get approval mail."""
    make_user("approver", email="inactive@example.com", is_active=False)
    make_user("approver", email="")
    make_user("data_scientist", email="dana@example.com")
    return [
        make_user("approver", email="Alice@Example.com"),
        make_user("approver", email="paul@example.com"),
    ]


def first_sync(project, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        result = services.project_approvals_sync(project=project, client=client)
    assert result.ok and result.created == 1
    assert len(callbacks) == 1  # the notice task, queued once the sync commits
    return result


# A new request -------------------------------------------------------------------------------


def test_a_new_group_approval_mails_the_active_approvers_once(
    sim, project, ado_client, fraud, release, approvers, django_capture_on_commit_callbacks
):
    run = sim.queue_run(release, template_parameters=RELEASE_PARAMETERS)
    wait_at(sim, run, "QA")
    result = first_sync(project, ado_client, django_capture_on_commit_callbacks)

    sent = services.notifications_send_new(approval_ids=result.new_ids)
    [approval_id] = result.new_ids
    assert sent == {approval_id: {"email": "sent"}}
    [message] = mail.outbox
    assert sorted(message.to) == ["alice@example.com", "paul@example.com"]
    assert "QA approval requested for fraud-detector version 2" in message.subject
    assert f"/approvals/{approval_id}/" in message.body
    assert "Check the QA evidence" in message.body  # ADO's instructions
    note = Notification.objects.get(approval_id=approval_id, kind="arrived", channel="email")
    assert note.sent_at is not None and note.error == ""
    assert sorted(note.recipients) == ["alice@example.com", "paul@example.com"]
    assert AuditEvent.objects.filter(
        approval_id=approval_id, action=AuditAction.NOTIFICATION_SENT
    ).exists()

    with django_capture_on_commit_callbacks() as callbacks:
        again = services.project_approvals_sync(project=project, client=ado_client)
    assert again.new_ids == [] and callbacks == []
    assert services.notifications_send_new(approval_ids=[approval_id]) == {approval_id: {}}
    assert len(mail.outbox) == 1


def test_named_approvers_are_mailed_and_nobody_else(
    sim, project, ado_client, fraud, approvers, django_capture_on_commit_callbacks
):
    pipe = sim.create_pipeline(
        "risk-fraud-detector-release",
        "release",
        folder="\\risk\\fraud-detector",
        approvers={"Deploy_QA": ["carol@example.com", "Bob@Example.com"]},
    )
    run = sim.queue_run(pipe, template_parameters=RELEASE_PARAMETERS)
    wait_at(sim, run, "QA")
    result = first_sync(project, ado_client, django_capture_on_commit_callbacks)
    services.notifications_send_new(approval_ids=result.new_ids)
    [message] = mail.outbox
    assert message.to == ["bob@example.com", "carol@example.com"]


def test_a_request_closed_before_its_notice_goes_out_is_not_announced(make_user):
    approval = ApprovalRequestFactory(status=ApprovalStatus.APPROVED)
    make_user("approver", email="alice@example.com")
    assert services.notifications_send_new(approval_ids=[approval.pk]) == {}
    assert mail.outbox == []


def test_no_approver_with_an_e_mail_is_recorded_not_raised():
    approval = ApprovalRequestFactory()
    sent = services.notifications_send_new(approval_ids=[approval.pk])
    assert sent == {approval.pk: {"email": "no recipient has an e-mail address"}}
    note = Notification.objects.get(approval=approval)
    assert note.sent_at is None and note.error
    assert mail.outbox == []


# About to expire -----------------------------------------------------------------------------


def test_a_request_about_to_expire_is_mailed_once(approvers, settings):
    settings.APPROVALS_EXPIRY_WARNING_HOURS = 24
    now = timezone.now()
    soon = ApprovalRequestFactory(expires_at=now + dt.timedelta(hours=3))
    ApprovalRequestFactory(expires_at=now + dt.timedelta(hours=30))  # not yet
    ApprovalRequestFactory(expires_at=now - dt.timedelta(minutes=5))  # too late
    ApprovalRequestFactory(  # decided
        expires_at=now + dt.timedelta(hours=3), status=ApprovalStatus.APPROVED
    )

    assert services.notifications_send_expiring() == {soon.pk: {"email": "sent"}}
    [message] = mail.outbox
    assert "expires soon" in message.subject
    assert f"{soon.expires_at:%Y-%m-%d %H:%M}" in message.body
    assert sorted(message.to) == ["alice@example.com", "paul@example.com"]
    assert Notification.objects.filter(approval=soon, kind="expiring").count() == 1

    assert services.notifications_send_expiring() == {}
    assert len(mail.outbox) == 1


def test_the_expiry_notice_is_separate_from_the_arrival_notice(approvers):
    approval = ApprovalRequestFactory(expires_at=timezone.now() + dt.timedelta(hours=1))
    services.notifications_send_new(approval_ids=[approval.pk])
    services.notifications_send_expiring()
    assert [m.subject.split("]")[1].strip() for m in mail.outbox] == [
        f"QA approval requested for {approval.catalog_model.name} version "
        f"{approval.model_version.version}",
        f"QA approval for {approval.catalog_model.name} version "
        f"{approval.model_version.version} expires soon",
    ]


# Teams ---------------------------------------------------------------------------------------


def test_teams_gets_a_message_card(teams, approvers, settings):
    approval = ApprovalRequestFactory(environment_name="PROD")
    sent = services.notifications_send_new(approval_ids=[approval.pk])
    assert sent == {approval.pk: {"email": "sent", "teams": "sent"}}
    [post] = teams.posts
    assert post["path"] == "/webhookb2/portal"
    card = post["json"]
    assert card["@type"] == "MessageCard"
    assert card["@context"] == "https://schema.org/extensions"
    assert card["title"] == card["summary"] == mail.outbox[0].subject
    assert card["themeColor"] == "DC3545"  # PROD
    [action] = card["potentialAction"]
    assert action["@type"] == "OpenUri"
    url = settings.PORTAL_BASE_URL.rstrip("/") + f"/approvals/{approval.pk}/"
    assert action["targets"] == [{"os": "default", "uri": url}]
    assert url in card["text"]
    note = Notification.objects.get(approval=approval, channel="teams")
    assert note.sent_at is not None and note.error == ""

    services.notifications_send_new(approval_ids=[approval.pk])
    assert len(teams.posts) == 1


def test_a_teams_failure_is_recorded_not_raised(teams, approvers):
    teams.status = 500
    approval = ApprovalRequestFactory()
    sent = services.notifications_send_new(approval_ids=[approval.pk])
    assert sent[approval.pk]["email"] == "sent"
    assert "HTTP 500" in sent[approval.pk]["teams"]
    note = Notification.objects.get(approval=approval, channel="teams")
    assert note.sent_at is None and "HTTP 500" in note.error
    assert len(mail.outbox) == 1  # the e-mail went out regardless


def test_an_unreachable_teams_webhook_is_recorded_not_raised(approvers, settings):
    receiver = TeamsReceiver()
    receiver.stop()  # nothing listens on that port any more
    settings.APPROVALS_TEAMS_WEBHOOK_URL = receiver.url
    approval = ApprovalRequestFactory()
    services.notifications_send_new(approval_ids=[approval.pk])
    note = Notification.objects.get(approval=approval, channel="teams")
    assert note.sent_at is None and "ConnectionError" in note.error


# The wiring: the sync queues the notice, a real worker sends it ------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_sync_queues_the_notice_and_the_worker_sends_it(
    celery_worker_process, sim, project, ado_client, fraud, release, make_user
):
    make_user("approver", email="alice@example.com")
    run = sim.queue_run(release, template_parameters=RELEASE_PARAMETERS)
    approval_id = wait_at(sim, run, "QA")
    result = services.project_approvals_sync(project=project, client=ado_client)
    assert result.created == 1
    approval = ApprovalRequest.objects.get(ado_id=approval_id)

    deadline = time.monotonic() + 60
    while not Notification.objects.filter(approval=approval, sent_at__isnull=False).exists():
        assert time.monotonic() < deadline, "the worker did not send the notice"
        time.sleep(0.2)
    note = Notification.objects.get(approval=approval)
    assert (note.kind, note.channel, note.recipients) == ("arrived", "email", ["alice@example.com"])
    assert mail.outbox == []  # sent by the worker process, not here
