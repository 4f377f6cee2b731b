"""The model page's versions table (description, tags, source run) and the compare view's
rows for them (mlflow#4807, #2645), on the page and in the API."""

import datetime as dt

import pytest
from bs4 import BeautifulSoup
from django.utils import timezone

from core.roles import Role
from tests.registry.factories import (
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db

NAME = "fraud-detector"
LONG = "Retrained on the March cards data with the new merchant features; " * 3


@pytest.fixture
def client_ds(role_client):
    return role_client(Role.DATA_SCIENTIST)


@pytest.fixture
def versions():
    source = RegistrySourceFactory(name="central", is_central=True, ui_url="https://mlflow.example")
    rm = RegisteredModelFactory(name=NAME, source=source, aliases={"champion": 1})
    now = timezone.now()
    one = ModelVersionFactory(
        registered_model=rm,
        version=1,
        description=LONG,
        tags={
            "mlflow.source.type": "JOB",
            "validation": "passed",
            "data.snapshot": "2026-03-01",
            "approved_by": "nora",
            "owner": "risk",
        },
        run_id="a" * 32,
        experiment_id="7",
        run_tags={"mlflow.runName": "brave-owl-42", "git.commit": "abc123", "mlflow.user": "dana"},
        params={"max_depth": "6"},
        created_upstream_at=now - dt.timedelta(days=2),
    )
    two = ModelVersionFactory(
        registered_model=rm,
        version=2,
        description="",
        tags={"validation": "failed"},
        run_id="b" * 32,
        experiment_id="7",
        run_tags={"git.commit": "def456", "mlflow.user": "dana"},
        params={"max_depth": "6"},
        created_upstream_at=now - dt.timedelta(days=1),
    )
    return one, two


def _rows(client):
    soup = BeautifulSoup(client.get(f"/registry/models/{NAME}/").content, "html.parser")
    return {tr["data-version"]: tr for tr in soup.select("[data-testid=versions-table] tbody tr")}


def test_the_versions_table_shows_description_tags_and_source_run(client_ds, versions):
    rows = _rows(client_ds)
    one = rows["central:1"]
    description = one.select_one("td[data-column=Description] .version-description")
    assert description["title"] == LONG  # the whole of it on hover
    assert len(description.get_text(strip=True)) <= 60
    chips = one.select("td[data-column=Tags] [data-tag]")
    # people's and pipelines' tags by key first, MLflow's own last; three shown, then "+N"
    assert [c["data-tag"] for c in chips] == ["approved_by", "data.snapshot", "owner"]
    assert chips[0].get_text() == "approved_by=nora" and chips[0]["title"] == "approved_by=nora"
    more = one.select_one("[data-testid=more-tags]")
    assert more.get_text() == "+2"
    assert more["title"] == "validation=passed, mlflow.source.type=JOB"
    run = one.select_one("[data-testid=source-run]")
    assert run["href"] == f"https://mlflow.example/#/experiments/7/runs/{'a' * 32}"
    assert run.get_text(" ", strip=True).startswith("brave-owl-42")  # the run's name
    two = rows["central:2"]
    assert two.select_one("td[data-column=Description]").get_text(strip=True) == "—"
    assert two.select_one("[data-testid=more-tags]") is None
    assert (
        two.select_one("[data-testid=source-run]")
        .get_text(" ", strip=True)
        .startswith(
            "bbbbbbbb"  # no run name: the id's first 8
        )
    )


def test_without_an_mlflow_ui_the_run_is_named_not_linked(client_ds):
    rm = RegisteredModelFactory(name="plain")
    ModelVersionFactory(registered_model=rm, version=1, run_id="c" * 32, experiment_id="")
    soup = BeautifulSoup(client_ds.get("/registry/models/plain/").content, "html.parser")
    run = soup.select_one("[data-testid=source-run]")
    assert run.name == "span" and run.get_text() == "cccccccc"
    assert "c" * 32 in run["title"]


def test_compare_rows_for_description_source_run_and_tags(client_ds, versions):
    response = client_ds.get(f"/registry/models/{NAME}/compare/?v=central:1&v=central:2")
    assert response.status_code == 200
    soup = BeautifulSoup(response.content, "html.parser")
    description = soup.select_one('tr[data-about="description"]')
    assert description["data-differs"] == "true"
    assert [td.get_text(strip=True) for td in description.select("td")][1] == "—"
    run = soup.select_one('tr[data-about="source run"]')
    assert [td.get_text(strip=True) for td in run.select("td")] == [
        f"brave-owl-42 ({'a' * 8})",
        "b" * 32,
    ]
    validation = soup.select_one('tr[data-tag="validation"]')
    assert validation["data-differs"] == "true"
    assert [td.get_text(strip=True) for td in validation.select("td")] == ["passed", "failed"]
    tag_names = [tr["data-tag"] for tr in soup.select("tr[data-tag]")]
    assert tag_names[-1] == "mlflow.source.type"  # MLflow's own last
    commit = soup.select_one('tr[data-run-tag="git.commit"]')
    assert commit["data-differs"] == "true"
    user = soup.select_one('tr[data-run-tag="mlflow.user"]')
    assert user.get("data-differs") is None  # the same: not highlighted
    assert soup.select_one('tr[data-param="max_depth"]').get("data-differs") is None
    groups = soup.select_one("[data-testid=group-tag]").get_text(" ", strip=True)
    assert groups == "Version tags (5, 5 differ)"  # v2 has only validation, and another value


def test_the_compare_api_has_the_same_rows(role_client, versions):
    api = role_client(Role.APPROVER)
    data = api.get(f"/api/v1/registry/models/{NAME}/compare/?v=central:1&v=central:2").json()
    about = {row["name"]: row for row in data["about"]}
    assert about["description"] == {"name": "description", "values": [LONG, None], "differs": True}
    assert about["source run"]["values"] == [f"brave-owl-42 ({'a' * 8})", "b" * 32]
    tags = {row["name"]: row for row in data["tags"]}
    assert tags["validation"] == {
        "name": "validation",
        "values": ["passed", "failed"],
        "differs": True,
    }
    run_tags = {row["name"]: row for row in data["run_tags"]}
    assert run_tags["mlflow.user"]["differs"] is False
