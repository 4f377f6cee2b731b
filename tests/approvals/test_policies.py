"""Approval policies: inheritance (model over team over global over the defaults), and each
policy rule refusing with its code through the page and the API alike (403 + its message):
the QA approver at PROD (end to end over the ADO simulator too), approvers in sequence, soak
time in warn and block mode, the minimum maturity level."""

from __future__ import annotations

import datetime as dt

import pytest
from bs4 import BeautifulSoup
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
    OutboxState,
)
from approvals.services.gates import environment_rules
from approvals.services.policies import sequence_rule
from core.roles import Role
from maturity.models import ModelMaturity
from tests.approvals.conftest import mirror, wait_at
from tests.approvals.factories import ApprovalRequestFactory
from tests.pipelines.factories import RunStageFactory
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


def policy(environment="PROD", scope="global", **fields) -> ApprovalPolicy:
    row = ApprovalPolicy(environment=environment, scope=scope, **fields)
    row.full_clean()
    row.save()
    return row


@pytest.fixture
def people(make_user):
    return {
        name: make_user(Role.APPROVER, username=name, email=f"{name}@example.com")
        for name in ("alice", "bob", "carol")
    }


@pytest.fixture
def version():
    registered = RegisteredModelFactory(name="fraud-detector")  # team "risk"
    return ModelVersionFactory(registered_model=registered, version=2, metrics={"auc": 0.93})


def prod_approval(version, qa_finished_hours_ago: float = 48) -> ApprovalRequest:
    approval = ApprovalRequestFactory(model_version=version, environment_name="PROD")
    finished = timezone.now() - dt.timedelta(hours=qa_finished_hours_ago)
    RunStageFactory(
        run=approval.run,
        environment="QA",
        order=0,
        started_at=finished - dt.timedelta(minutes=5),
        finished_at=finished,
    )
    return approval


def api_decide(user, approval, status="approved", comment="ok"):
    client = APIClient()
    client.force_login(user)  # a fresh sign-in: PROD's recent_sign_in rule is met
    return client.post(
        f"/api/v1/approvals/{approval.pk}/decision",
        {"status": status, "comment": comment},
        format="json",
    )


def page_decide(client, user, approval, status="approved"):
    client.force_login(user)
    url = reverse("approvals:decide", kwargs={"pk": approval.pk})
    return client.post(url, {"status": status, "comment": "ok", "confirm": "1"})


def assert_refused_everywhere(client, user, approval, code: str, words: str) -> None:
    """The API answers 403 with the rule's code and message; the page 403 with the message;
    nothing is recorded, both attempts are audited with the code."""
    before = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED).count()
    response = api_decide(user, approval)
    assert response.status_code == 403, response.content
    assert response.json()["code"] == code
    assert words in response.json()["detail"]
    page = page_decide(client, user, approval)
    assert page.status_code == 403
    error = BeautifulSoup(page.content, "html.parser").select_one("[data-testid=decision-error]")
    assert words in error.get_text(" ", strip=True)
    assert not Decision.objects.filter(approval=approval, user=user).exists()
    refusals = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED).order_by("pk")
    assert [r.detail["code"] for r in refusals][before:] == [code, code]


def rule_of(approval, user, code):
    rules = services.decision_rules(approval=approval, user=user, authenticated_at=timezone.now())
    return next((r for r in rules if r.code == code), None)


# --- Inheritance -----------------------------------------------------------------------------


def test_no_policy_gives_the_defaults_and_adds_no_rule(version, people):
    effective = services.approval_policy_for(
        catalog_model=version.registered_model.catalog_model, environment="PROD"
    )
    assert effective.values == services.POLICY_DEFAULTS
    assert {row["source"] for row in effective.rows()} == {"built-in default"}
    approval = prod_approval(version)
    codes = {r.code for r in services.decision_rules(approval=approval, user=people["alice"])}
    assert not codes & {"qa_approver", "sequence", "soak_time", "min_maturity"}


