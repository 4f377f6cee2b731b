"""The registry history API: /models/{name}/events and /models/{name}/aliases/at."""

import datetime as dt

import pytest

from core.roles import Role
from registry.models import RegistryEventKind
from tests.registry.factories import RegisteredModelFactory, RegistryEventFactory

pytestmark = pytest.mark.django_db

API = "/api/v1/registry"
T0 = dt.datetime(2026, 10, 3, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def api(role_client):
    return role_client(Role.DATA_SCIENTIST)


@pytest.fixture
def pricing():
    """@champion: v1 when first seen at T0, v2 seen at T0+2h (moved after T0+1h)."""
    rm = RegisteredModelFactory(name="pricing", created_upstream_at=T0 - 24 * HOUR)
    RegistryEventFactory(
        registered_model=rm, kind=RegistryEventKind.MODEL_CREATED, name="", version=None,
        observed_at=T0, previously_seen_at=None,
    )  # fmt: skip
    RegistryEventFactory(registered_model=rm, version=1, observed_at=T0, previously_seen_at=None)
    RegistryEventFactory(
        registered_model=rm, version=2, old_value=1, observed_at=T0 + 2 * HOUR,
        previously_seen_at=T0 + HOUR,
    )  # fmt: skip
    RegistryEventFactory(
        registered_model=rm, kind=RegistryEventKind.VERSION_STAGE, name="", version=2,
        old_value="", new_value="Production", observed_at=T0 + 3 * HOUR,
        previously_seen_at=T0 + 2 * HOUR,
    )  # fmt: skip
    return rm


def test_events_list_oldest_first_with_the_window(api, pricing):
    response = api.get(f"{API}/models/pricing/events")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    kinds = [e["kind"] for e in body["results"]]
    assert kinds == ["model_created", "alias_set", "alias_set", "version_stage"]
    moved = body["results"][2]
    assert (moved["name"], moved["version"], moved["old_value"], moved["new_value"]) == (
        "champion",
        2,
        1,
        2,
    )
    assert moved["happened_after"] == "2026-10-03T13:00:00Z"
    assert moved["happened_by"] == "2026-10-03T14:00:00Z"
    assert moved["source"] == "central" and moved["kind_label"] == "Alias set"


def test_events_filters(api, pricing):
    def kinds(query):
        response = api.get(f"{API}/models/pricing/events?{query}")
        assert response.status_code == 200, response.json()
        return [(e["kind"], e["version"]) for e in response.json()["results"]]

    assert kinds("kind=version_stage") == [("version_stage", 2)]
    assert kinds("kind=version_stage&kind=model_created") == [
        ("model_created", None),
        ("version_stage", 2),
    ]
    assert kinds("version=2") == [("alias_set", 2), ("version_stage", 2)]
    assert kinds("since=2026-10-03T13:00:00Z") == [("alias_set", 2), ("version_stage", 2)]
    assert kinds("until=2026-10-03T14:00:00") == [("model_created", None), ("alias_set", 1)]
    assert kinds("since=2026-10-03T14:00:00%2B01:00&until=2026-10-03T15:00Z") == [("alias_set", 2)]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "since: Datetime has wrong format"),
        ("until=2026-13-01", "until: Datetime has wrong format"),
        ("kind=alias_moved", 'kind: "alias_moved" is not a valid choice'),
        ("version=zero", "version: A valid integer is required"),
        ("since=2026-10-04&until=2026-10-03", "since must be before until"),
    ],
)
def test_events_bad_filters_are_400_with_a_message(api, pricing, query, message):
    response = api.get(f"{API}/models/pricing/events?{query}")
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_alias_at_answers_version_unknown_and_none(api, pricing):
    def ask(at, alias="champion"):
        response = api.get(f"{API}/models/pricing/aliases/at", {"alias": alias, "at": at})
        assert response.status_code == 200, response.json()
        return response.json()

    assert ask("2026-10-03T12:30:00Z")["version"] == 1
    between = ask("2026-10-03T13:30:00Z")
    assert between["outcome"] == "unknown" and between["possible"] == [1, 2]
    assert (between["window_start"], between["window_end"]) == (
        "2026-10-03T13:00:00Z",
        "2026-10-03T14:00:00Z",
    )
    assert "moved between 2026-10-03 13:00 UTC and 2026-10-03 14:00 UTC" in between["text"]
    assert ask("2026-10-03T16:00:00")["version"] == 2  # no zone: UTC
    before = ask("2026-10-03T11:00:00Z")
    assert before["outcome"] == "unknown" and "before the portal first looked" in before["text"]
    assert ask("2026-09-01T00:00:00Z")["outcome"] == "none"  # before the model existed
    assert ask("2026-10-03T16:00:00Z", alias="challenger")["outcome"] == "none"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alias": "champion"}, "at: This field is required"),
        ({"alias": "champion", "at": "noon"}, "at: Datetime has wrong format"),
        ({"at": "2026-10-03T12:00:00Z"}, "alias: This field is required"),
    ],
)
def test_alias_at_bad_input_is_400(api, pricing, params, message):
    response = api.get(f"{API}/models/pricing/aliases/at", params)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_unknown_model_is_404_and_anonymous_refused(client, api, pricing):
    assert api.get(f"{API}/models/nope/events").status_code == 404
    assert api.get(f"{API}/models/nope/aliases/at?alias=a&at=2026-10-03").status_code == 404
    assert client.logout() is None
    assert client.get(f"{API}/models/pricing/events").status_code == 403
    assert client.get(f"{API}/models/pricing/aliases/at?alias=a&at=2026-10-03").status_code == 403


def test_the_schema_documents_the_history_operations(api):
    paths = api.get("/api/schema/?format=json").json()["paths"]
    events = paths["/api/v1/registry/models/{name}/events"]["get"]
    listed = {p["name"] for p in events["parameters"]}
    assert {"kind", "version", "since", "until", "page"} <= listed
    assert {"200", "400", "404"} <= set(events["responses"])
    at = paths["/api/v1/registry/models/{name}/aliases/at"]["get"]
    assert {"alias", "at", "source"} <= {p["name"] for p in at["parameters"]}


def test_alias_at_in_a_named_source_and_after_the_model_was_deleted(api, pricing):
    other = RegisteredModelFactory(
        name="pricing",
        catalog_model=pricing.catalog_model,
        source__name="discovery",
        source__is_central=False,
        created_upstream_at=T0 - 24 * HOUR,
    )
    RegistryEventFactory(registered_model=other, version=7, observed_at=T0, previously_seen_at=None)
    RegistryEventFactory(
        registered_model=other, kind=RegistryEventKind.MODEL_DELETED, name="", version=None,
        observed_at=T0 + 4 * HOUR, previously_seen_at=T0 + 3 * HOUR,
    )  # fmt: skip

    def ask(at, source=""):
        query = {"alias": "champion", "at": at, **({"source": source} if source else {})}
        response = api.get(f"{API}/models/pricing/aliases/at", query)
        assert response.status_code == 200, response.json()
        return response.json()

    assert (ask("2026-10-03T12:30:00Z")["version"], ask("2026-10-03T12:30Z")["source"]) == (
        1,
        "central",
    )  # the central registration by default
    assert ask("2026-10-03T12:30:00Z", "discovery")["version"] == 7
    assert ask("2026-10-03T15:30:00Z", "discovery")["possible"] == [7, None]
    deleted = ask("2026-10-03T17:00:00Z", "discovery")
    assert deleted["outcome"] == "none" and "was deleted from the registry" in deleted["text"]
    assert ask("2026-10-03T17:00:00Z", "nowhere")["text"] == "not registered in nowhere: no alias"
