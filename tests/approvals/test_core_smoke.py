"""The core path, end to end in one process: sync, decide, deliver, sync again."""

import pytest

from approvals import services
from approvals.models import ApprovalStatus, AuditAction, AuditEvent, OutboxState
from tests.approvals.conftest import mirror, wait_at

pytestmark = pytest.mark.django_db


def test_decide_and_deliver_moves_the_run_on(
    sim, project, ado_client, fraud, waiting_qa, make_user
):
    approval = waiting_qa
    assert approval.environment == "QA"
    assert approval.model_version == fraud["v2"]
    assert approval.catalog_model == fraud["catalog"]
    approver = make_user("approver", email="alice@example.com")
    decision = services.approval_decide(
        approval_id=approval.pk, user=approver, status="approved", comment="Looks good"
    )
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED
    outcome = services.outbox_deliver(message_id=decision.outbox.pk, client=ado_client)
    assert outcome.state == OutboxState.DELIVERED
    decision.outbox.refresh_from_db()
    assert decision.outbox.state == OutboxState.DELIVERED
    ado_approval = sim.approval(approval.ado_id)
    assert ado_approval.status == "approved"
    # again: nothing re-sent
    patches = [r for r in sim.request_log() if r["method"] == "PATCH"]
    assert len(patches) == 1
    run = ado_approval.run
    prod_id = wait_at(sim, run, "PROD")
    mirror(project, ado_client)
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert AuditAction.DECISION_MADE in actions
    assert AuditAction.DELIVERY_DELIVERED in actions
    assert prod_id
