"""The approvals sync against the ADO simulator over HTTP: the poll, linking each approval to
its run, stage, environment and model version, idempotence, what ADO decides by itself, the
service hooks that trigger a re-read, and the sync's bookkeeping."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from ado_simulator.auth import Identity
from approvals import services
from approvals.models import (
    ApprovalRequest,
    ApprovalStatus,
    ApprovalSync,
    AuditAction,
    AuditEvent,
    DecidedIn,
    OutboxState,
)
from pipelines.models import HookDelivery, PipelineRun
from tests.approvals.conftest import mirror, wait_at

pytestmark = pytest.mark.django_db

RELEASE_PARAMETERS = {"modelName": "fraud-detector", "modelVersion": "2", "deployTarget": "aks"}
APPROVAL_EVENTS = [
    "ms.vss-pipelinechecks-events.approval-pending",
    "ms.vss-pipelinechecks-events.approval-completed",
]


def poll(project, client) -> services.SyncResult:
    result = services.project_approvals_sync(project=project, client=client)
    assert result.ok, result.as_dict()
    return result


def audit_actions(approval: ApprovalRequest, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(approval=approval, action=action))


def release_waiting_at_qa(sim, release):
    run = sim.queue_run(release, template_parameters=RELEASE_PARAMETERS)
    return run, wait_at(sim, run, "QA")


# The poll ------------------------------------------------------------------------------------


def test_the_poll_asks_ado_for_pending_approvals_with_their_steps(
    sim, project, ado_client, release
):
    release_waiting_at_qa(sim, release)
    before = sim.request_count
    poll(project, ado_client)
    # (the first sync also reads the project's history once, without a state: see
    # test_history_import.py)
    [request] = [
        r
        for r in sim.request_log(before)
        if r["path"].endswith("/_apis/pipelines/approvals") and "state" in r["query"]
    ]
    assert request["method"] == "GET"
    assert request["query"]["state"] == "pending"
    assert request["query"]["$expand"] == "steps"


def test_a_qa_approval_is_linked_to_its_run_stage_environment_and_model_version(
    sim, project, fraud, waiting_qa
):
    approval = waiting_qa
    in_ado = sim.approval(approval.ado_id)
    run = PipelineRun.objects.get(ado_id=in_ado.run.id)
    assert approval.run == run and approval.build_id == in_ado.run.id
    assert approval.stage.run == run and approval.stage.environment == "QA"
    assert approval.ado_id in approval.stage.approval_ids
    assert approval.environment == "QA" and approval.stage_name == "QA"
    assert approval.catalog_model == fraud["catalog"]
    assert approval.model_version == fraud["v2"]
    assert approval.pipeline_name == "risk-fraud-detector-release"
    assert approval.run_name == in_ado.run.name
    assert approval.status == approval.ado_status == ApprovalStatus.PENDING
    assert approval.instructions == in_ado.stage.spec.instructions != ""
    assert approval.min_required_approvers == 1
    assert approval.created_on == in_ado.created_on
    assert approval.requested_by_id == run.requested_by_id != ""
    [group] = approval.assigned_approvers
    assert group["is_group"] and group["name"] == "[MLOps]\\QA Approvers"
    [requested] = audit_actions(approval, AuditAction.APPROVAL_REQUESTED)
    assert requested.at == approval.created_on


def test_a_prod_approval_is_linked_to_the_prod_stage(sim, project, ado_client, fraud, waiting_qa):
    run = sim.approval(waiting_qa.ado_id).run
    sim.decide(waiting_qa.ado_id, "approved", "qa-lead@example.com", "QA is fine")
    prod_id = wait_at(sim, run, "PROD")
    # Only the approvals poll: the mirror knows the run, but its timeline predates PROD's
    # checkpoint, so the run is re-read once to find the stage.
    assert poll(project, ado_client).linked_runs_refreshed == 1
    prod = ApprovalRequest.objects.get(ado_id=prod_id)
    assert prod.environment == "PROD" and prod.stage.environment == "PROD"
    assert prod.stage.run == prod.run == waiting_qa.run
    assert prod.model_version == fraud["v2"]
    assert prod.assigned_approvers[0]["name"] == "[MLOps]\\PROD Approvers"


def test_named_approvers_the_minimum_and_the_order_are_stored(sim, project, ado_client, fraud):
    pipe = sim.create_pipeline(
        "risk-fraud-detector-release",
        "release",
        folder="\\risk\\fraud-detector",
        approvers={"Deploy_QA": ["alice@example.com", "bob@example.com"]},
        blocked_approvers={"Deploy_QA": ["mallory@example.com"]},
        min_required_approvers=2,
        execution_order="inSequence",
    )
    run = sim.queue_run(pipe, template_parameters=RELEASE_PARAMETERS)
    approval_id = wait_at(sim, run, "QA")
    mirror(project, ado_client)
    approval = ApprovalRequest.objects.get(ado_id=approval_id)
    assert approval.min_required_approvers == 2
    assert approval.execution_order == "inSequence"
    assert [a["unique_name"] for a in approval.assigned_approvers] == [
        "alice@example.com",
        "bob@example.com",
    ]
    assert not any(a["is_group"] for a in approval.assigned_approvers)
    assert [b["unique_name"] for b in approval.blocked_approvers] == ["mallory@example.com"]
    assert [s["assigned"]["unique_name"] for s in approval.steps] == [
        "alice@example.com",
        "bob@example.com",
    ]


def test_an_approval_of_a_run_the_mirror_does_not_know_re_reads_that_run_once(
    sim, project, ado_client, fraud, release
):
    run, approval_id = release_waiting_at_qa(sim, release)
    assert not PipelineRun.objects.exists()  # no pipelines sync has run
    before = sim.request_count
    result = poll(project, ado_client)
    assert result.created == 1 and result.linked_runs_refreshed == 1
    build_reads = [
        r for r in sim.request_log(before) if r["path"].endswith(f"/_apis/build/builds/{run.id}")
    ]
    assert len(build_reads) == 1
    approval = ApprovalRequest.objects.get(ado_id=approval_id)
    assert approval.run.ado_id == run.id
    assert approval.stage is not None and approval.environment == "QA"
    assert approval.model_version == fraud["v2"]

    before = sim.request_count
    assert poll(project, ado_client).linked_runs_refreshed == 0  # linked: never re-read again
    assert not [r for r in sim.request_log(before) if "/build/builds" in r["path"]]


def test_syncing_again_changes_nothing(sim, project, ado_client, waiting_qa):
    approval = waiting_qa
    audit_rows = AuditEvent.objects.count()
    synced = ApprovalRequest.objects.values().get(pk=approval.pk)
    for _ in range(2):
        result = poll(project, ado_client)
        assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
        assert result.new_ids == []
    again = ApprovalRequest.objects.values().get(pk=approval.pk)
    synced.pop("last_synced_at"), again.pop("last_synced_at")
    assert again == synced
    assert AuditEvent.objects.count() == audit_rows
    assert ApprovalRequest.objects.count() == 1


# What ADO decides by itself ------------------------------------------------------------------


@pytest.mark.parametrize("status", [ApprovalStatus.APPROVED, ApprovalStatus.REJECTED])
def test_a_decision_made_in_ado_is_reflected_with_who_and_when(
    sim, project, ado_client, waiting_qa, status
):
    approval = waiting_qa
    someone = Identity.user("someone@example.com", "Someone Else")
    decided = sim.decide(approval.ado_id, status, someone, "decided in ADO")
    result = poll(project, ado_client)
    assert result.closed_in_ado == 1
    approval.refresh_from_db()
    assert approval.status == approval.ado_status == status
    assert approval.decided_in == DecidedIn.ADO
    assert approval.decided_by == "Someone Else"
    assert approval.decided_at == decided.steps[0].last_modified_on
    [changed] = audit_actions(approval, AuditAction.APPROVAL_CHANGED_IN_ADO)
    assert changed.actor_name == "Someone Else" and "decided in ADO" in changed.message
    assert changed.detail["ado_status"] == status

    poll(project, ado_client)  # seen once, recorded once
    assert len(audit_actions(approval, AuditAction.APPROVAL_CHANGED_IN_ADO)) == 1


def test_a_canceled_run_cancels_its_approval(sim, project, ado_client, waiting_qa):
    approval = waiting_qa
    run = sim.cancel_run(sim.approval(approval.ado_id).run.id)
    assert sim.approval(approval.ado_id).status == "canceled"
    assert poll(project, ado_client).closed_in_ado == 1
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.CANCELED
    assert approval.decided_in == DecidedIn.ADO
    assert approval.decided_at == run.stages[1].approval.last_modified_on
    [changed] = audit_actions(approval, AuditAction.APPROVAL_CHANGED_IN_ADO)
    assert changed.detail["ado_status"] == "canceled"
    poll(project, ado_client)
    assert len(audit_actions(approval, AuditAction.APPROVAL_CHANGED_IN_ADO)) == 1


def test_an_approval_that_times_out_in_ado_is_reflected(sim, project, ado_client, fraud):
    pipe = sim.create_pipeline(
        "risk-fraud-detector-release",
        "release",
        folder="\\risk\\fraud-detector",
        approval_timeout_minutes=10,
    )
    run = sim.queue_run(pipe, template_parameters=RELEASE_PARAMETERS)
    approval_id = wait_at(sim, run, "QA")
    mirror(project, ado_client)
    sim.advance(11 * 60)
    timed_out = sim.approval(approval_id)
    assert timed_out.status == "timedOut"
    poll(project, ado_client)
    approval = ApprovalRequest.objects.get(ado_id=approval_id)
    assert approval.status == ApprovalStatus.TIMED_OUT
    assert approval.decided_in == DecidedIn.ADO and approval.decided_by == ""
    assert approval.decided_at == timed_out.last_modified_on
    [changed] = audit_actions(approval, AuditAction.APPROVAL_CHANGED_IN_ADO)
    assert changed.actor_name == "ADO" and changed.message.startswith("Timed out in Azure DevOps")
    poll(project, ado_client)
    assert len(audit_actions(approval, AuditAction.APPROVAL_CHANGED_IN_ADO)) == 1


def test_an_approval_ado_no_longer_has_is_closed_as_gone(sim, project, ado_client, waiting_qa):
    from tests.approvals.factories import ApprovalRequestFactory

    # Held open here, unknown to ADO (its run was deleted there): ADO answers 404 by id.
    ghost = ApprovalRequestFactory(
        project=project,
        ado_id=str(uuid.uuid4()),
        run=waiting_qa.run,
        stage=waiting_qa.stage,
        model_version=waiting_qa.model_version,
    )
    poll(project, ado_client)
    ghost.refresh_from_db()
    assert ghost.status == ApprovalStatus.UNDEFINED and not ghost.is_open
    assert ghost.decided_in == DecidedIn.ADO
    assert len(audit_actions(ghost, AuditAction.APPROVAL_CHANGED_IN_ADO)) == 1
    waiting_qa.refresh_from_db()
    assert waiting_qa.is_open  # the real one is untouched
    poll(project, ado_client)
    assert len(audit_actions(ghost, AuditAction.APPROVAL_CHANGED_IN_ADO)) == 1


def test_a_portal_decision_that_ado_confirms_is_not_a_change_in_ado(
    sim, project, ado_client, waiting_qa, make_user
):
    approval = waiting_qa
    alice = make_user("approver", email="alice@example.com")
    decision = services.approval_decide(
        approval_id=approval.pk, user=alice, status="approved", comment="ok"
    )
    assert services.outbox_deliver(message_id=decision.outbox.pk, client=ado_client).state == (
        OutboxState.DELIVERED
    )
    poll(project, ado_client)
    approval.refresh_from_db()
    assert approval.status == approval.ado_status == ApprovalStatus.APPROVED
    assert approval.decided_in == DecidedIn.PORTAL and approval.decided_by == alice.get_full_name()
    assert len(audit_actions(approval, AuditAction.APPROVAL_CONFIRMED)) == 1
    assert audit_actions(approval, AuditAction.APPROVAL_CHANGED_IN_ADO) == []


def test_a_portal_decision_ado_got_from_someone_else_first_shows_ado_s_outcome(
    sim, project, ado_client, waiting_qa, make_user
):
    """Both approved, but the approval in ADO is someone else's: not a confirmation."""
    approval = waiting_qa
    alice = make_user("approver", email="alice@example.com")
    decision = services.approval_decide(
        approval_id=approval.pk, user=alice, status="approved", comment="ok"
    )
    sim.decide(approval.ado_id, "approved", "someone@example.com", "done in ADO")
    outcome = services.outbox_deliver(message_id=decision.outbox.pk, client=ado_client)
    assert outcome.state == OutboxState.ALREADY_DECIDED
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED
    assert approval.decided_in == DecidedIn.ADO and approval.decided_by == "someone@example.com"
    assert audit_actions(approval, AuditAction.APPROVAL_CONFIRMED) == []
    assert len(audit_actions(approval, AuditAction.APPROVAL_CHANGED_IN_ADO)) == 1


