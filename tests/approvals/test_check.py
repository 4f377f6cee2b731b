"""The automated ADO check, inside the portal: the endpoint ADO calls (authentication, bad
input, idempotency), the token at rest, and the evaluation (the challenger against the
champion with the numbers, the environment's gates, once per request, with its callback)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals import services
from approvals.models import (
    ApprovalPolicy,
    AuditAction,
    AuditEvent,
    CheckCallback,
    CheckEvaluation,
    CheckRequest,
    FreezeWindow,
    PromotionPolicy,
)
from core.roles import Role
from pipelines.models import AdoProject
from tests.approvals import test_pages
from tests.approvals.factories import ApprovalRequestFactory
from tests.approvals.test_pages import _detail, _soup
from tests.pipelines.factories import PipelineFactory, PipelineRunFactory, RunStageFactory
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/approvals/checks/ado"
SECRET = "check-secret-for-tests"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.APPROVALS_CHECK_SECRET = SECRET


@pytest.fixture(autouse=True)
def _organization(db):
    """The organization ADO's PlanUrl names, as one of the portal's ADO projects."""
    AdoProject.objects.create(
        name="org", organization_url="https://dev.azure.com/org", project="MLOps"
    )


def ado_headers(**overrides) -> dict:
    """The headers ADO sends, as Django's test client takes them."""
    headers = {
        "PlanUrl": "https://dev.azure.com/org/",
        "ProjectId": str(uuid.uuid4()),
        "HubName": "checks",
        "PlanId": str(uuid.uuid4()),
        "JobId": str(uuid.uuid4()),
        "TaskInstanceId": str(uuid.uuid4()),
        "TimelineId": str(uuid.uuid4()),
        "AuthToken": "job-token-" + uuid.uuid4().hex,
        "Authorization": "Basic " + base64.b64encode(f"ado:{SECRET}".encode()).decode(),
    }
    headers.update(overrides)
    return {k: v for k, v in headers.items() if v is not None}


def call(client, body=None, **headers):
    body = {"model": "fraud-detector", "version": "2", "environment": "PROD", "runId": "41"} | (
        body or {}
    )
    return client.post(URL, json.dumps(body), content_type="application/json", headers=headers)


@pytest.fixture
def fraud():
    return fraud_models()


def fraud_models() -> dict:
    """fraud-detector v1 (auc 0.74) running in QA and PROD; v2 (0.71) and v3 (0.80)
    registered; a policy on auc with a minimum change of 0.01."""
    registered = RegisteredModelFactory(name="fraud-detector")
    catalog = registered.catalog_model
    versions = {
        n: ModelVersionFactory(registered_model=registered, version=n, metrics={"auc": auc})
        for n, auc in ((1, 0.74), (2, 0.71), (3, 0.80))
    }
    release = PipelineFactory(catalog_model=catalog, kind="release")
    shipped = PipelineRunFactory(
        pipeline=release,
        model_version=versions[1],
        queued_at=timezone.now() - dt.timedelta(days=9),
        parameters={"modelVersion": "1", "deployTarget": "aks"},
    )
    RunStageFactory(run=shipped, environment="QA", target="aks", order=1)
    RunStageFactory(run=shipped, environment="PROD", target="aks", order=2)
    PromotionPolicy.objects.create(catalog_model=catalog, metric="auc", min_absolute_change=0.01)
    return {"catalog": catalog, "release": release, **versions}


def released(fraud, version: int, ado_id: int, qa: bool = True):
    """A release run of ``version`` that went through QA (or not)."""
    run = PipelineRunFactory(
        pipeline=fraud["release"],
        model_version=fraud[version],
        ado_id=ado_id,
        parameters={"modelVersion": str(version), "deployTarget": "aks"},
    )
    if qa:
        RunStageFactory(run=run, environment="QA", target="aks", order=1)
    return run


# --- The endpoint -----------------------------------------------------------------------------


def test_without_a_configured_secret_the_endpoint_answers_503(client, settings):
    settings.APPROVALS_CHECK_SECRET = ""
    response = call(client, **ado_headers())
    assert response.status_code == 503
    assert "APPROVALS_CHECK_SECRET" in response.json()["detail"]


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic " + base64.b64encode(b"ado:wrong").decode(), "Bearer wrong", "Basic !!"],
)
def test_a_caller_without_the_secret_is_refused_401(client, authorization):
    response = call(client, **ado_headers(Authorization=authorization))
    assert response.status_code == 401
    assert CheckRequest.objects.count() == 0


def test_the_secret_is_also_taken_as_a_bearer_token(client, fraud):
    response = call(client, **ado_headers(Authorization=f"Bearer {SECRET}"))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("header", ["PlanUrl", "ProjectId", "PlanId", "JobId", "AuthToken"])
