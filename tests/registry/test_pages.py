"""The registry pages: model list, model page, version page, compare, catalog edits, banner."""

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from registry.models import CatalogModel
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db

LIST = "/registry/models/"
UC_NAME = "main.risk.fraud_detector"


def _soup(response):
    return BeautifulSoup(response.content, "html.parser")


def _rows(response):
    return [tr["data-model"] for tr in _soup(response).select("tr[data-model]")]


def _count(response):
    return _soup(response).select_one("[data-testid=model-count]").get_text(strip=True)


@pytest.fixture
def client_ds(role_client):
    return role_client(Role.DATA_SCIENTIST)


@pytest.fixture
def fraud():
    """A Unity Catalog style model with three versions, aliases, tags and metrics."""
    source = RegistrySourceFactory(name="central", is_central=True, ui_url="https://mlflow.example")
    rm = RegisteredModelFactory(
        name=UC_NAME,
        source=source,
        aliases={"champion": 2, "challenger": 3},
        tags={"data.domain": "cards", "key_metric": "auc"},
        catalog_model__owners=["dana@example.com"],
        catalog_model__description="Scores card transactions.",
    )
    now = timezone.now()
    for number, auc, rmse, depth in [
        (1, 0.80, 0.50, "6"),
        (2, 0.90, 0.40, "8"),
        (3, 0.85, 0.45, "8"),
    ]:
        ModelVersionFactory(
            registered_model=rm,
            version=number,
            metrics={"auc": auc, "rmse": rmse},
            params={"max_depth": depth, "lr": "0.1"},
            aliases=[a for a, v in rm.aliases.items() if v == number],
            created_upstream_at=now - dt.timedelta(days=10 - number),
            experiment_id="4",
            run_id=f"run{number}",
        )
    return rm


# --- model list ------------------------------------------------------------------------------


def test_the_model_list_shows_the_catalog_with_its_columns(client_ds, fraud, settings):
    settings.REGISTRY_CATALOG_LIST_ANNOTATORS = []  # the registry alone: its placeholders
    CatalogModelFactory(name="credit-limit-rules", kind="rule_based", serving="batch")
    response = client_ds.get(LIST)
    assert response.status_code == 200
    soup = _soup(response)
    headers = [th.get_text(" ", strip=True) for th in soup.select("[data-testid=model-table] th")]
    assert headers == [
        "Name",
        "Kind",
        "Serving",
        "Team",
        "@champion version",  # the headline alias (REGISTRY_HEADLINE_ALIAS), not "latest"
        "Aliases",
        "In QA",
        "In PROD",
        "Maturity",
        "Last updated",
    ]
    assert _count(response) == "2 models"
    row = soup.select_one(f'tr[data-model="{UC_NAME}"]')
    cells = [td.get_text(" ", strip=True) for td in row.select("td")]
    assert row.select_one("td a").get_text() == UC_NAME  # <wbr> after dots, no spaces
    assert cells[1:5] == ["ML model", "Batch", "risk", "v2"]  # @champion, not the latest v3
    assert "@challenger → v3" in cells[5] and "@champion → v2" in cells[5]
    assert cells[6:9] == ["—", "—", "—"]
    assert row.select("td")[6].span["title"] == "Filled once pipelines are synced"
    assert row.select_one("time")["title"].endswith("UTC")
    version_link = row.select("td")[4].a["href"]
    assert version_link == f"/registry/sources/central/models/{UC_NAME}/versions/2/"
    rules = soup.select_one('tr[data-model="credit-limit-rules"]')
    assert "not registered" in rules.get_text()
    assert "unknown" in rules.select("td")[3].get_text()  # no team anywhere
    assert soup.select_one(".as-of") is not None
    nav = [a.get_text(strip=True) for a in soup.select("#portal-nav .nav-link")]
    assert "Models" in nav


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_the_model_list_and_only_editors_may_add(role, role_client, fraud):
    soup = _soup(role_client(role).get(LIST))
    can_add = bool(soup.find("a", href=reverse("registry:model-create")))
    assert can_add == (role in (Role.ADMIN, Role.DATA_SCIENTIST))