def test_a_blank_field_inherits_model_over_team_over_global(version):
    catalog = version.registered_model.catalog_model
    policy(soak_hours=24, soak_mode="block", min_maturity_level=2)
    policy(scope="team", team="risk", soak_hours=12, signoff_required=True)
    policy(scope="model", catalog_model=catalog, signoff_required=False, min_maturity_level=0)
    policy(scope="team", team="marketing", soak_hours=1)  # another team's: not used
    policy(environment="QA", soak_hours=99)  # another environment's: not used
    effective = services.approval_policy_for(catalog_model=catalog, environment="PROD")
    assert effective.soak_hours == 12 and effective.source("soak_hours") == "team risk"
    assert effective.soak_mode == "block" and effective.source("soak_mode") == "every model"
    assert effective.signoff_required is False
    assert effective.source("signoff_required") == "model fraud-detector"
    assert effective.min_maturity_level == 0  # 0 overrides the global minimum: none
    assert effective.prod_approver_not_qa_approver is False
    assert effective.source("prod_approver_not_qa_approver") == "built-in default"
    other = RegisteredModelFactory(name="churn").catalog_model
    other.team = "marketing"
    other.save()
    assert services.approval_policy_for(catalog_model=other, environment="PROD").soak_hours == 1


def test_a_policy_scope_must_name_what_it_covers(version):
    from django.core.exceptions import ValidationError

    for bad in (
        {"scope": "model"},
        {"scope": "team"},
        {"scope": "global", "team": "risk"},
        {"execution_order": "inSequence"},
        {"sequence_approvers": ["alice"]},
        {"sequence_approvers": "alice", "execution_order": "inSequence"},
        {"min_maturity_level": 6},
    ):
        with pytest.raises(ValidationError):
            ApprovalPolicy(environment="PROD", **{"scope": "global", **bad}).full_clean()


# --- The QA approver at PROD ------------------------------------------------------------------


def test_the_qa_approver_is_refused_at_prod_others_are_not(client, version, people):
    policy(prod_approver_not_qa_approver=True)
    qa = ApprovalRequestFactory(model_version=version)
    services.approval_decide(approval_id=qa.pk, user=people["alice"], status="approved")
    approval = prod_approval(version)
    assert_refused_everywhere(
        client, people["alice"], approval, "qa_approver", "You approved QA of v2"
    )
    assert rule_of(approval, people["bob"], "qa_approver").ok
    assert api_decide(people["bob"], approval).status_code == 201


def test_without_the_policy_the_qa_approver_may_approve_prod(version, people):
    qa = ApprovalRequestFactory(model_version=version)
    services.approval_decide(approval_id=qa.pk, user=people["alice"], status="approved")
    assert api_decide(people["alice"], prod_approval(version)).status_code == 201


def test_a_qa_approval_given_in_ado_itself_counts_too(version, people):
    policy(prod_approver_not_qa_approver=True)
    ApprovalRequestFactory(
        model_version=version,
        status=ApprovalStatus.APPROVED,
        decided_in="ado",
        steps=[{"status": "approved", "actual": {"unique_name": "Alice@example.com"}}],
    )
    assert not rule_of(prod_approval(version), people["alice"], "qa_approver").ok


@pytest.mark.parametrize("sim", [dt.timedelta(hours=2)], indirect=True)
def test_end_to_end_the_qa_approver_delivered_to_ado_is_refused_at_prod(
    sim, project, ado_client, waiting_qa, make_user, client
):
    """QA approved in the portal and delivered to the simulator over HTTP; the run reaches
    its PROD approval; the same person is refused there, a colleague is not."""
    policy(prod_approver_not_qa_approver=True)
    alice = make_user(Role.APPROVER, username="alice", email="alice@example.com")
    bob = make_user(Role.APPROVER, username="bob", email="bob@example.com")
    decision = services.approval_decide(
        approval_id=waiting_qa.pk, user=alice, status="approved", comment="QA fine"
    )
    outcome = services.outbox_deliver(message_id=decision.outbox.pk, client=ado_client)
    assert outcome.state == OutboxState.DELIVERED
    assert sim.approval(waiting_qa.ado_id).status == "approved"
    run = sim.run(waiting_qa.build_id)
    prod_id = wait_at(sim, run, "PROD")
    mirror(project, ado_client)
    prod = ApprovalRequest.objects.get(ado_id=prod_id)
    assert prod.environment == "PROD" and prod.model_version_id == waiting_qa.model_version_id
    assert_refused_everywhere(client, alice, prod, "qa_approver", "You approved QA of v2")
    assert api_decide(bob, prod).status_code == 201


# --- In sequence ------------------------------------------------------------------------------


