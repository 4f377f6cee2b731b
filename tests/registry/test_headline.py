"""The headline alias: a model's own, else its team's, else REGISTRY_HEADLINE_ALIAS; without
it on any version, the latest version, said so. On the list, the model page, the home card
and in the API; set in the catalog edit form, the team page and the admin."""

import pytest
from bs4 import BeautifulSoup

from core.roles import Role
from registry.models import CatalogModel, TeamPreference
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db

LIST = "/registry/models/"
TEAMS = "/registry/catalog/teams/"


def _soup(response):
    return BeautifulSoup(response.content, "html.parser")


def _model(name, aliases, *, team="risk", versions=3, **catalog):
    source = RegistrySourceFactory(name="central", is_central=True)
    rm = RegisteredModelFactory(
        name=name,
        source=source,
        aliases=aliases,
        catalog_model__registry_team=team,
        **{f"catalog_model__{k}": v for k, v in catalog.items()},
    )
    for number in range(1, versions + 1):
        ModelVersionFactory(registered_model=rm, version=number)
    return rm.catalog_model


def _list_cells(client, query=""):
    soup = _soup(client.get(LIST + query))
    header = soup.select("[data-testid=model-table] th")[4].get_text(" ", strip=True)
    cells = {
        tr["data-model"]: tr.select_one("td[data-column=Headline]")
        for tr in soup.select("tr[data-model]")
    }
    return header, cells


@pytest.fixture
def client_ds(role_client):
    return role_client(Role.DATA_SCIENTIST)


def test_the_list_headlines_the_champion_and_says_when_it_is_the_latest(client_ds):
    _model("fraud", {"champion": 2, "challenger": 3})
    _model("churn", {}, team="growth")
    header, cells = _list_cells(client_ds)
    assert header == "@champion version"
    assert cells["fraud"].a.get_text() == "v2" and cells["fraud"].a["data-headline"] == "champion"
    assert cells["fraud"].a["href"].endswith("/models/fraud/versions/2/")
    assert cells["churn"].a.get_text() == "v3" and cells["churn"].a["data-headline"] == "latest"
    assert "latest" in cells["churn"].get_text(" ", strip=True)
    assert "No version carries @champion" in cells["churn"].a["title"]


def test_the_default_alias_is_a_setting(client_ds, settings):
    settings.REGISTRY_HEADLINE_ALIAS = "production"
    _model("fraud", {"champion": 2, "production": 1})
    header, cells = _list_cells(client_ds)
    assert header == "@production version" and cells["fraud"].a.get_text() == "v1"


def test_a_team_choice_then_a_model_choice_win(client_ds):
    _model("fraud", {"champion": 2, "prod": 1})
    _model("scoring", {"champion": 2, "prod": 1, "blessed": 3}, headline_alias="blessed")
    _model("churn", {"champion": 2, "prod": 1}, team="growth")
    TeamPreference.objects.create(team="RISK", headline_alias="prod")  # any case
    header, cells = _list_cells(client_ds)
    assert header == "Headline version"  # the rows headline different aliases
    assert cells["fraud"].a.get_text() == "v1" and "@prod" in cells["fraud"].get_text()
    assert cells["scoring"].a.get_text() == "v3" and "@blessed" in cells["scoring"].get_text()
    assert cells["churn"].a.get_text() == "v2" and "@champion" in cells["churn"].get_text()
    assert "its team's choice" in cells["fraud"].a["title"]
    assert "this model's choice" in cells["scoring"].a["title"]


def test_the_model_page_header_shows_the_headline(client_ds):
    _model("fraud", {"champion": 2})
    _model("churn", {}, team="growth")
    headline = _soup(client_ds.get("/registry/models/fraud/")).select_one("[data-testid=headline]")
    assert headline["data-alias"] == "champion" and headline["data-fallback"] == "false"
    assert headline.get_text(" ", strip=True) == "@champion v2"
    headline = _soup(client_ds.get("/registry/models/churn/")).select_one("[data-testid=headline]")
    assert headline["data-fallback"] == "true"
    assert headline.get_text(" ", strip=True) == "Latest version v3 · no version carries @champion"


def test_the_home_card_shows_the_headline(make_user, client):
    user = make_user(Role.DATA_SCIENTIST, username="dana", email="dana@example.com")
    client.force_login(user)
    _model("fraud", {"champion": 2}, owners=["dana@example.com"])
    _model("scoring", {}, owners=["dana@example.com"])
    card = _soup(client.get("/")).select_one("[data-card=team-models]")
    links = {
        li["data-model"]: li.select_one("[data-testid=latest-version]").get_text(strip=True)
        for li in card.select("li[data-model]")
    }
    assert links == {"fraud": "@champion v2", "scoring": "v3 (latest)"}