@pytest.fixture
def catalog():
    """Models that differ in every filtered attribute."""
    dd = RegistrySourceFactory(name="data-discovery")
    a = RegisteredModelFactory(
        name="alpha",
        tags={"data.domain": "cards", "owner": "x"},
        aliases={"champion": 1},
        catalog_model__registry_team="risk",
    )
    ModelVersionFactory(registered_model=a, version=1)
    RegisteredModelFactory(
        name="bravo",
        source=dd,
        aliases={"challenger": 1},
        catalog_model__registry_team="growth",
        catalog_model__registry_serving="real_time",
    )
    CatalogModelFactory(name="charlie-rules", kind="rule_based", team="operations")
    RegisteredModelFactory(name="delta-gone", deleted_upstream_at=timezone.now())


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["alpha", "bravo", "charlie-rules"]),
        ("q=ALP", ["alpha"]),
        ("source=data-discovery", ["bravo"]),
        ("kind=ml", ["alpha", "bravo"]),
        ("kind=rule_based", ["charlie-rules"]),
        ("serving=real_time", ["bravo"]),
        ("serving=unknown", ["charlie-rules"]),
        ("team=Growth", ["bravo"]),
        ("registered=yes", ["alpha", "bravo"]),
        ("registered=no", ["charlie-rules"]),
        ("alias=*", ["alpha", "bravo"]),
        ("alias=champion", ["alpha"]),
        ("tag=data.domain%3Dcards", ["alpha"]),
        ("tag=owner", ["alpha"]),
        ("tag=owner%3Dy", []),
        ("tag=owner%3Dx", ["alpha"]),
        ("include_deleted=1", ["alpha", "bravo", "charlie-rules", "delta-gone"]),
        ("include_deleted=1&q=delta", ["delta-gone"]),
        ("q=delta", []),
        ("kind=ml&team=risk", ["alpha"]),
    ],
)
def test_model_list_filters(client_ds, catalog, query, expected):
    response = client_ds.get(f"{LIST}?{query}")
    assert response.status_code == 200
    assert _rows(response) == expected
    assert _count(response) == f"{len(expected)} model{'' if len(expected) == 1 else 's'}"


def test_filters_keep_their_state_in_the_form(client_ds, catalog):
    soup = _soup(client_ds.get(f"{LIST}?q=al&kind=ml&team=risk&alias=champion&tag=a.b%3Dc"))
    form = soup.select_one("[data-testid=model-filters]")
    assert form.select_one("#id_q")["value"] == "al"
    assert form.select_one("#id_kind option[selected]")["value"] == "ml"
    assert form.select_one("#id_team option[selected]")["value"] == "risk"
    assert form.select_one("#id_alias option[selected]")["value"] == "champion"
    assert form.select_one("#id_tag")["value"] == "a.b=c"
    assert form["method"] == "get" and form["hx-push-url"] == "true"


def test_a_deleted_entry_is_marked_when_shown(client_ds, catalog):
    soup = _soup(client_ds.get(f"{LIST}?include_deleted=1"))
    assert "deleted upstream" in soup.select_one('tr[data-model="delta-gone"]').get_text()
    assert "deleted upstream" not in soup.select_one('tr[data-model="alpha"]').get_text()


def test_invalid_filters_are_reported_not_a_crash(client_ds, catalog):
    response = client_ds.get(f"{LIST}?kind=robot&sort=nope&page=zzz")
    assert response.status_code == 200
    assert "not understood" in response.content.decode()
    assert _rows(response) == ["alpha", "bravo", "charlie-rules"]


def test_sortable_headers_toggle_and_keep_filters(client_ds, catalog):
    response = client_ds.get(f"{LIST}?kind=ml&sort=name&page=1")
    soup = _soup(response)
    links = {a.get_text(strip=True): a["href"] for a in soup.select("th a.sort-link")}
    assert set(links) == {"Name", "Team", "@champion version", "Last updated"}
    name_params = parse_qs(urlsplit(links["Name"]).query)
    assert name_params == {"kind": ["ml"], "sort": ["-name"]}  # toggles, drops the page
    assert parse_qs(urlsplit(links["Team"]).query)["sort"] == ["team"]
    assert parse_qs(urlsplit(links["Last updated"]).query)["sort"] == ["-updated"]  # newest first
    assert parse_qs(urlsplit(links["@champion version"]).query)["sort"] == ["-version"]
    assert soup.find("th", attrs={"aria-sort": "ascending"}).get_text(strip=True) == "Name"
    response = client_ds.get(f"{LIST}{links['Name']}")
    assert _rows(response) == ["bravo", "alpha"]
    assert _soup(response).find("th", attrs={"aria-sort": "descending"}) is not None


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["alpha", "bravo", "charlie-rules"]),
        ("-name", ["charlie-rules", "bravo", "alpha"]),
        ("team", ["bravo", "charlie-rules", "alpha"]),
        ("-version", ["alpha", "bravo", "charlie-rules"]),
    ],
)
def test_model_list_sorts(client_ds, catalog, sort, expected):
    assert _rows(client_ds.get(f"{LIST}?sort={sort}")) == expected


@pytest.fixture
def sixty_models():
    central = RegistrySourceFactory(name="central", is_central=True)
    dd = RegistrySourceFactory(name="dd")
    for i in range(60):
        rm = RegisteredModelFactory(
            name=f"model-{i:02d}",
            source=central if i % 2 else dd,
            aliases={"champion": 2} if i % 3 == 0 else {},
            tags={"team": "risk"},
        )
        ModelVersionFactory(registered_model=rm, version=1)
        ModelVersionFactory(registered_model=rm, version=2)
        if i % 5 == 0:  # a second registration in another source
            other = dd if rm.source == central else central
            RegisteredModelFactory(
                name=f"alt.model-{i:02d}", source=other, catalog_model=rm.catalog_model
            )


