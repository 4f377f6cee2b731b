"""Deciding several approval requests at once: each request re-checked and decided on its own
(its decision, outbox message, audit row, and one PATCH in the ADO simulator), refusals per
request, and what refuses the whole batch (mixed environments, too many, bad input, a wrong
role, a stale sign-in for PROD)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from approvals import services
from approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStatus,
    AuditAction,
    AuditEvent,
    Decision,
    FreezeWindow,
    OutboxMessage,
    OutboxState,
)
from core.roles import Role
from core.sessions import AUTHENTICATED_AT_SESSION_KEY
from portal import api_tokens
from tests.approvals.conftest import mirror, wait_at
from tests.approvals.factories import ApprovalRequestFactory
from tests.factories import UserFactory
from tests.pipelines.factories import PipelineRunFactory, RunStageFactory
from tests.registry.factories import ModelVersionFactory

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


# Pages: the inbox's selection, the combined evidence screen, the result ---------------------


def queued_by_alice() -> ApprovalRequest:
    approval = ApprovalRequestFactory()
    approval.run.requested_by_id = "alice@example.com"
    approval.run.save()
    return approval


def stale_sign_in(client) -> None:
    session = client.session
    session[AUTHENTICATED_AT_SESSION_KEY] = (timezone.now() - dt.timedelta(hours=2)).isoformat()
    session.save()


def bulk_page(client, ids):
    return client.get(reverse("approvals:bulk"), {"ids": ",".join(str(i) for i in ids)})


def with_champion(approval, metrics=None):
    """A version of the same model running in the approval's environment now."""
    champion = ModelVersionFactory(
        registered_model=approval.model_version.registered_model,
        version=approval.model_version.version - 1 if approval.model_version.version > 1 else 0,
        metrics=metrics or {"auc": 0.95, "log_loss": 0.20},
    )
    shipped = PipelineRunFactory(
        pipeline=approval.run.pipeline, model_version=champion, parameters={"deployTarget": "aks"}
    )
    RunStageFactory(run=shipped, environment=approval.environment, target="aks")
    return champion


def test_the_inbox_lets_an_approver_select_pending_requests(client, alice):
    qa = ApprovalRequestFactory()
    prod = prod_after_qa()
    client.force_login(alice)
    page = client.get(reverse("approvals:inbox")).content.decode()
    assert 'id="bulk-select"' in page and f'action="{reverse("approvals:bulk")}"' in page
    assert f'name="ids" value="{qa.pk}" data-environment="QA"' in page
    assert f'name="ids" value="{prod.pk}" data-environment="PROD"' in page
    assert "approvals-bulk.js" in page
    # not on the decided tab, and not for someone who cannot decide
    decided = client.get(reverse("approvals:inbox"), {"tab": "decided"}).content.decode()
    assert 'id="bulk-select"' not in decided


def test_the_inbox_shows_no_selection_to_a_manager(client, make_user):
    ApprovalRequestFactory()
    client.force_login(make_user(Role.MANAGER))
    page = client.get(reverse("approvals:inbox")).content.decode()
    assert 'id="bulk-select"' not in page and 'name="ids"' not in page


def test_the_combined_screen_shows_each_request_s_evidence_and_the_rules_that_refuse_it(
    client, alice
):
    better = ApprovalRequestFactory()
    better.model_version.metrics = {"auc": 0.97, "log_loss": 0.15}
    better.model_version.save()
    with_champion(better)
    mine = queued_by_alice()
    client.force_login(alice)
    response = bulk_page(client, [better.pk, mine.pk])
    assert response.status_code == 200
    page = response.content.decode()
    assert "Decide 2 QA requests together" in page
    row = page[page.index(f'id="bulk-{better.pk}"') : page.index(f'id="bulk-{mine.pk}"')]
    assert 'data-decidable="true"' in row
    assert f"v{better.model_version.version} against v{better.model_version.version - 1}" in row
    assert 'data-metric="auc" data-verdict="better"' in row and "+0.02" in row
    assert 'data-metric="log_loss" data-verdict="better"' in row
    assert "No rule refuses it" in row
    other = page[page.index(f'id="bulk-{mine.pk}"') :]
    assert 'data-decidable="false"' in other
    assert 'data-rule="requester"' in other and "You queued this run" in other
    assert "1</span> refused by a rule" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert f'name="ids" value="{better.pk},{mine.pk}"' in page


