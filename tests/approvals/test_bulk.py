"""Deciding several approval requests at once: each request re-checked and decided on its own
(its decision, outbox message, audit row, and one PATCH in the ADO simulator), refusals per
request, and what refuses the whole batch (mixed environments, too many, bad input, a wrong
role, a stale sign-in for PROD)."""

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
    Decision,
    OutboxMessage,
    OutboxState,
)
from core.roles import Role
from tests.approvals.conftest import mirror, wait_at
from tests.approvals.factories import ApprovalRequestFactory
from tests.pipelines.factories import RunStageFactory

pytestmark = pytest.mark.django_db

RELEASE_PARAMETERS = {"modelName": "fraud-detector", "modelVersion": "2", "deployTarget": "aks"}


@pytest.fixture
def alice(make_user):
    return make_user(
        Role.APPROVER,
        username="alice",
        email="alice@example.com",
        first_name="Alice",
        last_name="Approver",
    )


def just_now():
    return timezone.now() - dt.timedelta(minutes=1)


def prod_after_qa(**kwargs) -> ApprovalRequest:
    approval = ApprovalRequestFactory(environment_name="PROD", **kwargs)
    RunStageFactory(run=approval.run, environment="QA", result="succeeded")
    return approval


def bulk(ids, user, status="approved", comment="Metrics hold up", **kwargs):
    return services.approvals_decide_bulk(
        approval_ids=ids, user=user, status=status, comment=comment, **kwargs
    )


def refused(code, **kwargs) -> services.DecisionRefused:
    with pytest.raises(services.DecisionRefused) as caught:
        bulk(**kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value


# Over real HTTP: the ADO simulator gets one PATCH per decided request -------------------------


def test_twenty_requests_with_three_that_break_a_rule_give_17_decisions_and_3_refusals(
    sim, project, ado_client, fraud, release, alice
):
    runs = [sim.queue_run(release, template_parameters=RELEASE_PARAMETERS) for _ in range(17)]
    # Alice queued three of the runs herself: separation of duties refuses her those.
    mine = [
        sim.queue_run(
            release, template_parameters=RELEASE_PARAMETERS, requested_for="alice@example.com"
        )
        for _ in range(3)
    ]
    ado_ids = [wait_at(sim, run, "QA") for run in runs + mine]
    mirror(project, ado_client)
    by_ado = {a.ado_id: a for a in ApprovalRequest.objects.all()}
    ids = [by_ado[ado_id].pk for ado_id in ado_ids]
    mine_ids = set(ids[17:])
    assert len(ids) == 20 and all(by_ado[i].environment == "QA" for i in ado_ids)

    outcomes = bulk(ids, alice, comment="Reviewed the batch: metrics hold up")

    assert [o.approval_id for o in outcomes] == ids
    decided = [o for o in outcomes if o.decided]
    refusals = [o for o in outcomes if not o.decided]
    assert len(decided) == 17 and len(refusals) == 3
    assert {o.approval_id for o in refusals} == mine_ids
    for o in refusals:
        assert o.code == "requester" and o.http_status == 403 and o.decision_id is None
        assert "You queued this run" in o.message
        assert o.status == ApprovalStatus.PENDING
    for o in decided:
        assert o.code == "decided" and o.status == ApprovalStatus.APPROVED
    # each its own decision, outbox message and audit row; each refusal audited
    assert Decision.objects.count() == 17
    assert OutboxMessage.objects.count() == 17
    assert set(Decision.objects.values_list("approval_id", flat=True)) == {
        o.approval_id for o in decided
    }
    made = AuditEvent.objects.filter(action=AuditAction.DECISION_MADE)
    assert made.count() == 17
    assert set(made.values_list("approval_id", flat=True)) == {o.approval_id for o in decided}
    refused_rows = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED)
    assert sorted(refused_rows.values_list("approval_id", flat=True)) == sorted(mine_ids)

    # delivery as the worker does it: one PATCH each for the 17, none for the 3
    for message in OutboxMessage.objects.all():
        outcome = services.outbox_deliver(message_id=message.pk, client=ado_client)
        assert outcome.state == OutboxState.DELIVERED, outcome
    patches = [r for r in sim.request_log() if r["method"] == "PATCH"]
    assert len(patches) == 17
    patched = [body["approvalId"] for p in sim.patch_log for body in p["body"]]
    assert sorted(patched) == sorted(ado_id for ado_id in ado_ids[:17])
    assert all(sim.approval(a).status == "approved" for a in ado_ids[:17])
    assert all(sim.approval(a).status == "pending" for a in ado_ids[17:])
    # delivering again sends nothing more
    for message in OutboxMessage.objects.all():
        services.outbox_deliver(message_id=message.pk, client=ado_client)
    assert len([r for r in sim.request_log() if r["method"] == "PATCH"]) == 17


# The batch as a whole --------------------------------------------------------------------------