def test_pagination_counts_fifty_per_page(client_ds, sixty_models):
    first = client_ds.get(LIST)
    assert _count(first) == "60 models"
    assert len(_rows(first)) == 50
    nav = _soup(first).select_one('nav[aria-label="Model list pages"]').get_text(" ", strip=True)
    assert "Showing 1\u201350 of 60" in nav and "Page 1 of 2" in nav
    second = client_ds.get(f"{LIST}?page=2&sort=-name")
    assert len(_rows(second)) == 10
    assert _rows(second)[0] == "model-09"
    next_link = _soup(first).find("a", rel="next")["href"]
    assert parse_qs(urlsplit(next_link).query)["page"] == ["2"]


def test_the_model_list_query_count_does_not_grow_with_models(
    client_ds, sixty_models, django_assert_max_num_queries
):
    client_ds.get(LIST)  # warm the session and role caches
    # 12, and 1 for the teams' headline aliases (TeamPreference), whatever the number of rows
    with django_assert_max_num_queries(13):
        response = client_ds.get(f"{LIST}?alias=*&sort=-version")
    assert response.status_code == 200
    with django_assert_max_num_queries(13):
        client_ds.get(f"{LIST}?tag=team%3Drisk&page=2&include_deleted=1")


def test_htmx_requests_get_only_the_results(client_ds, catalog):
    response = client_ds.get(
        f"{LIST}?kind=ml", headers={"HX-Request": "true", "HX-Target": "model-results"}
    )
    html = response.content.decode()
    assert "<html" not in html and 'data-testid="model-table"' in html
    assert _rows(response) == ["alpha", "bravo"]
    assert "HX-Request" in response["Vary"]
    # a history restore needs the whole page
    restore = client_ds.get(
        f"{LIST}?kind=ml",
        headers={
            "HX-Request": "true",
            "HX-Target": "model-results",
            "HX-History-Restore-Request": "true",
        },
    )
    assert "<html" in restore.content.decode()


def test_empty_states_say_why(client_ds):
    soup = _soup(client_ds.get(LIST))
    assert "catalog is empty" in soup.select_one("[data-testid=empty-state]").get_text()
    CatalogModelFactory(name="x")
    soup = _soup(client_ds.get(f"{LIST}?q=nothing"))
    empty = soup.select_one("[data-testid=empty-state]").get_text(" ", strip=True)
    assert "No model matches these filters" in empty and "Clear the filters" in empty


# --- model page ------------------------------------------------------------------------------


def test_the_model_page_of_a_unity_catalog_name(client_ds, fraud):
    url = reverse("registry:model-detail", kwargs={"name": UC_NAME})
    assert url == f"/registry/models/{UC_NAME}/"
    response = client_ds.get(url)
    assert response.status_code == 200
    soup = _soup(response)
    assert soup.select_one("[data-testid=model-name]").get_text(strip=True) == UC_NAME
    badges = soup.select_one("[data-testid=model-badges]").get_text(" ", strip=True)
    assert "ML model" in badges and "Batch" in badges and "risk" in badges
    assert "Scores card transactions." in soup.get_text()
    assert soup.select_one("[data-testid=owners]").get_text(strip=True) == "dana@example.com"
    registered_in = soup.select_one("[data-testid=registered-in]").get_text(" ", strip=True)
    assert "central" in registered_in and UC_NAME in registered_in
    aliases = {
        a.get_text(" ", strip=True): a["href"] for a in soup.select("[data-testid=aliases] a")
    }
    assert aliases["@champion → v2"] == f"/registry/sources/central/models/{UC_NAME}/versions/2/"
    tags = soup.select_one("[data-testid=model-tags]").get_text(" ", strip=True)
    assert "data.domain cards" in tags
    assert soup.select_one("[data-testid=deployment-qa]") is not None
    assert "once Azure DevOps release pipelines are synced" in soup.get_text()
    rows = soup.select("[data-testid=versions-table] tbody tr")
    assert [r["data-version"] for r in rows] == ["central:3", "central:2", "central:1"]
    header = [th.get_text(strip=True) for th in soup.select("[data-testid=versions-table] th")]
    assert "auc" in header  # the tagged key metric
    first = [td.get_text(" ", strip=True) for td in rows[0].select("td")]
    assert first[1:] == [
        "v3",
        "ready",
        "@challenger",
        "dana@example.com",
        first[5],
        "0.85",
        "—",
        "—",
        "—",  # no description
        "—",  # no tags
        "run3 (opens in a new tab)",  # the source run (no run name: the id's first 8)
    ]
    assert rows[0].select_one(".status-badge")["class"][1] == "text-bg-success"
    checkbox = rows[0].select_one("input[name=v]")
    assert checkbox["value"] == "central:3"
    form = soup.select_one("[data-testid=compare-form]")
    assert form["action"] == f"/registry/models/{UC_NAME}/compare/"