def test_the_combined_screen_of_prod_shows_the_qa_outcome(client, alice):
    ok = prod_after_qa()
    no_qa = ApprovalRequestFactory(environment_name="PROD")
    client.force_login(alice)
    page = bulk_page(client, [ok.pk, no_qa.pk]).content.decode()
    first = page[page.index(f'id="bulk-{ok.pk}"') : page.index(f'id="bulk-{no_qa.pk}"')]
    assert 'data-testid="row-qa"' in first and "succeeded" in first
    second = page[page.index(f'id="bulk-{no_qa.pk}"') :]
    assert "no QA stage of this version seen" in second and REFUSED_BY_QA_FIRST in second
    assert REFUSED_BY_QA_FIRST not in first
    assert 'data-testid="bulk-reauth"' not in page  # just signed in
    stale_sign_in(client)
    assert 'data-testid="bulk-reauth"' in bulk_page(client, [ok.pk]).content.decode()


def test_the_combined_screen_says_clearly_that_environments_cannot_be_mixed(client, alice):
    qa = ApprovalRequestFactory.create_batch(2)
    prod = prod_after_qa()
    client.force_login(alice)
    response = bulk_page(client, [qa[0].pk, prod.pk, qa[1].pk])
    assert response.status_code == 400
    page = response.content.decode()
    assert "Only requests of the same environment can be reviewed and decided together" in page
    assert 'data-testid="bulk-form"' not in page
    assert f"ids={qa[0].pk}%2C{qa[1].pk}" in page and "Review the 2 QA requests" in page
    assert f"ids={prod.pk}" in page and "Review the 1 PROD request" in page


@pytest.mark.parametrize("ids", ["", "1,x", "0"])
def test_the_combined_screen_answers_bad_ids_with_400(client, alice, ids):
    client.force_login(alice)
    response = client.get(reverse("approvals:bulk"), {"ids": ids})
    assert response.status_code == 400
    assert 'data-testid="bulk-error"' in response.content.decode()


def test_the_combined_screen_answers_too_many_with_400(client, alice, settings):
    settings.APPROVALS_BULK_MAX = 2
    approvals = ApprovalRequestFactory.create_batch(3)
    client.force_login(alice)
    response = bulk_page(client, [a.pk for a in approvals])
    assert response.status_code == 400 and "at most 2" in response.content.decode()


def test_a_non_approver_is_refused_the_screen_and_the_decision(client, make_user):
    approvals = ApprovalRequestFactory.create_batch(2)
    ids = ",".join(str(a.pk) for a in approvals)
    for role in (Role.MANAGER, Role.DATA_SCIENTIST, Role.ADMIN):
        client.force_login(make_user(role))
        assert client.get(reverse("approvals:bulk"), {"ids": ids}).status_code == 403
        response = client.post(reverse("approvals:bulk-decide"), {"ids": ids, "status": "approved"})
        assert response.status_code == 403
    assert not Decision.objects.exists()
    refusals = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED)
    assert refusals.count() == 3 and {r.detail["code"] for r in refusals} == {"not_an_approver"}


