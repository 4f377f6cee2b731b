"""The maturity API under /api/v1/maturity/: the criteria catalogue, the portfolio summary,
each model's current maturity (list with the dashboard's filters, detail with every
criterion's evidence and the history), a manager's declaration, and the schema."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from core.roles import Role
from maturity import services
from maturity.criteria import CRITERIA
from maturity.models import MaturityRecord, ModelMaturity, Result, Source
from tests.maturity.factories import (
    AssessedRecordFactory,
    SnapshotFactory,
    results_for,
    set_maturity,
)
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/maturity/"
REASON = "Retraining on new data runs in Databricks workflows the portal cannot see."
READ_ROLES = [Role.MANAGER, Role.APPROVER, Role.DATA_SCIENTIST, Role.ADMIN]


@pytest.fixture
def api_as(make_user):
    def sign_in(*roles, user=None):
        client = APIClient()
        client.force_login(user or make_user(*roles))
        return client

    return sign_in


@pytest.fixture
def portfolio(db):
    """Four models: risk (ML) at 3 and 2 (declared 4), growth (rule-based) at 5, and one
    operations model never assessed."""
    fraud = set_maturity(
        CatalogModelFactory(name="fraud-detector", team="risk", kind="ml", serving="real_time"),
        assessed=3,
    )
    churn = set_maturity(
        CatalogModelFactory(name="churn-predictor", team="risk", kind="ml", serving="batch"),
        assessed=2,
        declared=4,
    )
    rules = set_maturity(
        CatalogModelFactory(
            name="credit-limit-rules", team="growth", kind="rule_based", serving="batch",
            description="Limits by rules.",
        ),
        assessed=5,
    )  # fmt: skip
    new = CatalogModelFactory(name="demand-forecast", team="operations", kind="ml")
    return {"fraud": fraud, "churn": churn, "rules": rules, "new": new}


def names(response):
    return [m["name"] for m in response.json()["results"]]


# --- Names and roles ------------------------------------------------------------------------


def test_the_url_names():
    assert reverse("api:maturity:criteria") == f"{BASE}criteria/"
    assert reverse("api:maturity:summary") == f"{BASE}summary/"
    assert reverse("api:maturity:model-list") == f"{BASE}models/"
    assert reverse("api:maturity:model-detail", kwargs={"name": "a.b"}) == f"{BASE}models/a.b/"
    assert (
        reverse("api:maturity:declaration", kwargs={"name": "x"}) == f"{BASE}models/x/declaration/"
    )


@pytest.mark.parametrize("role", READ_ROLES)
@pytest.mark.parametrize("path", ["criteria/", "summary/", "models/", "models/fraud-detector/"])
def test_every_role_reads(role, path, api_as, portfolio):
    assert api_as(role).get(BASE + path).status_code == 200


@pytest.mark.parametrize("path", ["criteria/", "summary/", "models/", "models/fraud-detector/"])
def test_anonymous_callers_and_users_without_a_role_are_refused(path, api_as, portfolio):
    assert APIClient().get(BASE + path).status_code == 403
    assert api_as().get(BASE + path).status_code == 403


# --- Criteria -------------------------------------------------------------------------------


def test_the_criteria_catalogue(api_as):
    data = api_as(Role.DATA_SCIENTIST).get(f"{BASE}criteria/").json()
    assert [c["code"] for c in data] == [c.code for c in CRITERIA]
    first = data[0]
    assert set(first) >= {"code", "level", "level_name", "title", "evaluation", "fix", "applies_to"}
    assert first["level"] == 1 and first["level_name"] == "DevOps but no MLOps"


# --- Summary --------------------------------------------------------------------------------


def _levels(entries):
    return {e["level"]: e["models"] for e in entries if e["models"]}


def test_the_summary_counts_the_portfolio(api_as, portfolio):
    data = api_as(Role.MANAGER).get(f"{BASE}summary/").json()
    assert (data["total"], data["assessed"], data["unassessed"]) == (4, 3, 1)
    assert data["disagreements"] == 1
    assert _levels(data["levels"]) == {3: 1, 4: 1, 5: 1}  # churn counts as declared 4
    assert data["average_level"] == 4.0
    by_team = {g["group"]: _levels(g["levels"]) for g in data["by_team"]}
    assert by_team == {"growth": {5: 1}, "risk": {3: 1, 4: 1}}
    by_kind = {g["group"]: g["total"] for g in data["by_kind"]}
    assert by_kind == {"ML model": 2, "Rule-based model": 1}


def test_the_summary_takes_the_dashboard_filters(api_as, portfolio):
    client = api_as(Role.MANAGER)
    risk = client.get(f"{BASE}summary/", {"team": "risk"}).json()
    assert (risk["total"], risk["disagreements"]) == (2, 1)
    rules = client.get(f"{BASE}summary/", {"kind": "rule_based"}).json()
    assert _levels(rules["levels"]) == {5: 1}
    batch = client.get(f"{BASE}summary/", {"serving": "batch"}).json()
    assert batch["assessed"] == 2


def test_the_summary_trend_has_weekly_counts_and_averages(api_as, portfolio):
    this_week = services.week_of(timezone.localdate())
    for weeks_back, level in ((4, 1), (1, 2), (0, 3)):
        SnapshotFactory(
            week=this_week - dt.timedelta(weeks=weeks_back),
            catalog_model=portfolio["fraud"],
            assessed_level=level,
        )
    SnapshotFactory(week=this_week, catalog_model=portfolio["rules"], assessed_level=5)
    trend = api_as(Role.MANAGER).get(f"{BASE}summary/").json()["trend"]
    weeks = trend["weeks"]
    assert [w["week"] for w in weeks] == [
        (this_week - dt.timedelta(weeks=n)).isoformat() for n in (4, 1, 0)
    ]
    assert [w["average"] for w in weeks] == [1.0, 2.0, 4.0]
    assert _levels(weeks[-1]["levels"]) == {3: 1, 5: 1} and weeks[-1]["total"] == 2
    assert trend["change_4_weeks"] == 3.0  # from 1.0 four weeks ago to 4.0
    short = api_as(Role.MANAGER).get(f"{BASE}summary/", {"weeks": 2}).json()["trend"]
    assert len(short["weeks"]) == 2


@pytest.mark.parametrize(
    "query", [{"kind": "robot"}, {"serving": "sometimes"}, {"weeks": "0"}, {"weeks": "x"}]
)
def test_bad_summary_filters_are_400s(query, api_as):
    response = api_as(Role.MANAGER).get(f"{BASE}summary/", query)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "bad_filter" and body["detail"].startswith("Invalid filters")
    assert set(body["errors"]) == set(query)


# --- Model list -----------------------------------------------------------------------------


def test_the_model_list_is_every_model_by_name(api_as, portfolio):
    response = api_as(Role.DATA_SCIENTIST).get(f"{BASE}models/")
    body = response.json()
    assert body["count"] == 4
    assert names(response) == [
        "churn-predictor",
        "credit-limit-rules",
        "demand-forecast",
        "fraud-detector",
    ]
    rows = {m["name"]: m for m in body["results"]}
    churn = rows["churn-predictor"]
    assert (churn["level"], churn["assessed_level"], churn["declared_level"]) == (4, 2, 4)
    assert churn["disagreement"] is True
    assert churn["page_url"] == "/registry/models/churn-predictor/#maturity"
    assert (churn["team"], churn["kind"], churn["serving"]) == ("risk", "ml", "batch")
    step = churn["next_step"]
    assert step["level"] == 3 and step["result"] == "failed" and step["fix"]
    never = rows["demand-forecast"]
    assert never["level"] is None and never["next_step"] is None
    assert never["disagreement"] is False
    assert rows["credit-limit-rules"]["next_step"] is None  # level 5: nothing next


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"team": "risk"}, ["churn-predictor", "fraud-detector"]),
        ({"kind": "rule_based"}, ["credit-limit-rules"]),
        ({"serving": "real_time"}, ["fraud-detector"]),
        ({"level": "4"}, ["churn-predictor"]),
        ({"level": "unassessed"}, ["demand-forecast"]),
        ({"disagreement": "true"}, ["churn-predictor"]),
        ({"q": "rules"}, ["credit-limit-rules"]),
        ({"team": "risk", "level": "3"}, ["fraud-detector"]),
    ],
)
def test_the_model_list_filters(query, expected, api_as, portfolio):
    assert names(api_as(Role.APPROVER).get(f"{BASE}models/", query)) == expected


def test_the_model_list_is_paginated(api_as, portfolio):
    body = api_as(Role.MANAGER).get(f"{BASE}models/", {"page_size": 3}).json()
    assert body["count"] == 4 and len(body["results"]) == 3 and body["next"]
    second = api_as(Role.MANAGER).get(body["next"]).json()
    assert [m["name"] for m in second["results"]] == ["fraud-detector"]


@pytest.mark.parametrize(
    "query", [{"level": "7"}, {"kind": "robot"}, {"disagreement": "maybe"}, {"q": "x" * 300}]
)
def test_bad_model_list_filters_are_400s(query, api_as, portfolio):
    response = api_as(Role.MANAGER).get(f"{BASE}models/", query)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_filter"
    assert set(response.json()["errors"]) == set(query)


def test_the_model_list_queries_do_not_grow_with_the_page(api_as, portfolio):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = api_as(Role.MANAGER)
    client.get(f"{BASE}models/")  # warm the session
    with CaptureQueriesContext(connection) as few:
        client.get(f"{BASE}models/")
    for n in range(6):
        set_maturity(CatalogModelFactory(name=f"extra-{n}"), assessed=n % 5)
    with CaptureQueriesContext(connection) as more:
        client.get(f"{BASE}models/")
    assert len(more) == len(few)


# --- Model detail ---------------------------------------------------------------------------


def test_the_model_detail_has_both_levels_every_criterion_and_the_history(api_as, portfolio):
    model = portfolio["churn"]
    results = results_for(2)
    results[0]["evidence"] = [{"label": "CI run #7", "url": "/pipelines/runs/7/"}]
    AssessedRecordFactory(catalog_model=model, level=2, results=results)
    services.model_maturity_rebuild(catalog_model_ids=[model.pk])
    data = api_as(Role.DATA_SCIENTIST).get(f"{BASE}models/churn-predictor/").json()
    assert data["name"] == "churn-predictor" and data["level"] == 4
    assert data["assessed"]["level"] == 2
    assert data["assessed"]["level_name"] == "Automated training"
    assert data["assessed"]["made_by"] == services.NIGHTLY
    assert data["declared"]["level"] == 4 and data["declared"]["reason"] == REASON
    assert data["declared"]["made_by"] == "Maria Manager"
    assert data["disagreement"] is True and data["next_level"] == 3
    assert [c["code"] for c in data["criteria"]] == [c.code for c in CRITERIA]
    first = data["criteria"][0]
    assert first["evidence"] == [{"label": "CI run #7", "url": "/pipelines/runs/7/"}]
    assert first["result"] == "passed" and first["title"] and first["fix"]
    kinds = [(h["kind"], h["level"]) for h in data["history"]]
    assert kinds[0] == ("assessed", 2)  # newest first
    assert ("declared", 4) in kinds


def test_the_detail_of_a_model_never_assessed(api_as, portfolio):
    data = api_as(Role.APPROVER).get(f"{BASE}models/demand-forecast/").json()
    assert data["assessed"] is None and data["declared"] is None
    assert data["level"] is None and data["criteria"] == [] and data["history"] == []


def test_the_detail_shows_not_measured_results(api_as):
    model = CatalogModelFactory(name="m")
    AssessedRecordFactory(
        catalog_model=model,
        level=1,
        unmeasured_level=2,
        results=results_for(1, next_result=Result.NOT_MEASURED),
    )
    services.model_maturity_rebuild(catalog_model_ids=[model.pk])
    data = api_as(Role.APPROVER).get(f"{BASE}models/m/").json()
    assert data["assessed"]["unmeasured_level"] == 2
    assert {c["result"] for c in data["criteria"] if c["level"] == 2} == {"not_measured"}


def test_an_unknown_model_is_a_json_404(api_as):
    response = api_as(Role.MANAGER).get(f"{BASE}models/nope/")
    assert response.status_code == 404
    assert "detail" in response.json()


# --- Declaration ----------------------------------------------------------------------------


def declare(client, name="fraud-detector", **body):
    return client.post(f"{BASE}models/{name}/declaration/", body, format="json")


def test_a_manager_declares_a_level(api_as, make_user, portfolio):
    manager = make_user(Role.MANAGER, first_name="Mo", last_name="Lee")
    response = declare(api_as(user=manager), level=4, reason=REASON)
    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["level"], body["reason"], body["made_by"]) == (
        "declared",
        4,
        REASON,
        "Mo Lee",
    )
    assert body["model"] == "fraud-detector" and body["level_name"]
    status = ModelMaturity.objects.get(pk=portfolio["fraud"].pk)
    assert (status.declared_level, status.level, status.disagreement) == (4, 4, True)


def test_a_manager_withdraws_with_null(api_as, portfolio):
    response = declare(api_as(Role.MANAGER), "churn-predictor", level=None, reason=REASON)
    assert response.status_code == 201
    assert response.json()["level"] is None
    status = ModelMaturity.objects.get(pk=portfolio["churn"].pk)
    assert (status.declared_level, status.level) == (None, 2)


@pytest.mark.parametrize("role", [Role.APPROVER, Role.DATA_SCIENTIST, Role.ADMIN])
def test_only_managers_declare(role, api_as, portfolio):
    response = declare(api_as(role), level=4, reason=REASON)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "not_manager" and set(body) == {"detail", "code", "request_id"}
    assert body["detail"] == "Only managers can declare a model's maturity level."
    assert not MaturityRecord.objects.filter(catalog_model=portfolio["fraud"], source="declared")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"level": 3, "reason": ""}, 400, "reason_required"),
        ({"level": 3}, 400, "reason_required"),
        ({"level": 3, "reason": "short"}, 400, "reason_required"),
        ({"level": 6, "reason": REASON}, 400, "bad_level"),
        ({"level": 0, "reason": REASON}, 400, "bad_level"),
        ({"level": "three", "reason": REASON}, 400, "bad_level"),
        ({"level": 2.5, "reason": REASON}, 400, "bad_level"),
        ({"level": True, "reason": REASON}, 400, "bad_level"),
        ({"reason": REASON}, 400, "bad_request"),
        ({"level": 3, "reason": 12}, 400, "bad_request"),
        ({"level": None, "reason": REASON}, 409, "nothing_to_withdraw"),
    ],
)
def test_refusals_answer_detail_and_code_with_the_services_status(
    body, status, code, api_as, portfolio
):
    response = declare(api_as(Role.MANAGER), **body)
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["detail"]
    assert not MaturityRecord.objects.filter(catalog_model=portfolio["fraud"], source="declared")


def test_declaring_the_declared_level_again_is_a_409(api_as, portfolio):
    response = declare(api_as(Role.MANAGER), "churn-predictor", level=4, reason=REASON)
    assert response.status_code == 409 and response.json()["code"] == "unchanged"


def test_a_body_that_is_not_an_object_is_a_400(api_as, portfolio):
    client = api_as(Role.MANAGER)
    url = f"{BASE}models/fraud-detector/declaration/"
    for raw in ("[1, 2]", "not json"):
        response = client.post(url, raw, content_type="application/json")
        assert response.status_code == 400 and response.json()["code"] == "bad_request"


def test_declaring_for_an_unknown_model_is_a_404(api_as):
    assert declare(api_as(Role.MANAGER), "nope", level=3, reason=REASON).status_code == 404


def test_a_declaration_needs_the_csrf_token(make_user, portfolio):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(Role.MANAGER))
    response = client.post(
        f"{BASE}models/fraud-detector/declaration/",
        {"level": 3, "reason": REASON},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not MaturityRecord.objects.filter(source=Source.DECLARED, level=3).exists()


# --- Schema ---------------------------------------------------------------------------------


def test_the_schema_documents_the_maturity_api(api_as):
    paths = api_as(Role.DATA_SCIENTIST).get("/api/schema/?format=json").json()["paths"]
    assert set(paths) >= {
        "/api/v1/maturity/criteria/",
        "/api/v1/maturity/summary/",
        "/api/v1/maturity/models/",
        "/api/v1/maturity/models/{name}/",
        "/api/v1/maturity/models/{name}/declaration/",
    }
    declaration = paths["/api/v1/maturity/models/{name}/declaration/"]["post"]
    assert set(declaration["responses"]) == {"201", "400", "401", "403", "404", "409", "429", "503"}
    listed = {p["name"] for p in paths["/api/v1/maturity/models/"]["get"]["parameters"]}
    assert listed >= {"team", "kind", "serving", "level", "disagreement", "q", "page"}
    summary = {p["name"] for p in paths["/api/v1/maturity/summary/"]["get"]["parameters"]}
    assert summary >= {"team", "kind", "serving", "weeks"}


def test_the_schema_generates_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