@pytest.mark.parametrize("name", ["Fraud Model (EU)", "odd #1 ?50% & more", "ünïcode.model"])
def test_names_with_spaces_and_odd_characters_round_trip(client_ds, name):
    rm = RegisteredModelFactory(name=name)
    ModelVersionFactory(registered_model=rm, version=1)
    ModelVersionFactory(registered_model=rm, version=2)
    url = reverse("registry:model-detail", kwargs={"name": name})
    assert " " not in url and "#" not in url and "?" not in url
    assert client_ds.get(url).status_code == 200
    version = reverse(
        "registry:version-detail", kwargs={"source": "central", "name": name, "version": 1}
    )
    assert client_ds.get(version).status_code == 200
    compare = reverse("registry:model-compare", kwargs={"name": name})
    assert client_ds.get(f"{compare}?v=central:1&v=central:2").status_code == 200
    listed = _soup(client_ds.get(LIST)).select_one("tr[data-model] a")["href"]
    assert client_ds.get(listed).status_code == 200


def test_unknown_models_are_404(client_ds):
    assert client_ds.get("/registry/models/nope/").status_code == 404


def test_versions_are_paginated_twenty_five_per_page(client_ds):
    rm = RegisteredModelFactory(name="big")
    for number in range(1, 31):
        ModelVersionFactory(registered_model=rm, version=number)
    soup = _soup(client_ds.get("/registry/models/big/"))
    assert soup.select_one("[data-testid=version-count]").get_text(strip=True) == "30"
    assert len(soup.select("[data-testid=versions-table] tbody tr")) == 25
    soup = _soup(client_ds.get("/registry/models/big/?page=2"))
    assert [r["data-version"] for r in soup.select("[data-testid=versions-table] tbody tr")] == [
        "central:5",
        "central:4",
        "central:3",
        "central:2",
        "central:1",
    ]


def test_the_model_page_query_count_is_bounded(client_ds, django_assert_max_num_queries):
    rm = RegisteredModelFactory(name="big", aliases={"champion": 3})
    for number in range(1, 41):
        ModelVersionFactory(registered_model=rm, version=number)
    client_ds.get("/registry/models/big/")
    # 10 for the page and pipelines' sections, 1 for approvals' "Waiting for approval",
    # 4 for maturity's section (status, history, criteria) and header badge, 7 for
    # operations' section (weekly signals and episodes, open count, recent episodes, its
    # state row, the policy and the defaults), 3 for the metric chart (the series of every
    # version, the teams' headline aliases, pipelines' PROD marks), 2 for the model card (the
    # card, who may edit it), 1 for the deployment history's summary
    with django_assert_max_num_queries(27):
        client_ds.get("/registry/models/big/")


def test_deleted_versions_are_hidden_unless_asked(client_ds, fraud):
    fraud.versions.filter(version=3).update(deleted_upstream_at=timezone.now())
    soup = _soup(client_ds.get(f"/registry/models/{UC_NAME}/"))
    assert [r["data-version"] for r in soup.select("tbody tr[data-version]")] == [
        "central:2",
        "central:1",
    ]
    soup = _soup(client_ds.get(f"/registry/models/{UC_NAME}/?include_deleted=1"))
    rows = soup.select("tbody tr[data-version]")
    assert rows[0]["data-version"] == "central:3" and "deleted" in rows[0].get_text()


def test_a_model_whose_registrations_all_vanished_says_so(client_ds):
    RegisteredModelFactory(name="gone", deleted_upstream_at=timezone.now())
    soup = _soup(client_ds.get("/registry/models/gone/"))
    assert (
        "deleted from its registry" in soup.select_one("[data-testid=deleted-upstream]").get_text()
    )


def test_a_catalog_entry_that_was_never_registered(client_ds):
    CatalogModelFactory(name="credit-limit-rules", kind="rule_based")
    soup = _soup(client_ds.get("/registry/models/credit-limit-rules/"))
    assert "Not registered." in soup.select_one("[data-testid=not-registered]").get_text()
    assert "catalog-only entry" in soup.select_one("[data-testid=no-versions]").get_text()
    badges = soup.select_one("[data-testid=model-badges]").get_text(" ", strip=True)
    assert "Rule-based" in badges and badges.count("unknown") == 2  # serving and team


@pytest.mark.parametrize("role", list(Role))
def test_the_edit_link_is_for_admins_and_data_scientists(role, role_client, fraud):
    soup = _soup(role_client(role).get(f"/registry/models/{UC_NAME}/"))
    has_link = soup.select_one("[data-testid=edit-link]") is not None
    assert has_link == (role in (Role.ADMIN, Role.DATA_SCIENTIST))


# --- version page ----------------------------------------------------------------------------