def test_deciding_from_the_screen_redirects_to_the_result_of_each(client, alice):
    good = ApprovalRequestFactory.create_batch(2)
    mine = queued_by_alice()
    ids = [good[0].pk, mine.pk, good[1].pk]
    client.force_login(alice)
    response = client.post(
        reverse("approvals:bulk-decide"),
        {"ids": ",".join(map(str, ids)), "status": "approved", "comment": "Batch looks fine"},
    )
    assert response.status_code == 302
    url = response.headers["Location"]
    assert url.startswith("/approvals/bulk/result/")
    assert Decision.objects.count() == 2
    page = client.get(url).content.decode()
    assert "2 of 3 approved" in page
    for pk in (good[0].pk, good[1].pk):
        assert f'id="result-{pk}" data-approval="{pk}" data-outcome="decided"' in page
        assert reverse("approvals:detail", kwargs={"pk": pk}) in page
    assert f'data-approval="{mine.pk}" data-outcome="refused" data-code="requester"' in page
    assert "You queued this run" in page and "Batch looks fine" in page
    # a reload shows the same result and decides nothing again
    assert client.get(url).status_code == 200 and Decision.objects.count() == 2
    # another session cannot read it
    client.force_login(alice)
    other = Client()
    other.force_login(alice)
    assert other.get(url).status_code == 404


def test_rejecting_from_the_screen_without_a_comment_is_400_and_keeps_the_choice(client, alice):
    approvals = ApprovalRequestFactory.create_batch(2)
    client.force_login(alice)
    ids = ",".join(str(a.pk) for a in approvals)
    response = client.post(
        reverse("approvals:bulk-decide"), {"ids": ids, "status": "rejected", "comment": ""}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "A rejection needs a comment" in page and 'aria-invalid="true"' in page
    assert 'value="rejected" checked' in page
    assert not Decision.objects.exists()


def test_a_mixed_post_is_refused_with_400(client, alice):
    qa = ApprovalRequestFactory()
    prod = prod_after_qa()
    client.force_login(alice)
    response = client.post(
        reverse("approvals:bulk-decide"), {"ids": f"{qa.pk},{prod.pk}", "status": "approved"}
    )
    assert response.status_code == 400
    assert "same environment" in response.content.decode()
    assert not Decision.objects.exists()


def test_a_prod_selection_asks_for_a_fresh_sign_in_and_keeps_the_draft(client, alice):
    approvals = [prod_after_qa() for _ in range(2)]
    ids = ",".join(str(a.pk) for a in approvals)
    client.force_login(alice)
    stale_sign_in(client)
    response = client.post(
        reverse("approvals:bulk-decide"), {"ids": ids, "status": "approved", "comment": "ok"}
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(reverse("reauthenticate"))
    assert "next=%2Fapprovals%2Fbulk%2F%3Fids%3D" in response.headers["Location"]
    assert not Decision.objects.exists()
    # signing in again brings the choice and the comment back on the screen
    session = client.session
    session[AUTHENTICATED_AT_SESSION_KEY] = timezone.now().isoformat()
    session.save()
    page = bulk_page(client, [a.pk for a in approvals]).content.decode()
    assert 'value="approved" required checked' in page and ">ok</textarea>" in page
    assert 'data-testid="bulk-reauth"' not in page
    response = client.post(
        reverse("approvals:bulk-decide"), {"ids": ids, "status": "approved", "comment": "ok"}
    )
    assert response.status_code == 302 and Decision.objects.count() == 2


def _selection(count, environment="QA") -> list[int]:
    """``count`` pending requests of different models, some with a champion to compare with,
    some already approved once by someone else (two approvals required); for PROD, QA went
    through for all but a few."""
    approvals = ApprovalRequestFactory.create_batch(
        count, min_required_approvers=2, environment_name=environment
    )
    for approval in approvals[::5]:
        with_champion(approval)
    if environment == "PROD":
        for approval in approvals[::4]:
            RunStageFactory(run=approval.run, environment="QA", result="succeeded")
    other = UserFactory(roles=[Role.APPROVER])
    for approval in approvals[1::7]:
        if environment == "QA":
            services.approval_decide(approval_id=approval.pk, user=other, status="approved")
    return [a.pk for a in approvals]


def _screen_queries(client, ids) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = bulk_page(client, ids)
    assert response.status_code == 200
    assert response.content.decode().count('class="card mb-2 bulk-row') == len(ids)
    return len(queries)


@pytest.mark.parametrize("environment", ["QA", "PROD"])
def test_the_combined_screen_reads_a_fixed_number_of_queries(
    client, alice, django_assert_max_num_queries, environment
):
    client.force_login(alice)
    # The gates' own reads (the environment's policies, its freeze windows) are made once
    # for the screen, not once per request.
    ApprovalPolicy.objects.create(
        environment=environment, scope="global", signoff_required=True, note="every model"
    )
    FreezeWindow.objects.create(
        name="Year-end",
        kind="deny",
        environment=environment,
        reason="closing the books",
        dtstart=timezone.now() + dt.timedelta(days=30),
        duration_minutes=60 * 24,
        timezone="UTC",
    )
    ids = _selection(20, environment)
    bulk_page(client, ids)  # the session's and the user's first reads
    twenty = _screen_queries(client, ids)
    fifty = _screen_queries(client, ids + _selection(30, environment))
    assert twenty == fifty, (twenty, fifty)
    with django_assert_max_num_queries(15):
        bulk_page(client, ids)


REFUSED_BY_QA_FIRST = 'text-danger-emphasis mb-1" data-rule="qa_first"'


def test_the_combined_screen_and_a_decision_agree_on_qa_first(client, alice):
    """The screen reads QA outcomes for all at once; the decision reads them again: the
    rule's answer is the same."""
    ok = prod_after_qa()
    # its own run failed QA, but another run deployed the same version to QA: it counts
    failed = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=failed.run, environment="QA", result="failed")
    earlier = PipelineRunFactory(pipeline=failed.run.pipeline, model_version=failed.model_version)
    RunStageFactory(run=earlier, environment="QA", result="succeeded")
    # QA failed, and no other run of the version went through QA
    later = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=later.run, environment="QA", result="failed")
    client.force_login(alice)
    page = bulk_page(client, [ok.pk, failed.pk, later.pk]).content.decode()
    refused_on_screen = {
        pk
        for pk in (ok.pk, failed.pk, later.pk)
        if REFUSED_BY_QA_FIRST in page.split(f'id="bulk-{pk}"')[1].split("bulk-row")[0]
    }
    outcomes = bulk([ok.pk, failed.pk, later.pk], alice, authenticated_at=just_now())
    refused_by_decision = {o.approval_id for o in outcomes if o.code == "qa_first"}
    assert refused_on_screen == refused_by_decision
    assert refused_by_decision == {later.pk}