def test_in_sequence_only_the_next_named_approver_may_decide(client, version, people):
    policy(environment="QA", execution_order="inSequence", sequence_approvers=["bob", "alice"])
    approval = ApprovalRequestFactory(model_version=version, min_required_approvers=2)
    assert_refused_everywhere(
        client, people["alice"], approval, "sequence", "waiting for bob, then alice"
    )
    assert_refused_everywhere(
        client, people["carol"], approval, "sequence", "you are not one of them"
    )
    assert rule_of(approval, people["bob"], "sequence").ok
    assert api_decide(people["bob"], approval).status_code == 201
    # bob has decided: alice is next (a second portal decision then needs her own identity in
    # ADO, which the one_identity rule asks for; the sequence itself lets her)
    effective = services.approval_policy_for(catalog_model=approval.catalog_model, environment="QA")
    after = sequence_rule(approval=approval, identities={"alice"}, policy=effective)
    assert after.ok and "you are next" in after.message
    assert not sequence_rule(approval=approval, identities={"carol"}, policy=effective).ok


def test_a_model_policy_in_any_order_overrides_a_global_sequence(version, people):
    policy(environment="QA", execution_order="inSequence", sequence_approvers=["bob"])
    catalog = version.registered_model.catalog_model
    policy(environment="QA", scope="model", catalog_model=catalog, execution_order="anyOrder")
    approval = ApprovalRequestFactory(model_version=version)
    assert rule_of(approval, people["alice"], "sequence") is None
    assert api_decide(people["alice"], approval).status_code == 201


# --- Soak time ---------------------------------------------------------------------------------


def test_soak_time_in_block_mode_refuses_and_says_when_it_ends(client, version, people):
    policy(soak_hours=24, soak_mode="block")
    approval = prod_approval(version, qa_finished_hours_ago=3)
    rule = rule_of(approval, people["alice"], "soak_time")
    assert not rule.ok and not rule.warning
    finished = approval.run.stages.get(environment="QA").finished_at
    assert rule.until == finished + dt.timedelta(hours=24)
    assert rule.message.startswith("In QA for 3 h, policy 24 h; soak time ends at ")
    assert f"{rule.until:%Y-%m-%d %H:%M} UTC" in rule.message
    assert_refused_everywhere(
        client, people["alice"], approval, "soak_time", "In QA for 3 h, policy 24 h"
    )


def test_soak_time_in_warn_mode_lets_the_decision_through_with_a_warning(client, version, people):
    policy(soak_hours=24, soak_mode="warn")
    approval = prod_approval(version, qa_finished_hours_ago=3)
    rule = rule_of(approval, people["alice"], "soak_time")
    assert rule.ok and rule.warning and rule.until is not None
    client.force_login(people["alice"])
    page = client.get(reverse("approvals:detail", kwargs={"pk": approval.pk}))
    item = BeautifulSoup(page.content, "html.parser").select_one("[data-rule=soak_time]")
    assert item["data-warning"] == "true"
    assert "soak time ends at" in item.get_text(" ", strip=True)
    assert item["data-until"] == rule.until.isoformat()
    box = BeautifulSoup(page.content, "html.parser")
    assert "soak time ends at" in box.select_one("[data-testid=decision-warnings]").text
    assert box.select_one("[data-testid=policy-soak_hours]").text == "24 h (warn)"
    assert box.select_one("[data-testid=policy-source-soak_hours]").text == "every model"
    detail = APIClient()
    detail.force_login(people["alice"])
    rules = detail.get(f"/api/v1/approvals/{approval.pk}/").json()["rules"]
    soak = next(r for r in rules if r["code"] == "soak_time")
    assert soak["ok"] and soak["warning"] and soak["until"]
    assert api_decide(people["alice"], approval).status_code == 201


def test_soak_time_elapsed_is_met_and_is_measured_from_the_latest_qa_deployment(version, people):
    policy(soak_hours=24, soak_mode="block")
    approval = prod_approval(version, qa_finished_hours_ago=30)
    rule = rule_of(approval, people["alice"], "soak_time")
    assert rule.ok and not rule.warning and rule.message == "In QA for 30 h, policy 24 h."
    RunStageFactory(  # a later QA deployment of the same version (another run) restarts it
        run=ApprovalRequestFactory(model_version=version).run,
        environment="QA",
        finished_at=timezone.now() - dt.timedelta(hours=1),
    )
    assert not rule_of(approval, people["alice"], "soak_time").ok


def test_soak_time_applies_to_prod_only(version, people):
    policy(environment="QA", soak_hours=24, soak_mode="block")
    assert (
        rule_of(ApprovalRequestFactory(model_version=version), people["alice"], "soak_time") is None
    )


# --- Minimum maturity ---------------------------------------------------------------------------