def test_the_version_page(client_ds, fraud):
    fraud.versions.filter(version=2).update(
        tags={"validated": "true"},
        run_tags={"mlflow.user": "dana"},
        stage="Production",
        source_uri="models:/m-abc",
    )
    url = reverse(
        "registry:version-detail", kwargs={"source": "central", "name": UC_NAME, "version": 2}
    )
    response = client_ds.get(url)
    assert response.status_code == 200
    soup = _soup(response)
    title = " ".join(soup.select_one("[data-testid=version-title]").get_text().split())
    assert title == f"{UC_NAME} v2"
    text = soup.get_text(" ", strip=True)
    assert "@champion" in text and "stage: Production" in text and "models:/m-abc" in text
    run_link = soup.select_one("[data-testid=mlflow-run-link]")["href"]
    assert run_link == "https://mlflow.example/#/experiments/4/runs/run2"
    metrics = soup.select_one("[data-testid=metrics-table]").get_text(" ", strip=True)
    assert "auc 0.9" in metrics and "rmse 0.4" in metrics
    assert "max_depth 8" in soup.select_one("[data-testid=params-table]").get_text(" ", strip=True)
    assert "validated true" in soup.select_one("[data-testid=version-tags]").get_text(
        " ", strip=True
    )
    assert "mlflow.user dana" in soup.select_one("[data-testid=run-tags]").get_text(" ", strip=True)
    assert soup.select_one("[data-testid=author]").get_text(strip=True) == "dana@example.com"
    assert all(t["title"].endswith("UTC") for t in soup.select(".version-facts time"))
    compare = soup.select_one("[data-testid=compare-with]")
    assert compare["action"] == f"/registry/models/{UC_NAME}/compare/"
    assert compare.select_one("input[type=hidden]")["value"] == "central:2"
    options = [o["value"] for o in compare.select("option") if o["value"]]
    assert options == ["central:3", "central:1"]
    assert soup.select_one("[data-testid=deleted-warning]") is None


def test_the_version_page_without_an_mlflow_ui_or_experiment(client_ds):
    version = ModelVersionFactory(
        registered_model__name="m",
        registered_model__source=RegistrySourceFactory(name="dbx", tracking_uri="databricks"),
        experiment_id="",
        run_link="javascript:alert(1)",
    )
    soup = _soup(client_ds.get(f"/registry/sources/dbx/models/m/versions/{version.version}/"))
    assert soup.select_one("[data-testid=mlflow-run-link]") is None
    assert "javascript:" not in str(soup.select_one(".version-facts"))


def test_a_version_deleted_upstream_carries_a_warning(client_ds, fraud):
    fraud.versions.filter(version=1).update(deleted_upstream_at=timezone.now())
    soup = _soup(client_ds.get(f"/registry/sources/central/models/{UC_NAME}/versions/1/"))
    assert "was deleted from" in soup.select_one("[data-testid=deleted-warning]").get_text()


def test_unknown_versions_are_404(client_ds, fraud):
    assert (
        client_ds.get(f"/registry/sources/central/models/{UC_NAME}/versions/9/").status_code == 404
    )
    assert client_ds.get(f"/registry/sources/other/models/{UC_NAME}/versions/1/").status_code == 404


# --- compare ---------------------------------------------------------------------------------


def _compare(client, *refs, name=UC_NAME):
    query = "&".join(f"v={r}" for r in refs)
    return client.get(f"/registry/models/{name}/compare/?{query}")


def test_compare_shows_deltas_best_values_and_differing_params(client_ds, fraud):
    response = _compare(client_ds, "central:1", "central:2", "central:3")
    assert response.status_code == 200
    soup = _soup(response)
    columns = [th["data-version"] for th in soup.select("th[data-version]")]
    assert columns == ["central:1", "central:2", "central:3"]
    auc = soup.select_one('tr[data-metric="auc"]').select("td")
    assert [c.find(string=True).strip() for c in auc] == ["0.8", "0.9", "0.85"]
    assert auc[0].select_one(".delta") is None  # the baseline
    assert auc[1].select_one(".delta").get_text() == "+0.1"
    assert "delta-better" in auc[1].select_one(".delta")["class"]
    assert [c.get("data-best") for c in auc] == [None, "true", None]
    rmse = soup.select_one('tr[data-metric="rmse"]')
    assert rmse.select_one(".bi-arrow-down") is not None  # lower is better
    cells = rmse.select("td")
    assert cells[1].select_one(".delta").get_text() == "\u22120.1"
    assert "delta-better" in cells[1].select_one(".delta")["class"]
    assert [c.get("data-best") for c in cells] == [None, "true", None]
    assert soup.select_one('tr[data-param="max_depth"]')["data-differs"] == "true"
    assert soup.select_one('tr[data-param="lr"]').get("data-differs") is None
    assert "1 differ" in soup.get_text()
    baselines = [a["href"] for a in soup.select("[data-testid=make-baseline]")]
    assert baselines == [
        "?v=central%3A2&v=central%3A1&v=central%3A3",
        "?v=central%3A3&v=central%3A1&v=central%3A2",
    ]