# API: POST /api/v1/approvals/bulk-decisions ----------------------------------------------------

BULK_API = "/api/v1/approvals/bulk-decisions"


def api_post(client, body):
    return client.post(BULK_API, json.dumps(body), content_type="application/json")


def test_the_api_decides_each_and_answers_per_request(alice):
    good = ApprovalRequestFactory.create_batch(2)
    mine = queued_by_alice()
    client = APIClient()
    client.force_login(alice)
    ids = [good[0].pk, mine.pk, good[1].pk, good[0].pk]
    response = api_post(client, {"ids": ids, "status": "approved", "comment": "batch ok"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "approved" and body["decided"] == 2 and body["refused"] == 1
    results = {r["id"]: r for r in body["results"]}
    assert [r["id"] for r in body["results"]] == ids[:3]
    for pk in (good[0].pk, good[1].pk):
        r = results[pk]
        assert r["outcome"] == "decided" and r["code"] == "decided" and r["http_status"] == 201
        assert r["approval_status"] == "approved"
        assert r["decision_id"] == Decision.objects.get(approval_id=pk).pk
        assert r["url"] == reverse("approvals:detail", kwargs={"pk": pk})
    refusal = results[mine.pk]
    assert refusal["outcome"] == "refused" and refusal["code"] == "requester"
    assert refusal["http_status"] == 403 and refusal["decision_id"] is None
    assert "You queued this run" in refusal["detail"]
    assert Decision.objects.filter(via="api").count() == 2


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"ids": [], "status": "approved"}, "bulk_empty"),
        ({"ids": ["x"], "status": "approved"}, "bulk_bad_id"),
        ({"ids": "1,2", "status": "approved"}, "bad_request"),
        ({"status": "approved"}, "bad_request"),
        ({"ids": [1], "status": 3}, "bad_request"),
        ({"ids": ["SELF"], "status": "rejected", "comment": ""}, "comment_required"),
        ({"ids": ["SELF"], "status": "maybe"}, "invalid_status"),
    ],
)
def test_the_api_answers_bad_input_with_400(alice, body, code):
    approval = ApprovalRequestFactory()
    body = (
        {**body, "ids": [approval.pk if i == "SELF" else i for i in body["ids"]]}
        if isinstance(body.get("ids"), list)
        else body
    )
    client = APIClient()
    client.force_login(alice)
    response = api_post(client, body)
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    assert not Decision.objects.exists()