def test_a_missing_header_is_a_400_that_names_it(client, header):
    response = call(client, **ado_headers(**{header: None}))
    assert response.status_code == 400
    assert f"'{header}'" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": ""}, "model"),
        ({"environment": "DEV"}, "environment"),
        ({"version": "$(modelVersion)"}, "version"),
        ({"version": "two"}, "version"),
        ({"runId": ["1"]}, "runId"),
    ],
)
def test_a_bad_body_is_a_400_that_names_the_field(client, body, field):
    response = call(client, body, **ado_headers())
    assert response.status_code == 400
    assert f"'{field}'" in response.json()["detail"]


def test_a_plan_url_outside_the_known_organizations_is_a_400(client):
    response = call(client, **ado_headers(PlanUrl="http://169.254.169.254/"))
    assert response.status_code == 400
    assert "'PlanUrl'" in response.json()["detail"]
    assert CheckRequest.objects.count() == 0


def test_a_body_that_is_not_json_is_a_400(client):
    response = client.post(URL, b"{nope", content_type="application/json", headers=ado_headers())
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_a_call_is_kept_with_the_token_encrypted_and_audited(client, fraud):
    headers = ado_headers()
    response = call(client, **headers)
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    request = CheckRequest.objects.get()
    assert (request.plan_id, request.job_id) == (headers["PlanId"], headers["JobId"])
    assert request.catalog_model == fraud["catalog"] and request.model_version == fraud[2]
    assert headers["AuthToken"] not in request.auth_token
    assert services.check_token_decrypt(encrypted=request.auth_token) == headers["AuthToken"]
    assert AuditEvent.objects.filter(action=AuditAction.CHECK_RECEIVED).count() == 1


def test_a_repeated_call_answers_200_and_is_kept_once(
    client, fraud, django_capture_on_commit_callbacks
):
    headers = ado_headers()
    with django_capture_on_commit_callbacks() as first:
        assert call(client, **headers).status_code == 200
    with django_capture_on_commit_callbacks() as second:
        repeat = call(client, **headers)
    assert repeat.status_code == 200 and repeat.json()["status"] == "duplicate"
    assert CheckRequest.objects.count() == 1
    assert len(first) == 1 and len(second) == 0  # the evaluation is queued once


def test_the_check_url_is_the_documented_one():
    assert reverse("api:approvals:check-ado") == URL


# --- The evaluation ---------------------------------------------------------------------------


def received(fraud, version: int, environment="PROD", run=None) -> CheckRequest:
    request, _ = services.check_receive(
        call=services.CheckCall(
            plan_url="https://dev.azure.com/org/",
            project_id="p",
            hub_name="checks",
            plan_id=str(uuid.uuid4()),
            job_id="j",
            task_instance_id="t",
            auth_token="token",
            timeline_id="tl",
            build_id="",
            model_name="fraud-detector",
            version=str(version),
            environment=environment,
            run_id=str(run.ado_id) if run else "",
            body={},
        )
    )
    return request


def test_a_challenger_worse_than_the_champion_fails_with_the_numbers(fraud):
    run = released(fraud, 2, ado_id=41)
    evaluation = services.check_evaluate(request_id=received(fraud, 2, run=run).pk)
    assert evaluation.result == "failed"
    [challenger] = [r for r in evaluation.rules if r["code"] == "challenger"]
    assert challenger["ok"] is False
    assert challenger["values"]["challenger"] == 0.71 and challenger["values"]["champion"] == 0.74
    assert challenger["message"].startswith(
        "auc 0.71 vs champion v1 0.74: worse by 0.03; policy needs +0.01"
    )
    callback = CheckCallback.objects.get(evaluation=evaluation)
    assert callback.result == "failed" and callback.state == "queued"
    assert any("0.71" in line and "0.74" in line for line in callback.log_lines)
    failed = AuditEvent.objects.get(action=AuditAction.CHECK_FAILED)
    assert "challenger" in failed.message and failed.environment == "PROD"
    assert failed.model_name == "fraud-detector"


def test_a_better_challenger_that_went_through_qa_passes(fraud):
    run = released(fraud, 3, ado_id=42)
    evaluation = services.check_evaluate(request_id=received(fraud, 3, run=run).pk)
    assert evaluation.result == "passed", evaluation.rules
    assert [r["code"] for r in evaluation.rules] == ["challenger", "qa_first"]
    assert CheckCallback.objects.get(evaluation=evaluation).result == "succeeded"
    assert AuditEvent.objects.filter(action=AuditAction.CHECK_PASSED).count() == 1