def test_compare_direction_comes_from_the_setting(client_ds, fraud, settings):
    settings.REGISTRY_LOWER_IS_BETTER = ["auc"]  # pretend lower auc is better
    soup = _soup(_compare(client_ds, "central:1", "central:2"))
    auc = soup.select_one('tr[data-metric="auc"]').select("td")
    assert auc[0].get("data-best") == "true"
    assert "delta-worse" in auc[1].select_one(".delta")["class"]


@pytest.mark.parametrize(
    ("refs", "message"),
    [
        ((), "at least 2"),
        (("central:1",), "at least 2"),
        (("central:1", "central:2", "central:3", "central:1x", "central:9"), "at most 4"),
        (("central:1", "central:9"), "has no version central:9"),
        (("central:1", "elsewhere:2"), "has no version elsewhere:2"),
        (("central:1", "central:one"), "not a version reference"),
        (("central:1", "central:1"), "listed twice"),
    ],
)
def test_compare_refuses_bad_input_with_a_400_page(client_ds, fraud, refs, message):
    response = _compare(client_ds, *refs)
    assert response.status_code == 400
    soup = _soup(response)
    assert message in soup.select_one("[data-testid=compare-error]").get_text()
    assert len(soup.select("input[name=v]")) == 3  # a picker to try again


@pytest.mark.parametrize("refs", [(), ("central:1",)])
def test_too_few_versions_are_explained_without_the_url_format(client_ds, fraud, refs):
    message = _soup(_compare(client_ds, *refs)).select_one("[data-testid=compare-error]")
    text = " ".join(message.get_text().split())
    assert f"Pick at least 2 versions to compare ({len(refs)} picked)" in text
    assert "v=" not in text and "source:version" not in text


def test_compare_does_not_reach_other_models_versions(client_ds, fraud):
    other = RegisteredModelFactory(name="other")
    ModelVersionFactory(registered_model=other, version=7)
    assert _compare(client_ds, "central:1", "central:7").status_code == 400
    assert _compare(client_ds, "central:1", "central:2", name="nope").status_code == 404


# --- catalog edits ---------------------------------------------------------------------------


NEW = "/registry/catalog/new/"


@pytest.mark.parametrize("role", [Role.APPROVER, Role.MANAGER])
def test_only_admins_and_data_scientists_may_create_or_edit(role, role_client, fraud):
    client = role_client(role)
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, {"name": "x"}).status_code == 403
    assert client.post(f"/registry/models/{UC_NAME}/edit/", {"description": "x"}).status_code == 403
    assert not CatalogModel.objects.filter(name="x").exists()


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DATA_SCIENTIST])
def test_editors_create_a_rule_based_entry(role, role_client, make_user, client):
    user = make_user(role)
    client.force_login(user)
    response = client.post(
        NEW,
        {
            "name": "credit-limit-rules",
            "description": "Limits by rule.",
            "kind": "rule_based",
            "serving": "batch",
            "team": " risk ",
            "owners": "a@example.com, b@example.com,,",
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/registry/models/credit-limit-rules/"
    assert "Catalog entry credit-limit-rules created." in response.content.decode()
    model = CatalogModel.objects.get(name="credit-limit-rules")
    assert (model.kind, model.serving, model.team) == ("rule_based", "batch", "risk")
    assert model.owners == ["a@example.com", "b@example.com"]
    assert model.created_by == user


def test_a_duplicate_name_is_a_clear_form_error(client_ds):
    CatalogModelFactory(name="taken")
    response = client_ds.post(NEW, {"name": "taken"})
    assert response.status_code == 400
    error = _soup(response).select_one('[data-field="name"]').get_text()
    assert "already exists" in error
    assert "is-invalid" in _soup(response).select_one("#id_name")["class"]
    assert CatalogModel.objects.filter(name="taken").count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": ""}, "name", "required"),
        ({"name": "a/b"}, "name", "may not contain"),
        ({"name": "a:b"}, "name", "may not contain"),
        ({"name": ".."}, "name", "reserved"),
        ({"name": "ok", "owners": "dana@example.com, not-an-email"}, "owners", "not-an-email"),
        ({"name": "ok", "kind": "robot"}, "kind", "Select a valid choice"),
    ],
)
def test_create_validation_errors_are_shown(client_ds, data, field, message):
    response = client_ds.post(NEW, data)
    assert response.status_code == 400
    assert message in _soup(response).select_one(f'[data-field="{field}"]').get_text()
    assert not CatalogModel.objects.exists()


def test_a_uc_name_entry_can_be_created_and_opened(client_ds):
    response = client_ds.post(NEW, {"name": "main.rules.credit limits"})
    assert response.status_code == 302
    assert client_ds.get(response["Location"]).status_code == 200