def test_the_api_names_the_headline(role_client):
    _model("fraud", {"champion": 2, "prod": 1})
    TeamPreference.objects.create(team="risk", headline_alias="prod")
    api = role_client(Role.APPROVER)
    row = api.get("/api/v1/registry/models/").json()["results"][0]
    assert row["headline_alias"] == "prod"
    assert row["headline_version"] == {
        "source": "central",
        "model": "fraud",
        "version": 1,
        "alias": "prod",
        "fallback": False,
    }
    detail = api.get("/api/v1/registry/models/fraud/").json()
    assert detail["headline_alias"] == "prod" and detail["headline_rule"] == "team"
    assert detail["headline_version"]["version"] == 1
    TeamPreference.objects.filter(team="risk").update(headline_alias="gone")
    detail = api.get("/api/v1/registry/models/fraud/").json()
    assert detail["headline_version"] == {
        "source": "central",
        "model": "fraud",
        "version": 3,
        "alias": None,
        "fallback": True,
    }


# --- choosing it -----------------------------------------------------------------------------


def _edit(client, name, headline_alias):
    return client.post(
        f"/registry/models/{name}/edit/",
        {
            "description": "",
            "kind": "",
            "serving": "",
            "team": "",
            "owners": "",
            "headline_alias": headline_alias,
        },
    )


def test_editors_set_a_model_headline_alias_in_the_edit_form(client_ds):
    _model("fraud", {"champion": 2, "prod": 1})
    form = _soup(client_ds.get("/registry/models/fraud/edit/"))
    assert form.select_one("input[name=headline_alias]") is not None
    assert _edit(client_ds, "fraud", "@prod").status_code == 302
    assert CatalogModel.objects.get(name="fraud").headline_alias == "prod"
    response = _edit(client_ds, "fraud", "v3")
    assert response.status_code == 400
    error = _soup(response).select_one("[data-field=headline_alias]").get_text(strip=True)
    assert "not an MLflow alias" in error
    response = _edit(client_ds, "fraud", "latest")
    assert response.status_code == 400 and "Leave it blank" in response.content.decode()
    assert CatalogModel.objects.get(name="fraud").headline_alias == "prod"


def test_managers_set_a_team_headline_alias(role_client):
    _model("fraud", {"champion": 2, "prod": 1})
    _model("churn", {}, team="growth")
    manager = role_client(Role.MANAGER)
    page = _soup(manager.get(TEAMS))
    assert [tr["data-team"] for tr in page.select("tr[data-team]")] == ["growth", "risk"]
    assert "@champion" in page.select_one("[data-testid=headline-rule]").get_text()
    response = manager.post(TEAMS, {"team": "risk", "headline_alias": "prod"})
    assert response.status_code == 302
    assert TeamPreference.objects.get(team="risk").headline_alias == "prod"
    row = _soup(manager.get(TEAMS)).select_one('tr[data-team="risk"]')
    assert row.select_one("input[name=headline_alias]")["value"] == "prod"
    # the same team in another case is the same row; blank goes back to the default
    assert manager.post(TEAMS, {"team": "Risk", "headline_alias": ""}).status_code == 302
    assert TeamPreference.objects.count() == 1
    assert TeamPreference.objects.get().headline_alias == ""


def test_a_bad_team_alias_is_a_400_with_a_message(role_client):
    _model("fraud", {"champion": 2})
    manager = role_client(Role.MANAGER)
    response = manager.post(TEAMS, {"team": "risk", "headline_alias": "not an alias!"})
    assert response.status_code == 400
    message = _soup(response).select_one("[data-testid=preference-error]").get_text(strip=True)
    assert "is not an MLflow alias" in message
    response = manager.post(TEAMS, {"team": "", "headline_alias": "prod"})
    assert response.status_code == 400 and "Name a team" in response.content.decode()
    assert not TeamPreference.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.ADMIN, 200), (Role.MANAGER, 200), (Role.DATA_SCIENTIST, 403), (Role.APPROVER, 403)],
)
def test_only_managers_and_admins_reach_the_team_page(role_client, role, status):
    client = role_client(role)
    assert client.get(TEAMS).status_code == status
    link = _soup(client.get(LIST)).select_one("[data-testid=team-preferences-link]")
    assert (link is not None) == (status == 200)


def test_the_team_page_says_what_will_appear_without_teams(role_client):
    CatalogModelFactory(name="unfiled")
    soup = _soup(role_client(Role.ADMIN).get(TEAMS))
    assert "Teams appear here once" in soup.select_one("[data-testid=no-teams]").get_text()


def test_the_admin_edits_team_preferences_with_the_same_rule(admin_client):
    response = admin_client.post(
        "/admin/registry/teampreference/add/", {"team": "risk", "headline_alias": "@prod"}
    )
    assert response.status_code == 302
    assert TeamPreference.objects.get().headline_alias == "prod"
    response = admin_client.post(
        "/admin/registry/teampreference/add/", {"team": "growth", "headline_alias": "v2"}
    )
    assert response.status_code == 200 and "not an MLflow alias" in response.content.decode()
