"""The registry API under /api/v1/registry/: shapes, filters, pagination, errors, schema."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db

API = "/api/v1/registry"
UC_NAME = "main.risk.fraud_detector"


@pytest.fixture
def api(role_client):
    return role_client(Role.APPROVER)  # any role reads the registry


@pytest.fixture
def fraud():
    source = RegistrySourceFactory(name="central", is_central=True, ui_url="https://mlflow.example")
    rm = RegisteredModelFactory(
        name=UC_NAME,
        source=source,
        aliases={"champion": 2},
        tags={"data.domain": "cards"},
        catalog_model__owners=["dana@example.com"],
        catalog_model__team="fraud-squad",
    )
    now = timezone.now()
    for number, auc, rmse in [(1, 0.80, 0.50), (2, 0.90, 0.40)]:
        ModelVersionFactory(
            registered_model=rm,
            version=number,
            metrics={"auc": auc, "rmse": rmse},
            params={"max_depth": str(4 + number)},
            aliases=["champion"] if number == 2 else [],
            created_upstream_at=now - dt.timedelta(days=5 - number),
            experiment_id="4",
            run_id=f"run{number}",
        )
    return rm


def test_url_names_live_under_the_api_registry_namespace():
    assert reverse("api:registry:model-detail", kwargs={"name": UC_NAME}) == (
        f"{API}/models/{UC_NAME}/"
    )
    assert (
        reverse(
            "api:registry:version-detail",
            kwargs={"source": "central", "name": UC_NAME, "version": 2},
        )
        == f"{API}/sources/central/models/{UC_NAME}/versions/2/"
    )


def test_sources(api, fraud):
    RegistrySourceFactory(
        name="dd",
        last_sync_succeeded_at=None,
        last_sync_error_at=timezone.now(),
        last_sync_error="boom",
    )
    data = api.get(f"{API}/sources/").json()
    assert [s["name"] for s in data] == ["central", "dd"]
    assert data[0]["sync_state"] == "ok" and data[0]["ui_base_url"] == "https://mlflow.example"
    assert data[1]["sync_state"] == "failing" and data[1]["last_sync_error"] == "boom"


def test_model_list_shape(api, fraud):
    CatalogModelFactory(name="credit-limit-rules", kind="rule_based")
    data = api.get(f"{API}/models/").json()
    assert data["count"] == 2 and data["next"] is None and data["previous"] is None
    rules, model = data["results"]
    assert rules == {
        "name": "credit-limit-rules",
        "url": "/registry/models/credit-limit-rules/",
        "kind": "rule_based",
        "serving": "unknown",
        "team": "unknown",
        "registered": False,
        "deleted_upstream": False,
        "sources": [],
        "latest_version": None,
        "aliases": [],
        "last_updated": rules["last_updated"],
        "headline_alias": "champion",
        "headline_version": None,
    }
    assert model["name"] == UC_NAME and model["team"] == "fraud-squad"
    assert model["latest_version"] == {"source": "central", "model": UC_NAME, "version": 2}
    assert model["aliases"] == [
        {"source": "central", "model": UC_NAME, "alias": "champion", "version": 2}
    ]
    assert model["headline_alias"] == "champion"
    assert model["headline_version"] == {
        "source": "central",
        "model": UC_NAME,
        "version": 2,
        "alias": "champion",
        "fallback": False,
    }


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=FRAUD", [UC_NAME]),
        ("kind=rule_based", ["rules"]),
        ("team=fraud-squad", [UC_NAME]),
        ("registered=no", ["rules"]),
        ("alias=champion", [UC_NAME]),
        ("alias=*", [UC_NAME]),
        ("tag=data.domain=cards", [UC_NAME]),
        ("tag=data.domain=cards&tag=missing", []),
        ("source=central", [UC_NAME]),
        ("sort=-name", ["rules", UC_NAME]),
        ("include_deleted=true", ["gone", UC_NAME, "rules"]),
    ],
)
def test_model_list_filters_like_the_page(api, fraud, query, expected):
    CatalogModelFactory(name="rules", kind="rule_based")
    RegisteredModelFactory(name="gone", deleted_upstream_at=timezone.now())
    data = api.get(f"{API}/models/?{query}").json()
    assert [m["name"] for m in data["results"]] == expected
    assert data["count"] == len(expected)


@pytest.mark.sqlite
@pytest.mark.parametrize("query", ["kind=robot", "sort=size", "registered=maybe", "tag=%3Dx"])
def test_bad_filters_are_400_json(api, query):
    response = api.get(f"{API}/models/?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "request_id" in response.json()


def test_model_list_pages_with_counts_and_bounded_queries(api, django_assert_max_num_queries):
    for i in range(60):
        rm = RegisteredModelFactory(name=f"m{i:02d}", aliases={"champion": 1})
        ModelVersionFactory(registered_model=rm, version=1)
    api.get(f"{API}/models/")
    with django_assert_max_num_queries(8):
        data = api.get(f"{API}/models/").json()
    assert data["count"] == 60 and len(data["results"]) == 50
    assert data["next"].endswith("/api/v1/registry/models/?page=2")
    data = api.get(f"{API}/models/?page=2").json()
    assert len(data["results"]) == 10 and data["next"] is None
    assert len(api.get(f"{API}/models/?page_size=7").json()["results"]) == 7
    assert api.get(f"{API}/models/?page=99").status_code == 400  # invalid_page


def test_model_detail(api, fraud):
    RegisteredModelFactory(
        name="dd.fraud",
        source=RegistrySourceFactory(name="dd"),
        catalog_model=fraud.catalog_model,
        deleted_upstream_at=timezone.now(),
    )
    data = api.get(f"{API}/models/{UC_NAME}/").json()
    assert data["name"] == UC_NAME and data["url"] == f"/registry/models/{UC_NAME}/"
    assert (data["kind"], data["serving"], data["team"]) == ("ml", "batch", "fraud-squad")
    assert data["overrides"] == {"kind": "", "serving": "", "team": "fraud-squad"}
    assert data["registry_categories"] == {"kind": "ml", "serving": "batch", "team": "risk"}
    assert data["owners"] == ["dana@example.com"] and data["registered"] is True
    (registered,) = data["registered_models"]
    assert registered["source"] == "central" and registered["tags"] == {"data.domain": "cards"}
    assert registered["aliases"] == {"champion": 2}
    assert data["aliases"] == [
        {"source": "central", "model": UC_NAME, "alias": "champion", "version": 2}
    ]
    data = api.get(f"{API}/models/{UC_NAME}/?include_deleted=1").json()
    assert [r["source"] for r in data["registered_models"]] == ["central", "dd"]


def test_unknown_models_are_404_json(api):
    for url in (
        f"{API}/models/nope/",
        f"{API}/models/nope/versions/",
        f"{API}/models/nope/compare/?v=a:1&v=a:2",
        f"{API}/sources/central/models/nope/versions/1/",
    ):
        response = api.get(url)
        assert response.status_code == 404, url
        assert response.json()["detail"]


def test_versions_list_filters_by_source_and_deleted(api, fraud):
    dd_model = RegisteredModelFactory(
        name="dd.fraud", source=RegistrySourceFactory(name="dd"), catalog_model=fraud.catalog_model
    )
    ModelVersionFactory(registered_model=dd_model, version=1, created_upstream_at=timezone.now())
    fraud.versions.filter(version=1).update(deleted_upstream_at=timezone.now())
    data = api.get(f"{API}/models/{UC_NAME}/versions/").json()
    assert data["count"] == 2
    assert [(v["source"], v["version"]) for v in data["results"]] == [("dd", 1), ("central", 2)]
    first = data["results"][1]
    assert first["aliases"] == ["champion"] and first["metrics"] == {"auc": 0.9, "rmse": 0.4}
    assert first["url"] == f"/registry/sources/central/models/{UC_NAME}/versions/2/"
    data = api.get(f"{API}/models/{UC_NAME}/versions/?source=central&include_deleted=1").json()
    assert [(v["version"], v["deleted_upstream_at"] is not None) for v in data["results"]] == [
        (2, False),
        (1, True),
    ]


def test_versions_list_pages_twenty_five_at_a_time(api):
    rm = RegisteredModelFactory(name="big")
    for number in range(1, 31):
        ModelVersionFactory(registered_model=rm, version=number)
    data = api.get(f"{API}/models/big/versions/").json()
    assert data["count"] == 30 and len(data["results"]) == 25


def test_version_detail(api, fraud):
    data = api.get(f"{API}/sources/central/models/{UC_NAME}/versions/2/").json()
    assert data["catalog_model"] == UC_NAME
    assert data["metrics"] == {"auc": 0.9, "rmse": 0.4} and data["params"] == {"max_depth": "6"}
    assert data["mlflow_run_url"] == "https://mlflow.example/#/experiments/4/runs/run2"
    assert data["aliases"] == ["champion"] and data["status"] == "READY"
    for key in ("tags", "run_tags", "source_uri", "run_id", "user_id", "created_upstream_at"):
        assert key in data
    response = api.get(f"{API}/sources/central/models/{UC_NAME}/versions/99/")
    assert response.status_code == 404


def test_compare(api, fraud):
    response = api.get(f"{API}/models/{UC_NAME}/compare/?v=central:1&v=central:2")
    assert response.status_code == 200
    data = response.json()
    assert data["catalog_model"] == UC_NAME
    assert [v["ref"] for v in data["versions"]] == ["central:1", "central:2"]
    metrics = {m["name"]: m for m in data["metrics"]}
    auc = metrics["auc"]
    assert auc["lower_is_better"] is False
    assert [c["value"] for c in auc["values"]] == [0.8, 0.9]
    assert auc["values"][0]["delta"] is None
    assert auc["values"][1]["delta"] == pytest.approx(0.1)
    assert [c["best"] for c in auc["values"]] == [False, True]
    assert auc["values"][1]["better"] is True
    rmse = metrics["rmse"]
    assert rmse["lower_is_better"] is True
    assert [c["best"] for c in rmse["values"]] == [False, True]
    assert data["params"] == [{"name": "max_depth", "values": ["5", "6"], "differs": True}]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "at least 2"),
        ("v=central:1", "at least 2"),
        ("v=a:1&v=a:2&v=a:3&v=a:4&v=a:5", "at most 4"),
        ("v=central:1&v=central:3", "has no version central:3"),
        ("v=central:1&v=bad", "not a version reference"),
    ],
)
def test_compare_bad_input_is_400_json(api, fraud, query, message):
    response = api.get(f"{API}/models/{UC_NAME}/compare/?{query}")
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert response.json()["request_id"]


def test_the_api_says_how_to_pass_the_versions(api, fraud):
    response = api.get(f"{API}/models/{UC_NAME}/compare/?v=central:1")
    assert response.status_code == 400
    assert "pass them as v=source:version" in response.json()["detail"]


def test_the_api_refuses_anonymous_callers(client, fraud):
    response = client.get(f"{API}/models/")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"


def test_the_schema_documents_every_registry_operation(role_client):
    schema = role_client(Role.DATA_SCIENTIST).get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert {
        "/api/v1/registry/sources/",
        "/api/v1/registry/models/",
        "/api/v1/registry/models/{name}/",
        "/api/v1/registry/models/{name}/versions/",
        "/api/v1/registry/models/{name}/compare/",
        "/api/v1/registry/sources/{source}/models/{name}/versions/{version}/",
    } <= set(paths)
    listed = {p["name"] for p in paths["/api/v1/registry/models/"]["get"]["parameters"]}
    assert {"q", "source", "kind", "serving", "team", "registered", "alias", "tag"} <= listed
    assert {"include_deleted", "sort", "page"} <= listed
    compare = paths["/api/v1/registry/models/{name}/compare/"]["get"]
    assert {"200", "400", "404"} <= set(compare["responses"])