def test_editing_overrides_the_registry_categories(client_ds, fraud):
    url = f"/registry/models/{UC_NAME}/edit/"
    form = _soup(client_ds.get(url))
    assert form.select_one("#id_owners")["value"] == "dana@example.com"
    assert "From the registry tags (ML model)" in form.select_one("#id_kind").get_text()
    assert form.select_one("#id_name") is None  # the name is not editable
    response = client_ds.post(
        url,
        {
            "description": "New words.",
            "kind": "",
            "serving": "real_time",
            "team": "growth",
            "owners": "x@example.com",
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/registry/models/{UC_NAME}/"
    model = CatalogModel.objects.get(name=UC_NAME)
    assert (model.description, model.kind, model.serving, model.team) == (
        "New words.",
        "",
        "real_time",
        "growth",
    )
    assert model.owners == ["x@example.com"]
    assert (model.effective_kind, model.effective_serving) == ("ml", "real_time")


def test_edit_validation_errors_keep_what_was_typed(client_ds, fraud):
    response = client_ds.post(
        f"/registry/models/{UC_NAME}/edit/", {"description": "typed", "owners": "nope"}
    )
    assert response.status_code == 400
    soup = _soup(response)
    assert "Not an e-mail address: nope" in soup.select_one('[data-field="owners"]').get_text()
    assert soup.select_one("#id_description").get_text().strip() == "typed"
    assert CatalogModel.objects.get(name=UC_NAME).description == "Scores card transactions."


def test_catalog_services_validate_before_saving(make_user):
    from django.core.exceptions import ValidationError

    from registry import services

    user = make_user(Role.DATA_SCIENTIST)
    model = services.catalog_model_create(
        name="rules", owners="a@example.com, a@example.com", created_by=user
    )
    assert model.owners == ["a@example.com"] and model.created_by == user
    with pytest.raises(ValidationError) as duplicate:
        services.catalog_model_create(name="rules")
    assert "already exists" in str(duplicate.value.message_dict["name"])
    with pytest.raises(ValidationError) as bad_kind:
        services.catalog_model_update(catalog_model=model, kind="robot")
    assert "kind" in bad_kind.value.message_dict
    with pytest.raises(ValueError, match="not editable: name"):
        services.catalog_model_update(catalog_model=model, name="other")
    services.catalog_model_update(catalog_model=model, team=" ops ", owners=None)
    model.refresh_from_db()
    assert (model.team, model.owners) == ("ops", [])


def test_editing_an_unknown_model_is_404(client_ds):
    assert client_ds.get("/registry/models/nope/edit/").status_code == 404


# --- freshness banner ------------------------------------------------------------------------


def _banner(client, url=LIST):
    return _soup(client.get(url)).select_one("[data-testid=freshness]")


def test_banner_when_no_source_is_configured(client_ds):
    banner = _banner(client_ds)
    assert banner["data-state"] == "none"
    assert "No MLflow registry is configured yet" in banner.get_text()
    assert "As of" in banner.get_text()


def test_banner_states(client_ds, settings):
    settings.PORTAL_SYNC_STALE_AFTER_SECONDS = 3600
    now = timezone.now()
    RegistrySourceFactory(name="fresh", last_sync_succeeded_at=now - dt.timedelta(minutes=3))
    RegistrySourceFactory(name="old", last_sync_succeeded_at=now - dt.timedelta(hours=5))
    RegistrySourceFactory(
        name="broken",
        last_sync_succeeded_at=now - dt.timedelta(minutes=20),
        last_sync_error_at=now - dt.timedelta(minutes=2),
        last_sync_error="ConnectionError: mlflow unreachable",
    )
    RegistrySourceFactory(name="new", last_sync_succeeded_at=None)
    RegistrySourceFactory(name="off", enabled=False)
    banner = _banner(client_ds)
    by_source = {e["data-source"]: e for e in banner.select("[data-source]")}
    assert set(by_source) == {"fresh", "old", "broken", "new"}
    assert by_source["fresh"]["data-state"] == "ok"
    assert re.search(r"fresh synced 3\xa0minutes ago", by_source["fresh"].get_text())
    assert "alert-warning" in by_source["old"]["class"]
    assert "more than 1 hour ago" in " ".join(by_source["old"].get_text().split())
    assert "alert-danger" in by_source["broken"]["class"]
    assert "could not be reached" in by_source["broken"].get_text()
    assert "mlflow unreachable" not in by_source["broken"].get_text()  # details: operators only
    assert "never synced" in by_source["new"].get_text()
    assert banner["data-state"] == "failing"


REFUSED = (
    "HTTPConnectionPool(host='127.0.0.1', port=5999): Max retries exceeded with url: "
    "/api/2.0/mlflow/registered-models/search (Caused by NewConnectionError('<urllib3."
    "connection.HTTPConnection object at 0x7f>: Failed to establish a new connection: "
    "[Errno 111] Connection refused'))"
)


def test_a_failing_source_gives_users_a_short_reason_and_operators_the_details(role_client):
    source = RegistrySourceFactory(
        name="central", last_sync_error_at=timezone.now(), last_sync_error=REFUSED
    )
    for role in (Role.DATA_SCIENTIST, Role.APPROVER, Role.MANAGER):
        failing = _banner(role_client(role)).select_one('[data-source="central"]')
        text = " ".join(failing.get_text().split())
        assert "the MLflow registry could not be reached" in text, role
        assert "HTTPConnectionPool" not in text and "Errno" not in text, role
        assert not failing.select("a[href^='/admin/']"), role
    failing = _banner(role_client(Role.ADMIN)).select_one('[data-source="central"]')
    assert "the MLflow registry could not be reached" in failing.get_text()
    assert "Connection refused" in failing.select_one("details code").get_text()
    admin_link = failing.select_one("a[data-testid=source-admin]")
    assert admin_link["href"] == reverse("admin:registry_registrysource_change", args=[source.pk])


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (REFUSED, "could not be reached"),
        (f"INTERNAL_ERROR: API request to http://h/api failed with exception {REFUSED}", "reached"),
        ("ReadTimeout: HTTPConnectionPool(host='x', port=80): Read timed out.", "did not answer"),
        ("RestException: INVALID_PARAMETER_VALUE: 401 Unauthorized", "refused the credentials"),
        ("MlflowException: API request failed with error code 403 != 200", "refused the cred"),
        ("RestException: RESOURCE_DOES_NOT_EXIST: 404 Not Found", "does not know the address"),
        ("SSLError: certificate verify failed", "secure connection"),
        ("MlflowException: API request failed with error code 503 != 200", "answered with an"),
        ("ValueError: something nobody foresaw", "unexpected error"),
    ],
)
def test_sync_error_reasons(error, reason):
    from core.sync import sync_error_reason

    assert reason in sync_error_reason(error, "the MLflow registry")