# Service hooks -------------------------------------------------------------------------------


def _hook_post(client, envelope, secret):
    auth = base64.b64encode(f"ado-hook:{secret}".encode()).decode()
    return client.post(
        "/pipelines/hooks/ado/mlops/",
        data=json.dumps(envelope),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


def test_a_replayed_approval_hook_queues_nothing(
    client, sim, project, settings, release, django_capture_on_commit_callbacks
):
    _, approval_id = release_waiting_at_qa(sim, release)
    envelope = {
        "id": str(uuid.uuid4()),
        "eventType": "ms.vss-pipelinechecks-events.approval-pending",
        "publisherId": "pipelines",
        "resource": {"approval": {"id": approval_id}, "run": None, "stage": None},
    }
    with django_capture_on_commit_callbacks() as first:
        assert _hook_post(client, envelope, settings.ADO_HOOK_SECRET).status_code == 202
    assert first  # the approvals re-read (and the pipelines refresh) wait for the commit
    with django_capture_on_commit_callbacks() as replay:
        again = _hook_post(client, envelope, settings.ADO_HOOK_SECRET)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert replay == []
    assert HookDelivery.objects.count() == 1


def _wait_for(condition, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("the worker did not get there in time")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_approval_hooks_make_the_worker_re_read_the_approval(
    celery_worker_process, sim, project, fraud, release, live_server, settings
):
    """ADO's own deliveries (from the simulator) → the hook view → approvals.refresh_approval
    on a real worker, which reads that one approval; a replayed delivery changes nothing."""
    sim.add_pat("simulator-pat", "portal-worker@example.com")  # the worker's PAT
    sim.add_subscription(
        f"{live_server.url}/pipelines/hooks/ado/mlops/",
        username="ado-hook",
        password=settings.ADO_HOOK_SECRET,
        event_types=APPROVAL_EVENTS,
    )
    _, approval_id = release_waiting_at_qa(sim, release)
    approval = _wait_for(lambda: ApprovalRequest.objects.filter(ado_id=approval_id).first())
    one_read = f"/_apis/pipelines/approvals/{approval_id}"
    worker_requests = [r for r in sim.request_log() if r["identity"] == "portal-worker@example.com"]
    assert any(r["path"].endswith(one_read) for r in worker_requests)
    assert _wait_for(lambda: ApprovalRequest.objects.get(pk=approval.pk).stage_id)
    approval.refresh_from_db()
    assert approval.environment == "QA" and approval.model_version == fraud["v2"]

    sim.decide(approval_id, "rejected", "someone@example.com", "not today")
    _wait_for(lambda: ApprovalRequest.objects.get(pk=approval.pk).status == ApprovalStatus.REJECTED)
    approval.refresh_from_db()
    assert approval.decided_by == "someone@example.com" and approval.decided_in == DecidedIn.ADO
    assert len(audit_actions(approval, AuditAction.APPROVAL_CHANGED_IN_ADO)) == 1

    assert sim.wait_for_deliveries(timeout=10)
    deliveries = sim.deliveries()
    assert {d.status for d in deliveries} == {"succeeded"}
    hooks_received = HookDelivery.objects.count()
    replay = sim.redeliver(deliveries[-1].notification_id)
    assert sim.wait_for_deliveries(timeout=10)
    assert replay.attempts[-1]["statusCode"] == 200  # "already received", not 202 "queued"
    assert HookDelivery.objects.count() == hooks_received


# Bookkeeping ---------------------------------------------------------------------------------


def test_the_sync_records_success_and_errors_and_readyz_lists_it(
    sim, project, ado_client, waiting_qa, client
):
    state = ApprovalSync.objects.get(project=project)
    succeeded_at = state.last_succeeded_at
    assert succeeded_at is not None and state.last_error == ""
    assert state.last_started_at is not None and state.last_started_at <= succeeded_at
    assert state.last_stats["created"] == 1

    sim.go_down("503")
    try:
        result = services.project_approvals_sync(project=project, client=ado_client)
    finally:
        sim.come_up()
    assert not result.ok and "503" in result.error
    state.refresh_from_db()
    assert state.last_error and state.last_error_at is not None
    assert state.last_succeeded_at == succeeded_at  # the last success is kept
    assert state.last_started_at > succeeded_at
    waiting_qa.refresh_from_db()
    assert waiting_qa.status == ApprovalStatus.PENDING  # an outage closes nothing

    syncs = {s["name"]: s for s in client.get("/readyz").json()["syncs"]}
    assert "approvals:mlops" in syncs
    assert syncs["approvals:mlops"]["failing"] and "503" in syncs["approvals:mlops"]["last_error"]

    poll(project, ado_client)
    state.refresh_from_db()
    assert state.last_succeeded_at > succeeded_at