def test_a_selection_that_mixes_environments_is_refused_and_nothing_is_decided(alice):
    qa = ApprovalRequestFactory()
    prod = prod_after_qa()
    error = refused(
        "bulk_mixed_environments", ids=[qa.pk, prod.pk], user=alice, authenticated_at=just_now()
    )
    assert error.http_status == 400
    assert "same environment" in error.message and "1 PROD" in error.message
    assert error.extra["environments"] == {str(qa.pk): "QA", str(prod.pk): "PROD"}
    assert not Decision.objects.exists() and not OutboxMessage.objects.exists()
    [row] = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED)
    assert row.detail["code"] == "bulk_mixed_environments"
    assert row.detail["approval_ids"] == [qa.pk, prod.pk] and row.detail["bulk"] is True


def test_more_than_the_maximum_is_refused(alice, settings):
    settings.APPROVALS_BULK_MAX = 3
    approvals = ApprovalRequestFactory.create_batch(4)
    error = refused("bulk_too_many", ids=[a.pk for a in approvals], user=alice)
    assert error.http_status == 400 and "at most 3" in error.message
    assert not Decision.objects.exists()
    # three is fine, and duplicates do not count twice
    ids = [a.pk for a in approvals[:3]]
    outcomes = bulk(ids + ids, alice)
    assert [o.approval_id for o in outcomes] == ids and all(o.decided for o in outcomes)
    assert Decision.objects.count() == 3


def test_duplicates_are_decided_once(alice):
    approval = ApprovalRequestFactory()
    [outcome] = bulk([approval.pk, str(approval.pk), approval.pk], alice)
    assert outcome.decided and Decision.objects.count() == 1


@pytest.mark.parametrize("ids", [[], ["x"], [0], [-3], [True], [1.5], [None]])
def test_bad_ids_are_refused(alice, ids):
    error = refused("bulk_empty" if not ids else "bulk_bad_id", ids=ids, user=alice)
    assert error.http_status == 400


def test_a_rejection_needs_a_comment_for_the_whole_batch(alice):
    approvals = ApprovalRequestFactory.create_batch(2)
    error = refused(
        "comment_required",
        ids=[a.pk for a in approvals],
        user=alice,
        status="rejected",
        comment="  ",
    )
    assert error.http_status == 400
    assert not Decision.objects.exists()
    outcomes = bulk([a.pk for a in approvals], alice, status="rejected", comment="Drift too high")
    assert all(o.decided and o.status == ApprovalStatus.REJECTED for o in outcomes)
    assert set(Decision.objects.values_list("comment", flat=True)) == {"Drift too high"}


def test_an_unknown_status_is_refused(alice):
    approval = ApprovalRequestFactory()
    assert (
        refused("invalid_status", ids=[approval.pk], user=alice, status="maybe").http_status == 400
    )


def test_a_non_approver_is_refused_and_audited(make_user):
    manager = make_user(Role.MANAGER)
    approvals = ApprovalRequestFactory.create_batch(2)
    error = refused("not_an_approver", ids=[a.pk for a in approvals], user=manager)
    assert error.http_status == 403
    assert not Decision.objects.exists()
    [row] = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED)
    assert row.detail["code"] == "not_an_approver" and row.actor == manager


def test_prod_needs_a_recent_sign_in_for_the_batch(alice):
    approvals = [prod_after_qa() for _ in range(3)]
    ids = [a.pk for a in approvals]
    stale = timezone.now() - dt.timedelta(hours=2)
    with pytest.raises(services.ReauthenticationRequired) as caught:
        bulk(ids, alice, authenticated_at=stale)
    assert caught.value.http_status == 401 and "reauthenticate_url" in caught.value.extra
    assert not Decision.objects.exists()
    with pytest.raises(services.ReauthenticationRequired):
        bulk(ids, alice, authenticated_at=None)
    outcomes = bulk(ids, alice, authenticated_at=just_now())
    assert all(o.decided for o in outcomes) and Decision.objects.count() == 3


def test_bulk_never_bypasses_a_rule(alice):
    """PROD without QA first, a version alice created, a request already decided, and one
    that no longer exists: each refused with its own rule; the good one decided."""
    good = prod_after_qa()
    no_qa = ApprovalRequestFactory(environment_name="PROD")
    hers = prod_after_qa()
    hers.model_version.user_id = "alice@example.com"
    hers.model_version.save()
    done = prod_after_qa(status=ApprovalStatus.APPROVED, decided_by="Bob")
    ids = [good.pk, no_qa.pk, hers.pk, done.pk, 999999]
    outcomes = {o.approval_id: o for o in bulk(ids, alice, authenticated_at=just_now())}
    assert outcomes[good.pk].decided
    assert (outcomes[no_qa.pk].code, outcomes[no_qa.pk].http_status) == ("qa_first", 403)
    assert outcomes[hers.pk].code == "version_creator"
    assert (outcomes[done.pk].code, outcomes[done.pk].http_status) == ("already_decided", 409)
    assert (outcomes[999999].code, outcomes[999999].http_status) == ("not_found", 404)
    assert list(Decision.objects.values_list("approval_id", flat=True)) == [good.pk]


def test_a_request_that_needs_two_approvals_stays_pending_after_one(alice):
    approval = ApprovalRequestFactory(min_required_approvers=2)
    [outcome] = bulk([approval.pk], alice)
    assert outcome.decided and outcome.status == ApprovalStatus.PENDING
    assert "1 of 2" in outcome.message
