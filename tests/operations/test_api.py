"""The operations read and action API: filters (and 400s for bad ones), the episode with its
timeline, durations and evaluation, confirm / decline through the services with their
refusals, signals, policies, a model's summary, the roles on every endpoint, the schema."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from core.roles import Role
from operations.models import (
    Disposition,
    Episode,
    EpisodeState,
    EpisodeStep,
    TriggerMode,
    TriggerPolicy,
)
from operations.services import signal_decide
from pipelines.models import PipelineKind
from tests.operations.factories_pages import (
    PROMOTE_EVALUATION,
    EpisodeFactory,
    SignalFactory,
    event,
)
from tests.pipelines.factories import PipelineFactory
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db
API = "/api/v1/operations/"


@pytest.fixture
def fraud():
    return CatalogModelFactory(name="fraud-detector", kind="ml", team="risk")


@pytest.fixture
def proposal(fraud):
    PipelineFactory(catalog_model=fraud, kind=PipelineKind.TRAINING, name="risk-fraud-train")
    TriggerPolicy.objects.create(catalog_model=fraud, mode=TriggerMode.CONFIRM)
    signal_decide(SignalFactory(catalog_model=fraud, disposition=Disposition.PENDING))
    return Episode.objects.get(state=EpisodeState.PROPOSED)


def test_every_endpoint_needs_a_role(client, make_user, fraud):
    episode = EpisodeFactory(catalog_model=fraud)
    signal = SignalFactory(catalog_model=fraud)
    reads = [
        "episodes/",
        f"episodes/{episode.pk}/",
        "signals/",
        f"signals/{signal.pk}/",
        "policies/",
        "models/fraud-detector/operations",
    ]
    client.force_login(make_user())
    for url in reads:
        assert client.get(API + url).status_code == 403, url
    assert client.post(API + f"episodes/{episode.pk}/confirm").status_code == 403
    for role in Role.values:
        client.force_login(make_user(role))
        for url in reads:
            assert client.get(API + url).status_code == 200, (role, url)


def test_episode_list_filters_and_bad_filters(role_client, fraud):
    stalled = EpisodeFactory(catalog_model=fraud, stalled_reason="Run failed to start")
    other = EpisodeFactory(catalog_model=CatalogModelFactory(name="churn"))
    EpisodeFactory(catalog_model=fraud, state=EpisodeState.CLOSED, outcome="held")
    client = role_client(Role.DATA_SCIENTIST)
    body = client.get(API + "episodes/").json()
    assert body["count"] == 2 and body["results"][0]["id"] == stalled.pk
    assert body["results"][0]["stalled"] is True
    assert [e["id"] for e in client.get(API + "episodes/?model=churn").json()["results"]] == [
        other.pk
    ]
    assert client.get(API + "episodes/?stalled=true").json()["count"] == 1
    assert client.get(API + "episodes/?state=closed").json()["count"] == 1
    assert client.get(API + "episodes/?state=all").json()["count"] == 3
    bad = client.get(API + "episodes/?state=nope&stalled=maybe")
    assert bad.status_code == 400
    assert "state" in bad.json()["detail"] and "stalled" in bad.json()["detail"]
    assert client.get(API + "episodes/?page=9").status_code == 400


def test_episode_detail_has_events_durations_and_evaluation(role_client, fraud):
    t0 = timezone.now() - dt.timedelta(hours=2)
    episode = EpisodeFactory(
        catalog_model=fraud,
        signal_at=t0,
        run_started_at=t0 + dt.timedelta(minutes=3),
        evaluation=PROMOTE_EVALUATION,
    )
    event(episode, EpisodeStep.SIGNAL, "Drift.", at=t0)
    body = role_client(Role.MANAGER).get(API + f"episodes/{episode.pk}/").json()
    assert [e["step"] for e in body["events"]] == ["signal"]
    durations = {d["key"]: d["seconds"] for d in body["durations"]}
    assert durations["signal_to_run_start"] == 180 and durations["training"] is None
    assert body["evaluation"]["challenger"] == 0.912 and body["evaluation"]["verdict"] == "promote"
    assert role_client(Role.MANAGER).get(API + "episodes/999999/").status_code == 404


def test_confirm_and_decline(client, make_user, proposal):
    client.force_login(make_user(Role.MANAGER))
    assert client.post(API + f"episodes/{proposal.pk}/confirm").status_code == 403
    client.force_login(make_user(Role.APPROVER))
    no_reason = client.post(
        API + f"episodes/{proposal.pk}/decline", {"reason": ""}, content_type="application/json"
    )
    assert no_reason.status_code == 400 and "Say why" in no_reason.json()["detail"]
    confirmed = client.post(API + f"episodes/{proposal.pk}/confirm")
    assert confirmed.status_code == 200 and confirmed.json()["state"] == EpisodeState.REQUESTED
    again = client.post(
        API + f"episodes/{proposal.pk}/decline", {"reason": "x"}, content_type="application/json"
    )
    assert again.status_code == 409 and again.json()["code"] == "not_proposed"
    assert client.post(API + "episodes/999999/confirm").status_code == 404


def test_decline_closes_the_proposal(client, make_user, proposal):
    client.force_login(make_user(Role.DATA_SCIENTIST))
    response = client.post(
        API + f"episodes/{proposal.pk}/decline",
        {"reason": "Data outage"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["state"] == "closed" and response.json()["outcome"] == "declined"


def test_signals_filters_detail_and_unmatched(role_client, fraud):
    unmatched = SignalFactory(catalog_model=None, disposition=Disposition.UNMATCHED)
    matched = SignalFactory(catalog_model=fraud, kind="data_arrival")
    client = role_client(Role.APPROVER)
    assert [s["id"] for s in client.get(API + "signals/?unmatched=true").json()["results"]] == [
        unmatched.pk
    ]
    assert [s["id"] for s in client.get(API + "signals/?kind=data_arrival").json()["results"]] == [
        matched.pk
    ]
    assert client.get(API + "signals/?model=fraud-detector").json()["count"] == 1
    assert client.get(API + "signals/?disposition=unmatched").json()["count"] == 1
    assert client.get(API + "signals/?kind=bogus").status_code == 400
    detail = client.get(API + f"signals/{matched.pk}/").json()
    assert detail["model"] == "fraud-detector" and "body" in detail["raw"]
    assert isinstance(detail["rule_suggestions"], list)
    assert client.get(API + "signals/999999/").status_code == 404


def test_policies_and_model_summary(role_client, fraud):
    TriggerPolicy.objects.create(catalog_model=fraud, mode=TriggerMode.AUTOMATIC)
    CatalogModelFactory(name="churn")
    SignalFactory(catalog_model=fraud)
    client = role_client(Role.MANAGER)
    policies = {p["model"]: p["policy"] for p in client.get(API + "policies/").json()}
    assert policies["fraud-detector"]["mode"] == "automatic"
    assert policies["churn"]["scope"] == "Built-in default"
    assert len(client.get(API + "policies/?model=churn").json()) == 1
    assert client.get(API + "policies/?model=nope").status_code == 404
    summary = client.get(API + "models/fraud-detector/operations").json()
    assert summary["signals_total"] == 1 and summary["policy"]["mode"] == "automatic"
    assert sum(w["signals"] for w in summary["weeks"]) == 1
    assert client.get(API + "models/nope/operations").status_code == 404


def test_the_schema_documents_the_endpoints(role_client):
    schema = role_client(Role.ADMIN).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/operations/episodes/", "/api/v1/operations/models/{name}/operations"):
        assert path in text
