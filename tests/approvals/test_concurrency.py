"""Racing decisions over the real HTTP API (live server, real sessions and CSRF tokens,
PostgreSQL row locks, the ADO simulator over HTTP).

The issue's reliability promise: 50 concurrent approve / reject POSTs on one approval from one
approver give one decision, one outbox message, one PATCH received by ADO, 49 clear "already
decided" answers and no 5xx; two approvers racing for the one approval required: one wins,
the other is told.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.conf import settings
from django.test import Client

from ado_simulator import AdoSimulator
from approvals import services
from approvals.models import (
    ApprovalStatus,
    AuditAction,
    AuditEvent,
    Decision,
    OutboxMessage,
    OutboxState,
)
from core.roles import Role
from tests.approvals.conftest import PAT, PAT_USER

# Rows written by the live server's threads must be visible to them and to this thread.
pytestmark = pytest.mark.django_db(transaction=True)

POSTS = 50
# The PAT a test session's Celery worker uses (portal.settings.test): if one is running in this
# session it may pick up the delivery task, and must then reach the simulator too.
WORKER_PAT = "simulator-pat"


@pytest.fixture
def sim():
    """The approvals conftest's simulator, also accepting the session worker's PAT."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    simulator = AdoSimulator(start=start, pats={PAT: PAT_USER, WORKER_PAT: PAT_USER}).start()
    yield simulator
    simulator.stop()


def csrf_token(live_server) -> str:
    """A CSRF cookie as a browser gets it: from the sign-in page."""
    response = requests.get(f"{live_server.url}/accounts/login/", timeout=30)
    assert response.status_code == 200
    return response.cookies["csrftoken"]


def api_session(live_server, user, token: str) -> requests.Session:
    """A requests session signed in as ``user`` (a real session row) with the CSRF token,
    its connection to the live server already open."""
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set(
        settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
    )
    session.cookies.set("csrftoken", token)
    session.headers.update({"X-CSRFToken": token, "Accept": "application/json"})
    # Open its connection now (kept alive), so the race is between requests in Django and
    # PostgreSQL, not between 50 TCP handshakes queueing at the test server's small backlog.
    warm = session.get(f"{live_server.url}/api/v1/me", timeout=30)
    assert warm.status_code == 200 and warm.headers.get("Connection") != "close", warm.headers
    return session


def race(live_server, approval_id: int, attempts: list[tuple[requests.Session, dict]]):
    """POST every (session, body) at the same moment; [(status, json body)] in order."""
    url = f"{live_server.url}/api/v1/approvals/{approval_id}/decision"
    barrier = threading.Barrier(len(attempts))

    def post(attempt):
        session, body = attempt
        barrier.wait(timeout=60)
        response = session.post(url, json=body, timeout=120)
        try:
            payload = response.json()
        except ValueError:
            payload = {"raw": response.text[:500]}
        return response.status_code, payload

    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return list(pool.map(post, attempts))


def deliver_once(message: OutboxMessage, ado_client) -> OutboxMessage:
    """Deliver here (or let a session worker that took the task finish), until final."""
    outcome = services.outbox_deliver(message_id=message.pk, client=ado_client)
    deadline = time.monotonic() + 60
    while True:
        message.refresh_from_db()
        if message.state != OutboxState.QUEUED or time.monotonic() > deadline:
            return message
        time.sleep(0.2)
        if outcome.state == "busy":  # a worker held it; it lets go when done
            outcome = services.outbox_deliver(message_id=message.pk, client=ado_client)


def test_fifty_racing_posts_from_one_approver_make_one_decision_and_one_patch(
    live_server, sim, ado_client, waiting_qa, make_user
):
    approval = waiting_qa
    approver = make_user(Role.APPROVER, username="alice", email="alice@example.com")
    token = csrf_token(live_server)
    bodies = [
        {"status": "approved", "comment": f"attempt {n}"}
        if n % 2 == 0
        else {"status": "rejected", "comment": f"attempt {n}: not yet"}
        for n in range(POSTS)
    ]
    attempts = [(api_session(live_server, approver, token), body) for body in bodies]
    patches_before = [r for r in sim.request_log() if r["method"] == "PATCH"]
    assert patches_before == []

    answers = race(live_server, approval.pk, attempts)

    statuses = Counter(status for status, _ in answers)
    assert not [a for a in answers if a[0] >= 500], answers
    assert statuses == {201: 1, 409: POSTS - 1}, answers
    [winner] = [body for status, body in answers if status == 201]
    for status, body in answers:
        if status == 409:
            assert body["code"] in ("already_decided", "already_decided_by_you"), body
            assert "already" in body["detail"].lower(), body
    decision = Decision.objects.get()
    assert winner["id"] == decision.pk and decision.status == winner["status"]
    message = OutboxMessage.objects.get()
    assert message.decision == decision
    approval.refresh_from_db()
    assert approval.status == decision.status
    assert AuditEvent.objects.filter(action=AuditAction.DECISION_MADE).count() == 1
    refused = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED)
    assert refused.count() == POSTS - 1

    message = deliver_once(message, ado_client)
    assert message.state == OutboxState.DELIVERED, message.last_error
    # delivering again (a retry, the sweep, a redelivered task) sends nothing
    again = services.outbox_deliver(message_id=message.pk, client=ado_client)
    assert again.state in (OutboxState.DELIVERED, "missing"), again
    patches = [r for r in sim.request_log() if r["method"] == "PATCH"]
    assert len(patches) == 1, patches
    assert sim.approval(approval.ado_id).status == decision.status


def test_two_approvers_racing_for_one_required_approval_one_wins_one_is_told(
    live_server, sim, waiting_qa, make_user
):
    approval = waiting_qa
    assert approval.min_required_approvers == 1
    alice = make_user(Role.APPROVER, username="alice", first_name="Alice", last_name="A")
    bob = make_user(Role.APPROVER, username="bob", first_name="Bob", last_name="B")
    token = csrf_token(live_server)
    attempts = [
        (api_session(live_server, alice, token), {"status": "approved", "comment": "ok"}),
        (api_session(live_server, bob, token), {"status": "approved", "comment": "ok too"}),
    ]

    answers = race(live_server, approval.pk, attempts)

    assert sorted(status for status, _ in answers) == [201, 409], answers
    decision = Decision.objects.get()
    winner = decision.user_name
    [(_, told)] = [a for a in answers if a[0] == 409]
    assert told["code"] == "already_decided"
    assert told["detail"] == f"Already approved by {winner}; nothing left to decide."
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.decided_by == winner
    assert OutboxMessage.objects.count() == 1