def test_a_minimum_maturity_level_refuses_a_model_below_it(client, version, people):
    catalog = version.registered_model.catalog_model
    policy(environment="QA", min_maturity_level=3)
    approval = ApprovalRequestFactory(model_version=version)
    assert_refused_everywhere(
        client, people["alice"], approval, "min_maturity", "has no assessed level"
    )
    ModelMaturity.objects.update_or_create(catalog_model=catalog, defaults={"level": 2})
    assert_refused_everywhere(
        client, people["bob"], approval, "min_maturity", "Maturity level 2; the policy needs"
    )
    ModelMaturity.objects.filter(pk=catalog.pk).update(level=3)
    assert api_decide(people["carol"], approval).status_code == 201


def test_the_gates_are_in_environment_rules_for_the_automated_check(version):
    policy(soak_hours=24, soak_mode="block", min_maturity_level=1)
    approval = prod_approval(version, qa_finished_hours_ago=3)
    rules = environment_rules(
        catalog_model=approval.catalog_model,
        model_version=approval.model_version,
        run=approval.run,
        environment="PROD",
        now=timezone.now(),
    )
    assert [r.code for r in rules] == ["qa_first", "soak_time", "min_maturity"]
    assert [r.ok for r in rules] == [True, False, False]


# --- Editing policies ---------------------------------------------------------------------------

POLICIES = "/api/v1/approvals/policies/"


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_managers_create_and_change_policies_every_edit_audited(make_user, version):
    manager = make_user(Role.MANAGER, username="mona")
    created = api_as(manager).post(
        POLICIES,
        {
            "environment": "PROD",
            "scope": "model",
            "catalog_model": "fraud-detector",
            "soak_hours": 24,
            "soak_mode": "block",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["catalog_model"] == "fraud-detector"
    [row] = AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED)
    assert row.actor == manager and row.environment == "PROD" and row.model_name == "fraud-detector"
    assert row.detail["before"] is None and row.detail["after"]["soak_hours"] == 24
    admin = make_user(Role.ADMIN, username="adam")
    changed = api_as(admin).patch(
        f"{POLICIES}{pk}", {"soak_hours": 12, "soak_mode": None}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["soak_hours"] == 12 and changed.json()["soak_mode"] == ""
    row = AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED).order_by("-pk").first()
    assert row.actor == admin
    assert row.detail["before"]["soak_hours"] == 24 and row.detail["before"]["soak_mode"] == "block"
    assert row.detail["after"]["soak_hours"] == 12 and row.detail["after"]["soak_mode"] == ""
    effective = (
        api_as(admin)
        .get("/api/v1/approvals/policies/effective?environment=PROD&model=fraud-detector")
        .json()
    )
    soak = next(v for v in effective["values"] if v["name"] == "soak_hours")
    assert soak["value"] == 12 and soak["source"] == "model fraud-detector"
    listed = api_as(make_user(Role.DATA_SCIENTIST)).get(POLICIES + "?environment=PROD").json()
    assert [p["id"] for p in listed["results"]] == [pk]


@pytest.mark.parametrize("role", [Role.APPROVER, Role.DATA_SCIENTIST])
def test_non_managers_get_403_on_edit_and_nothing_changes(make_user, role):
    existing = policy(soak_hours=24)
    client = api_as(make_user(role))
    create = client.post(POLICIES, {"environment": "QA", "scope": "global"}, format="json")
    assert create.status_code == 403 and create.json()["code"] == "policy_edit_forbidden"
    change = client.patch(f"{POLICIES}{existing.pk}", {"soak_hours": 1}, format="json")
    assert change.status_code == 403
    existing.refresh_from_db()
    assert existing.soak_hours == 24 and ApprovalPolicy.objects.count() == 1
    assert not AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED).exists()
    assert client.get(f"{POLICIES}{existing.pk}").status_code == 200  # reading is fine


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"environment": "PROD", "scope": "model"}, "A model policy names its model"),
        ({"environment": "PROD", "scope": "global", "soak_hours": "a day"}, "soak_hours"),
        ({"environment": "DEV", "scope": "global"}, "environment"),
        ({"environment": "PROD", "scope": "global", "colour": "red"}, "Unknown fields: colour"),
        (
            {"environment": "PROD", "scope": "global", "execution_order": "inSequence"},
            "In sequence needs the approvers",
        ),
    ],
)
def test_bad_policy_input_is_a_400_with_a_message(make_user, body, words):
    response = api_as(make_user(Role.MANAGER)).post(POLICIES, body, format="json")
    assert response.status_code == 400, response.content
    assert words in response.json()["detail"]
    assert not ApprovalPolicy.objects.exists()