@pytest.mark.parametrize(
    "url",
    [
        LIST,
        f"/registry/models/{UC_NAME}/",
        f"/registry/sources/central/models/{UC_NAME}/versions/1/",
        f"/registry/models/{UC_NAME}/compare/?v=central:1&v=central:2",
        f"/registry/models/{UC_NAME}/edit/",
        NEW,
    ],
)
def test_every_registry_page_has_the_banner(client_ds, fraud, url):
    banner = _banner(client_ds, url)
    assert banner is not None and banner.select_one('[data-source="central"]') is not None


def test_registry_pages_have_no_inline_scripts(client_ds, fraud):
    for url in (LIST, f"/registry/models/{UC_NAME}/"):
        soup = _soup(client_ds.get(url))
        assert all(s.get("src") for s in soup.find_all("script"))


# --- Django admin (operators) ----------------------------------------------------------------


def test_the_admin_lists_sources_with_their_sync_state(role_client):
    RegistrySourceFactory(
        name="central",
        last_sync_error_at=timezone.now(),
        last_sync_error="ConnectionError: mlflow down " * 10,
    )
    client = role_client(Role.ADMIN)
    response = client.get(reverse("admin:registry_registrysource_changelist"))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Last sync succeeded at" in text and "ConnectionError: mlflow down" in text


def test_the_admin_edits_catalog_entries(role_client):
    model = CatalogModelFactory(name="rules")
    client = role_client(Role.ADMIN)
    assert client.get(reverse("admin:registry_catalogmodel_add")).status_code == 200
    assert (
        client.get(reverse("admin:registry_catalogmodel_change", args=[model.pk])).status_code
        == 200
    )


@pytest.mark.parametrize("model_name", ["registeredmodel", "modelversion", "webhookdelivery"])
def test_the_mirror_is_read_only_in_the_admin(role_client, fraud, model_name):
    from registry.models import ModelVersion, RegisteredModel, WebhookDelivery

    objects = {
        "registeredmodel": lambda: fraud,
        "modelversion": lambda: fraud.versions.first(),
        "webhookdelivery": lambda: WebhookDelivery.objects.create(
            delivery_id="d-1", source=fraud.source, event="model_version.created"
        ),
    }
    obj = objects[model_name]()
    client = role_client(Role.ADMIN)
    assert client.get(reverse(f"admin:registry_{model_name}_changelist")).status_code == 200
    assert client.get(reverse(f"admin:registry_{model_name}_add")).status_code == 403
    change = client.get(reverse(f"admin:registry_{model_name}_change", args=[obj.pk]))
    assert change.status_code == 200 and b'name="_save"' not in change.content  # view only
    delete = client.post(reverse(f"admin:registry_{model_name}_delete", args=[obj.pk]))
    assert delete.status_code == 403
    assert RegisteredModel.objects.filter(pk=fraud.pk).exists()
    assert ModelVersion.objects.filter(registered_model=fraud).count() == 3