def test_prod_without_qa_fails_on_the_gate_the_decision_box_uses(fraud):
    run = released(fraud, 3, ado_id=43, qa=False)
    evaluation = services.check_evaluate(request_id=received(fraud, 3, run=run).pk)
    assert evaluation.result == "failed"
    assert [r["code"] for r in evaluation.rules if not r["ok"]] == ["qa_first"]


def test_the_policy_gates_fail_the_check_as_they_refuse_a_decision(fraud):
    """Soak time (block) and a freeze window: the same gates as the decision box, so a
    better challenger that went through QA a moment ago still fails, naming both."""
    ApprovalPolicy.objects.create(
        environment="PROD", scope="global", soak_hours=24, soak_mode="block"
    )
    FreezeWindow.objects.create(
        name="Weekend",
        kind="deny",
        environment="all",
        reason="nobody on call",
        dtstart=timezone.now() - dt.timedelta(minutes=5),
        duration_minutes=120,
        timezone="UTC",
    )
    run = released(fraud, 3, ado_id=44)
    evaluation = services.check_evaluate(request_id=received(fraud, 3, run=run).pk)
    assert evaluation.result == "failed"
    failed = {r["code"]: r for r in evaluation.rules if not r["ok"]}
    assert set(failed) == {"soak_time", "freeze_window"}, evaluation.rules
    assert "policy 24 h" in failed["soak_time"]["message"]
    assert "Weekend" in failed["freeze_window"]["message"]
    lines = CheckCallback.objects.get(evaluation=evaluation).log_lines
    assert any("soak_time" in line for line in lines)
    assert any("Weekend" in line and "reopens at" in line for line in lines)


def test_an_unknown_model_fails_and_says_so(fraud):
    request = received(fraud, 3)
    CheckRequest.objects.filter(pk=request.pk).update(catalog_model=None, model_name="nope")
    evaluation = services.check_evaluate(request_id=request.pk)
    assert evaluation.result == "failed"
    assert evaluation.rules[0]["code"] == "model_known"


def test_a_request_is_evaluated_once(fraud):
    request = received(fraud, 3, run=released(fraud, 3, ado_id=44))
    assert services.check_evaluate(request_id=request.pk) is not None
    assert services.check_evaluate(request_id=request.pk) is None
    assert CheckEvaluation.objects.count() == CheckCallback.objects.count() == 1


def test_the_sweep_queues_unevaluated_requests_and_lost_callbacks(fraud, settings):
    settings.APPROVALS_CHECK_STUCK_SECONDS = 0
    lost = received(fraud, 3)
    evaluated = received(fraud, 2)
    services.check_evaluate(request_id=evaluated.pk)
    swept = services.checks_sweep()
    assert swept["evaluations"] == [lost.pk]
    assert swept["callbacks"] == [CheckCallback.objects.get().pk]


# --- The approval page and the audit trail ----------------------------------------------------

approver = test_pages.approver
approver_client = test_pages.approver_client


def test_the_approval_page_shows_each_evaluation_with_its_rules_and_numbers(approver_client, fraud):
    approval = ApprovalRequestFactory(model_version=fraud[2], environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", order=0)
    request = received(fraud, 2, run=approval.run)
    services.check_evaluate(request_id=request.pk)
    soup = _soup(approver_client.get(_detail(approval)))
    section = soup.select_one("[data-testid=automated-check]")
    assert section is not None
    text = section.get_text(" ", strip=True)
    assert "Failed" in text and "Callback pending" in text
    rules = {
        r["data-code"]: r.get_text(" ", strip=True)
        for r in section.select("[data-testid=check-rule]")
    }
    assert "worse by 0.03" in rules["challenger"] and "0.7100" in rules["challenger"]
    assert "qa_first" in rules


def test_an_approval_without_a_check_has_no_section(approver_client, fraud):
    approval = ApprovalRequestFactory(model_version=fraud[2], environment_name="PROD")
    soup = _soup(approver_client.get(_detail(approval)))
    assert soup.select_one("[data-testid=automated-check]") is None


def test_the_audit_trail_names_the_failed_rule(approver_client, fraud):
    request = received(fraud, 2, run=released(fraud, 2, ado_id=45))
    services.check_evaluate(request_id=request.pk)
    page = approver_client.get(reverse("approvals:audit") + "?action=check.failed").content.decode()
    assert "Automated check failed for fraud-detector v2 to PROD" in page
    assert "worse by 0.03" in page


def test_the_admin_shows_a_check_request_without_its_token(client, make_user, fraud):
    request = received(fraud, 3)
    client.force_login(make_user(Role.ADMIN))
    page = client.get(reverse("admin:approvals_checkrequest_change", args=[request.pk]))
    assert page.status_code == 200
    assert "fraud-detector" in page.content.decode()
    assert request.auth_token not in page.content.decode()
    assert "Auth token" not in page.content.decode()