def test_a_second_global_policy_for_an_environment_is_a_400(make_user):
    policy()
    response = api_as(make_user(Role.ADMIN)).post(
        POLICIES, {"environment": "PROD", "scope": "global"}, format="json"
    )
    assert response.status_code == 400 and ApprovalPolicy.objects.count() == 1


def test_admin_edits_are_audited_too(make_user, client):
    admin = make_user(Role.ADMIN, username="adam", is_staff=True)
    client.force_login(admin)
    add = reverse("admin:approvals_approvalpolicy_add")
    response = client.post(
        add,
        {
            "environment": "QA",
            "scope": "global",
            "team": "",
            "execution_order": "inSequence",
            "sequence_approvers": '["bob", "alice"]',
            "prod_approver_not_qa_approver": "unknown",
            "signoff_required": "unknown",
            "soak_mode": "",
            "note": "Bob first",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    saved = ApprovalPolicy.objects.get()
    assert saved.sequence_approvers == ["bob", "alice"] and saved.updated_by == admin
    row = AuditEvent.objects.get(action=AuditAction.POLICY_CHANGED)
    assert row.actor == admin and row.detail["after"]["execution_order"] == "inSequence"
    delete = reverse("admin:approvals_approvalpolicy_delete", args=[saved.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not ApprovalPolicy.objects.exists()
    last = AuditEvent.objects.filter(action=AuditAction.POLICY_CHANGED).order_by("-pk").first()
    assert last.detail["verb"] == "deleted" and last.detail["after"] is None


# --- Notifications name what blocks or waits ---------------------------------------------------


def test_a_notification_names_the_soak_time_and_when_it_ends(version, people, settings):
    from django.core import mail

    settings.APPROVALS_TEAMS_WEBHOOK_URL = ""
    policy(soak_hours=24, soak_mode="block")
    approval = prod_approval(version, qa_finished_hours_ago=3)
    services.notifications_send_new(approval_ids=[approval.pk])
    [message] = mail.outbox
    ends = approval.run.stages.get(environment="QA").finished_at + dt.timedelta(hours=24)
    assert f"(waits: Soak time until {ends:%Y-%m-%d %H:%M} UTC)" in message.subject
    assert (
        f"Soak time blocks it: In QA for 3 h, policy 24 h; soak time ends at "
        f"{ends:%Y-%m-%d %H:%M} UTC." in message.body
    )


def test_a_warning_is_named_in_the_body_not_the_subject(version, people):
    from django.core import mail

    policy(soak_hours=24, soak_mode="warn")
    approval = prod_approval(version, qa_finished_hours_ago=3)
    services.notifications_send_new(approval_ids=[approval.pk])
    [message] = mail.outbox
    assert "waits" not in message.subject
    assert "Soak time warns: In QA for 3 h, policy 24 h" in message.body


def test_any_rule_that_waits_is_named_whatever_its_code(version, people, monkeypatch):
    """Generic over Rule: another gate (a freeze window) is named with no more code."""
    from django.core import mail

    from approvals.services import notifications

    reopens = timezone.now().replace(microsecond=0) + dt.timedelta(days=3)
    window = services.Rule(
        "freeze_window", False, "Freeze window 'Christmas' is closed.", until=reopens
    )
    monkeypatch.setattr(notifications, "environment_rules", lambda **kwargs: [window])
    approval = ApprovalRequestFactory(model_version=version)
    services.notifications_send_new(approval_ids=[approval.pk])
    [message] = mail.outbox
    assert f"(waits: Freeze window until {reopens:%Y-%m-%d %H:%M} UTC)" in message.subject
    assert (
        f"Freeze window blocks it: Freeze window 'Christmas' is closed. "
        f"(until {reopens:%Y-%m-%d %H:%M} UTC)" in message.body
    )


@pytest.mark.parametrize(
    "raw",
    [
        '{"environment": "PROD", "scope": "global", "soak_hours": NaN}',
        '{"environment": "PROD", "scope": "global", "soak_hours": Infinity}',
        '["not", "an", "object"]',
    ],
)
def test_a_soak_time_that_is_not_a_number_is_a_400(make_user, raw):
    response = api_as(make_user(Role.MANAGER)).post(POLICIES, raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert not ApprovalPolicy.objects.exists()
