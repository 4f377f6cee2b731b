"""The pipelines API: pipelines, runs (filters, pages), one run, a model's deployments now."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from core.roles import Role
from pipelines.models import PipelineKind, RunResult
from tests.pipelines.factories import (
    AdoProjectFactory,
    PipelineFactory,
    PipelineRunFactory,
    RunStageFactory,
)
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/pipelines/"
NOW = timezone.now()


def ago(**kwargs):
    return NOW - dt.timedelta(**kwargs)


@pytest.fixture
def api(make_user):
    client = APIClient()
    client.force_login(make_user(Role.MANAGER))
    return client


@pytest.fixture
def fraud():
    rm = RegisteredModelFactory(name="main.risk.fraud_detector")
    v2 = ModelVersionFactory(registered_model=rm, version=2)
    v3 = ModelVersionFactory(registered_model=rm, version=3)
    model = rm.catalog_model
    training = PipelineFactory(catalog_model=model, kind=PipelineKind.TRAINING, name="train")
    release = PipelineFactory(catalog_model=model, kind=PipelineKind.RELEASE, name="release")
    trained = PipelineRunFactory(
        pipeline=training, model_version=v3, queued_at=ago(days=3), trigger="new-data"
    )
    old_release = PipelineRunFactory(
        pipeline=release,
        model_version=v2,
        queued_at=ago(days=9),
        parameters={"modelVersion": "2", "deployTarget": "aks"},
    )
    RunStageFactory(run=old_release, environment="QA", order=0)
    RunStageFactory(run=old_release, environment="PROD", order=1)
    new_release = PipelineRunFactory(
        pipeline=release,
        model_version=v3,
        queued_at=ago(hours=3),
        running=True,
        parameters={"modelVersion": "3", "deployTarget": "databricks-job"},
    )
    RunStageFactory(run=new_release, environment="QA", order=0)
    RunStageFactory(run=new_release, environment="PROD", order=1, waiting=True)
    return {
        "model": model,
        "training": training,
        "release": release,
        "trained": trained,
        "old_release": old_release,
        "new_release": new_release,
    }


def test_pipelines_list_with_filters(api, fraud):
    other = AdoProjectFactory(name="dd")
    PipelineFactory(project=other, catalog_model=None, kind=PipelineKind.CI, name="ci")
    response = api.get(BASE + "pipelines/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [p["name"] for p in body["results"]] == ["ci", "release", "train"]
    train = body["results"][2]
    assert train["kind"] == "training"
    assert train["catalog_model"] == "main.risk.fraud_detector"
    assert train["project"] == "mlops"
    assert set(train) >= {"id", "ado_id", "folder", "web_url", "kind_set_by_hand"}
    assert body["results"][0]["catalog_model"] is None
    names = lambda q: [p["name"] for p in api.get(BASE + "pipelines/" + q).json()["results"]]  # noqa: E731
    assert names("?kind=release") == ["release"]
    assert names("?model=main.risk.fraud_detector") == ["release", "train"]
    assert names("?project=dd") == ["ci"]


def test_runs_list_shape_filters_and_pages(api, fraud):
    response = api.get(BASE + "runs/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    first = body["results"][0]
    assert first["id"] == fraud["new_release"].pk
    assert first["status"] == "waiting"
    assert first["state"] == "inProgress"
    assert first["kind"] == "release"
    assert first["catalog_model"] == "main.risk.fraud_detector"
    assert first["model_version"] == {
        "source": "central",
        "model": "main.risk.fraud_detector",
        "version": 3,
        "url": "/registry/sources/central/models/main.risk.fraud_detector/versions/3/",
    }
    assert first["url"] == f"/pipelines/runs/{fraud['new_release'].pk}/"
    assert [s["environment"] for s in first["stages"]] == ["QA", "PROD"]
    assert first["stages"][1]["status"] == "waiting"
    assert first["stages"][1]["waiting_for_approval"] is True
    trained = body["results"][1]
    assert trained["trigger"] == "new data" and trained["status"] == "succeeded"

    ids = lambda q: [r["id"] for r in api.get(BASE + "runs/" + q).json()["results"]]  # noqa: E731
    assert ids("?state=waiting") == [fraud["new_release"].pk]
    assert ids("?kind=training") == [fraud["trained"].pk]
    assert ids("?result=succeeded&kind=release") == [fraud["old_release"].pk]
    assert ids("?trigger=new-data") == [fraud["trained"].pk]
    assert ids(f"?date_to={ago(days=5).date()}") == [fraud["old_release"].pk]
    assert ids("?sort=started")[0] == fraud["old_release"].pk
    assert ids("?model=nope") == []

    for _ in range(3):
        PipelineRunFactory(pipeline=fraud["training"], result=RunResult.FAILED)
    page = api.get(BASE + "runs/?page_size=2&page=2").json()
    assert page["count"] == 6 and len(page["results"]) == 2
    assert page["next"] and page["previous"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=nonsense", "kind"),
        ("state=sleeping", "state"),
        ("result=great", "result"),
        ("date_from=yesterday", "date_from"),
        ("sort=color", "sort"),
    ],
)
def test_bad_filters_are_a_400_with_a_message(api, fraud, query, field):
    response = api.get(f"{BASE}runs/?{query}")
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("Invalid filters:") and field in body["detail"]
    assert field in body["errors"]
    assert body["request_id"]


def test_reversed_dates_are_a_400(api):
    response = api.get(BASE + "runs/?date_from=2025-03-10&date_to=2025-03-01")
    assert response.status_code == 400
    assert "before the start date" in response.json()["detail"]
    assert api.get(BASE + "pipelines/?kind=weird").status_code == 400


def test_one_run_with_its_stages_and_parameters(api, fraud):
    run = fraud["new_release"]
    response = api.get(f"{BASE}runs/{run.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == run.pk and body["ado_id"] == run.ado_id
    assert body["parameters"] == {"modelVersion": "3", "deployTarget": "databricks-job"}
    assert [(s["name"], s["status"]) for s in body["stages"]] == [
        ("Deploy_QA", "succeeded"),
        ("Deploy_PROD", "waiting"),
    ]
    assert body["web_url"] == run.web_url
    missing = api.get(f"{BASE}runs/999999/")
    assert missing.status_code == 404
    assert missing.json()["detail"] and missing.json()["request_id"]


def test_a_models_deployments_now(api, fraud):
    response = api.get(f"{BASE}models/main.risk.fraud_detector/deployments/")
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "main.risk.fraud_detector"
    assert [(d["target"], d["model_version"]["version"]) for d in body["QA"]] == [
        ("aks", 2),
        ("databricks-job", 3),
    ]
    (prod,) = body["PROD"]  # v3's PROD stage still waits for its approval
    assert prod["target"] == "aks" and prod["model_version"]["version"] == 2
    assert prod["environment"] == "PROD" and prod["stage"] == "Deploy_PROD"
    assert prod["run"]["id"] == fraud["old_release"].pk
    assert prod["run"]["url"] == f"/pipelines/runs/{fraud['old_release'].pk}/"
    assert prod["deployed_at"]
    assert api.get(f"{BASE}models/nope/deployments/").status_code == 404


def test_a_model_with_nothing_deployed(api):
    rm = RegisteredModelFactory(name="quiet")
    body = api.get(f"{BASE}models/quiet/deployments/").json()
    assert body == {"model": rm.catalog_model.name, "QA": [], "PROD": []}


def test_the_runs_list_query_count_does_not_grow(api, fraud, django_assert_max_num_queries):
    for _ in range(20):
        run = PipelineRunFactory(pipeline=fraud["release"], running=True)
        RunStageFactory(run=run, environment="QA")
    api.get(BASE + "runs/")
    with django_assert_max_num_queries(6):
        response = api.get(BASE + "runs/")
    assert response.json()["count"] == 23


def test_anonymous_callers_are_refused():
    assert APIClient().get(BASE + "runs/").status_code in (401, 403)