def test_the_api_refuses_too_many_and_mixed_environments(alice, settings):
    settings.APPROVALS_BULK_MAX = 2
    client = APIClient()
    client.force_login(alice)
    three = ApprovalRequestFactory.create_batch(3)
    response = api_post(client, {"ids": [a.pk for a in three], "status": "approved"})
    assert response.status_code == 400 and response.json()["code"] == "bulk_too_many"
    prod = prod_after_qa()
    response = api_post(client, {"ids": [three[0].pk, prod.pk], "status": "approved"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "bulk_mixed_environments"
    assert body["environments"] == {str(three[0].pk): "QA", str(prod.pk): "PROD"}
    assert not Decision.objects.exists()


def test_the_api_asks_for_a_fresh_sign_in_for_prod(alice):
    approvals = [prod_after_qa() for _ in range(2)]
    client = APIClient()
    client.force_login(alice)
    stale_sign_in(client)
    response = api_post(client, {"ids": [a.pk for a in approvals], "status": "approved"})
    assert response.status_code == 401
    assert response.json()["code"] == "reauthentication_required"
    assert "reauthenticate_url" in response.json()
    assert not Decision.objects.exists()


def test_the_api_refuses_a_non_approver_and_any_token(make_user, alice):
    approval = ApprovalRequestFactory()
    client = APIClient()
    client.force_login(make_user(Role.MANAGER))
    response = api_post(client, {"ids": [approval.pk], "status": "approved"})
    assert response.status_code == 403 and response.json()["code"] == "not_an_approver"
    _, raw = api_tokens.token_create(user=alice, name="bot", scope="write")
    robot = APIClient(enforce_csrf_checks=True)
    robot.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = robot.post(BULK_API, {"ids": [approval.pk], "status": "approved"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "human_decision_required"
    assert not Decision.objects.exists()
    codes = set(
        AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED).values_list(
            "detail__code", flat=True
        )
    )
    assert codes == {"not_an_approver", "human_decision_required"}


def test_the_api_needs_the_csrf_token_in_a_session(alice):
    approval = ApprovalRequestFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    body = {"ids": [approval.pk], "status": "approved"}
    response = api_post(client, body)
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    token = "b" * 32
    client.cookies["csrftoken"] = token
    response = client.post(
        BULK_API, json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200 and Decision.objects.count() == 1


def test_the_bulk_operation_is_in_the_openapi_schema(alice):
    client = APIClient()
    client.force_login(alice)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"][BULK_API]["post"]
    assert operation["operationId"] == "approvals_bulk_decisions_create"
    assert set(operation["responses"]) >= {"200", "400", "401", "403"}
    result = schema["components"]["schemas"]["BulkDecisionResult"]
    assert {"decided", "refused", "results"} <= set(result["properties"])


def _inbox_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("approvals:inbox"))
    assert response.status_code == 200
    return len(queries)


def test_the_inbox_with_its_selection_reads_a_fixed_number_of_queries(client, alice):
    """The inbox's rows (a page of 50) cost the same queries for 5 requests as for 60."""
    ApprovalRequestFactory.create_batch(4)
    prod_after_qa()
    client.force_login(alice)
    client.get(reverse("approvals:inbox"))
    few = _inbox_queries(client)
    ApprovalRequestFactory.create_batch(40)
    for _ in range(15):
        prod_after_qa()
    many = _inbox_queries(client)
    assert few == many, (few, many)
    page = client.get(reverse("approvals:inbox")).content.decode()
    assert page.count('name="ids"') == 50  # one page
