"""The data scientist's home: their team's models and what runs now, from the mirror."""

import pytest
from bs4 import BeautifulSoup

from core.roles import Role
from pipelines.models import PipelineKind, RunResult, RunState
from tests.pipelines.factories import PipelineFactory, PipelineRunFactory
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db


def _card(client, key):
    soup = BeautifulSoup(client.get("/").content, "html.parser")
    return soup.select_one(f"[data-card={key}]")


@pytest.fixture
def dana(make_user, client):
    user = make_user(Role.DATA_SCIENTIST, username="dana", email="dana@example.com")
    client.force_login(user)
    return client


@pytest.fixture
def teams():
    """Dana owns fraud (risk) and an unfiled model; scoring is risk's too, churn is growth's."""
    fraud = RegisteredModelFactory(
        name="fraud-detector",
        catalog_model__registry_team="risk",
        catalog_model__owners=["Dana@Example.com"],  # typed by hand: any case
    )
    for number in (1, 2, 3):
        ModelVersionFactory(registered_model=fraud, version=number)
    scoring = CatalogModelFactory(name="credit-scoring", team="risk", owners=["nora@example.com"])
    churn = CatalogModelFactory(name="churn-predictor", team="growth", owners=["lena@example.com"])
    unfiled = CatalogModelFactory(name="sandbox-model", owners=["dana"])  # by user name
    CatalogModelFactory(name="xdana-model", owners=["xdana@example.com"])  # not dana
    return {"fraud": fraud.catalog_model, "scoring": scoring, "churn": churn, "unfiled": unfiled}


@pytest.mark.sqlite
def test_team_models_are_those_of_the_teams_whose_models_the_user_owns(dana, teams):
    card = _card(dana, "team-models")
    rows = {li["data-model"]: li for li in card.select("li[data-model]")}
    assert list(rows) == ["credit-scoring", "fraud-detector", "sandbox-model"]
    fraud = rows["fraud-detector"]
    assert fraud.select_one("a")["href"] == "/registry/models/fraud-detector/"
    latest = fraud.select_one("a[data-testid=latest-version]")
    assert latest.get_text(strip=True) == "v3 (latest)"  # no @champion: the latest, said so
    assert latest["href"].endswith("/models/fraud-detector/versions/3/")
    assert "risk" in card.get_text(" ", strip=True)  # says which team it took
    assert card.select_one(".card-footer a")["href"] == "/registry/models/?team=risk"
    assert not card.select(".empty-state")


@pytest.mark.sqlite
def test_running_now_lists_the_runs_in_progress_of_the_team_models(dana, teams):
    training = PipelineFactory(catalog_model=teams["fraud"], kind=PipelineKind.TRAINING)
    running = PipelineRunFactory(
        pipeline=training, state=RunState.IN_PROGRESS, result=RunResult.NONE, name="20261201.1"
    )
    PipelineRunFactory(pipeline=training)  # completed: not running
    other = PipelineFactory(catalog_model=teams["churn"], kind=PipelineKind.TRAINING)
    PipelineRunFactory(pipeline=other, state=RunState.IN_PROGRESS, result=RunResult.NONE)
    card = _card(dana, "pipelines-running")
    rows = card.select("li[data-run]")
    assert [li["data-run"] for li in rows] == [str(running.pk)]
    assert rows[0].select_one("a")["href"] == f"/pipelines/runs/{running.pk}/"
    text = rows[0].get_text(" ", strip=True)
    assert "fraud-detector" in text and "Training" in text and "#20261201.1" in text
    assert card.select_one(".card-footer a")["href"] == "/pipelines/?state=running"


def test_without_owned_models_the_cards_say_why_and_show_every_team_running(dana):
    CatalogModelFactory(name="churn-predictor", team="growth", owners=["lena@example.com"])
    pipeline = PipelineFactory(catalog_model__name="demand-forecast", kind=PipelineKind.TRAINING)
    run = PipelineRunFactory(pipeline=pipeline, state=RunState.IN_PROGRESS, result=RunResult.NONE)
    team = _card(dana, "team-models").get_text(" ", strip=True)
    assert "registry source is synced" not in team
    assert "owner" in team and "dana@example.com" in team
    running = _card(dana, "pipelines-running")
    assert [li["data-run"] for li in running.select("li[data-run]")] == [str(run.pk)]
    assert "every team" in running.get_text(" ", strip=True).lower()


def test_with_nothing_running_the_card_says_so(dana, teams):
    text = _card(dana, "pipelines-running").get_text(" ", strip=True)
    assert "No pipeline run of your team's models is running" in text
