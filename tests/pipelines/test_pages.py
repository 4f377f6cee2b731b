"""The pipelines pages (runs list, run row, run detail, trigger) and what they add to the
registry's model list, model page and version page."""

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from pipelines.models import PipelineKind, RunRequest, RunResult, RunState
from tests.pipelines.factories import (
    AdoProjectFactory,
    PipelineFactory,
    PipelineRunFactory,
    RunRequestFactory,
    RunStageFactory,
)
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = pytest.mark.django_db

RUNS = "/pipelines/"
NOW = timezone.now()


def ago(**kwargs):
    return timezone.now() - dt.timedelta(**kwargs)  # now, not at import: runs are long


def _soup(response):
    # <wbr> (soft breaks in long names) would split the names in get_text(" ")
    return BeautifulSoup(response.content.decode().replace("<wbr>", ""), "html.parser")


def _run_rows(response):
    return [int(tr["data-run"]) for tr in _soup(response).select("tr[data-run]")]


@pytest.fixture
def client_ds(role_client):
    return role_client(Role.DATA_SCIENTIST)


@pytest.fixture
def fraud():
    """fraud-detector: versions 1-3, training and release pipelines, a history of runs.

    PROD: v2 on AKS and v3 on a Databricks job; QA: v3 (default target). A release of v3 is
    waiting for its PROD approval, and a training run is running.
    """
    RegistrySourceFactory(name="central", is_central=True)
    rm = RegisteredModelFactory(name="fraud-detector")
    v = {n: ModelVersionFactory(registered_model=rm, version=n) for n in (1, 2, 3)}
    model = rm.catalog_model
    training = PipelineFactory(
        catalog_model=model, kind=PipelineKind.TRAINING, name="risk-fraud-detector-train"
    )
    release = PipelineFactory(
        catalog_model=model, kind=PipelineKind.RELEASE, name="risk-fraud-detector-release"
    )
    trained = PipelineRunFactory(
        pipeline=training,
        model_version=v[3],
        queued_at=ago(days=3),
        trigger="new-data",
        parameters={"modelName": "fraud-detector", "modelVersion": "3"},
    )
    RunStageFactory(run=trained, name="Train", order=0)
    running = PipelineRunFactory(
        pipeline=training, running=True, queued_at=ago(minutes=20), trigger="drift"
    )
    RunStageFactory(run=running, name="Train", order=0, running=True)

    def release_run(version, stages, *, when, target=None, **kwargs):
        parameters = {"modelVersion": str(version.version)}
        if target:
            parameters["deployTarget"] = target
        run = PipelineRunFactory(
            pipeline=release, model_version=version, parameters=parameters, queued_at=when, **kwargs
        )
        for order, (environment, traits) in enumerate(stages):
            RunStageFactory(
                run=run,
                environment=environment,
                order=order,
                finished_at=when + dt.timedelta(hours=order + 1),
                **traits,
            )
        return run

    release_run(v[2], [("QA", {}), ("PROD", {})], when=ago(days=10), target="aks")
    release_run(v[3], [("QA", {}), ("PROD", {})], when=ago(days=2), target="databricks-job")
    waiting = release_run(
        v[3],
        [("QA", {}), ("PROD", {"waiting": True})],
        when=ago(hours=4),
        target="aks",
        running=True,
    )
    return {
        "model": model,
        "versions": v,
        "training": training,
        "release": release,
        "trained": trained,
        "running": running,
        "waiting": waiting,
    }


# --- runs list -------------------------------------------------------------------------------


def test_the_runs_list_shows_every_column(client_ds, fraud):
    response = client_ds.get(RUNS)
    assert response.status_code == 200
    soup = _soup(response)
    headers = [th.get_text(" ", strip=True) for th in soup.select("[data-testid=run-table] th")]
    assert headers == [
        "Pipeline",
        "Kind",
        "Model",
        "Run",
        "State",
        "Reason",
        "Started",
        "Duration",
        "Stages",
    ]
    assert soup.select_one("[data-testid=run-count]").get_text(strip=True) == "5 runs"
    # newest first
    assert _run_rows(response)[:2] == [fraud["running"].pk, fraud["waiting"].pk]

    row = soup.select_one(f'tr[data-run="{fraud["waiting"].pk}"]')
    cells = [td.get_text(" ", strip=True) for td in row.select("td")]
    assert row.select_one("td").get_text(strip=True) == "risk-fraud-detector-release"
    assert cells[1:4] == ["Release", "fraud-detector", f"#{fraud['waiting'].name}"]
    assert cells[4] == "waiting for approval"
    assert row.select_one(".status-badge")["class"][1] == "text-bg-warning"
    assert cells[5] == "manual"
    assert row.select("td")[6].select_one("time")["title"].endswith("UTC")
    assert cells[7].endswith("so far")
    strip = {c["data-stage"]: c for c in row.select(".stage-cell")}
    assert "text-bg-success" in strip["QA"]["class"]
    assert "text-bg-warning" in strip["PROD"]["class"]
    assert strip["PROD"]["data-state"] == "waiting"
    assert "waiting for approval" in strip["PROD"].get_text()
    assert row.select_one("a[href]")["href"] == "/registry/models/fraud-detector/"

    done = soup.select_one(f'tr[data-run="{fraud["trained"].pk}"]')
    assert done.select_one(".status-badge").get_text() == "succeeded"
    assert done.select("td")[5].get_text(strip=True) == "new data"
    assert done.select("td")[7].get_text(strip=True) == "20 min"
    nav = [a.get_text(strip=True) for a in soup.select("#portal-nav .nav-link.active")]
    assert nav == ["Pipelines"]


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reads_the_runs_list_and_sees_it_in_the_navigation(role, role_client, fraud):
    soup = _soup(role_client(role).get(RUNS))
    assert len(soup.select("tr[data-run]")) == 5
    assert "Pipelines" in [a.get_text(strip=True) for a in soup.select("#portal-nav .nav-link")]


def test_running_rows_poll_and_completed_rows_do_not(client_ds, fraud):
    soup = _soup(client_ds.get(RUNS))
    running = soup.select_one(f'tr[data-run="{fraud["running"].pk}"]')
    url = reverse("pipelines:run-row", kwargs={"pk": fraud["running"].pk})
    assert running["hx-get"] == url
    assert running["hx-trigger"] == "every 10s"
    assert running["hx-swap"] == "outerHTML"
    assert running["id"] == f"run-{fraud['running'].pk}"
    done = soup.select_one(f'tr[data-run="{fraud["trained"].pk}"]')
    assert not done.has_attr("hx-get") and not done.has_attr("hx-trigger")


def test_the_row_fragment_polls_while_running_and_stops_once_completed(client_ds, fraud):
    run = fraud["running"]
    url = reverse("pipelines:run-row", kwargs={"pk": run.pk})
    response = client_ds.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    (row,) = _soup(response).select("tr")
    assert row["id"] == f"run-{run.pk}" and row["hx-trigger"] == "every 10s"
    assert row.select_one(".status-badge").get_text() == "running"

    run.state, run.result, run.finished_at = RunState.COMPLETED, RunResult.FAILED, NOW
    run.save()
    run.stages.update(state="completed", result="failed", finished_at=NOW)
    (row,) = _soup(client_ds.get(url, headers={"HX-Request": "true"})).select("tr")
    assert not row.has_attr("hx-trigger") and not row.has_attr("hx-get")
    assert row.select_one(".status-badge").get_text() == "failed"
    assert "text-bg-danger" in row.select_one(".stage-cell")["class"]
    assert client_ds.get(reverse("pipelines:run-row", kwargs={"pk": 999999})).status_code == 404


@pytest.mark.sqlite
def test_filters_live_in_the_url(client_ds, fraud):
    other = PipelineFactory(catalog_model__name="churn-predictor", kind=PipelineKind.TRAINING)
    PipelineRunFactory(pipeline=other, result=RunResult.FAILED, trigger="schedule")
    cases = {
        "?model=fraud-detector": 5,
        "?model=churn-predictor": 1,
        "?kind=release": 3,
        "?state=running": 2,
        "?state=waiting": 1,
        "?state=completed": 4,
        "?result=failed": 1,
        "?trigger=drift": 1,
        "?trigger=new-data": 1,
        # Days, not hours: the run queued 4 h ago is yesterday before 04:00 UTC.
        f"?date_from={ago(days=5).date()}&date_to={ago(days=2).date()}": 2,
        "?model=fraud-detector&kind=training&state=running": 1,
    }
    for query, count in cases.items():
        response = client_ds.get(RUNS + query)
        assert len(_run_rows(response)) == count, query
    soup = _soup(client_ds.get(RUNS + "?kind=release&state=waiting"))
    assert soup.select_one("#id_kind option[selected]")["value"] == "release"
    assert soup.select_one("#id_state option[selected]")["value"] == "waiting"
    triggers = [o.get_text() for o in soup.select("#id_trigger option")]
    assert "new data" in triggers and "drift" in triggers


@pytest.mark.sqlite
def test_bad_filters_are_shown_and_ignored(client_ds, fraud):
    response = client_ds.get(RUNS + "?kind=nonsense&date_from=yesterday&state=running")
    assert response.status_code == 200
    errors = _soup(response).select_one("[data-testid=filter-errors]").get_text(" ", strip=True)
    assert "Kind" in errors and "From" in errors
    assert len(_run_rows(response)) == 2  # the valid state filter still applies
    reversed_dates = client_ds.get(RUNS + "?date_from=2025-03-10&date_to=2025-03-01")
    assert "before the start date" in reversed_dates.content.decode()


@pytest.mark.sqlite
def test_sorting_by_a_column_header(client_ds, fraud):
    soup = _soup(client_ds.get(RUNS))
    (started,) = [a for a in soup.select("a.sort-link") if "Started" in a.get_text()]
    assert parse_qs(urlsplit(started["href"]).query)["sort"] == ["started"]  # toggles
    oldest_first = _run_rows(client_ds.get(RUNS + "?sort=started"))
    assert oldest_first[0] == fraud["release"].runs.order_by("queued_at").first().pk
    assert oldest_first[-1] == fraud["running"].pk


def test_runs_are_paginated_fifty_per_page_with_counts(client_ds, django_assert_max_num_queries):
    pipeline = PipelineFactory(kind=PipelineKind.TRAINING)
    for i in range(60):
        run = PipelineRunFactory(pipeline=pipeline, queued_at=ago(hours=i))
        RunStageFactory(run=run, name="Train")
    first = client_ds.get(RUNS)
    assert len(_run_rows(first)) == 50
    nav = _soup(first).select_one('nav[aria-label="Run pages"]').get_text(" ", strip=True)
    assert "Showing 1\u201350 of 60" in nav and "Page 1 of 2" in nav
    assert len(_run_rows(client_ds.get(RUNS + "?page=2"))) == 10
    with django_assert_max_num_queries(12):
        client_ds.get(RUNS + "?page=2&kind=training")


def test_htmx_requests_get_only_the_results(client_ds, fraud):
    response = client_ds.get(
        RUNS + "?kind=release", headers={"HX-Request": "true", "HX-Target": "run-results"}
    )
    html = response.content.decode()
    assert "<html" not in html and 'data-testid="run-table"' in html
    assert len(_run_rows(response)) == 3
    assert "HX-Request" in response["Vary"]


def test_empty_states_say_why(client_ds):
    soup = _soup(client_ds.get(RUNS))
    empty = soup.select_one("[data-testid=empty-state]").get_text(" ", strip=True)
    assert "No pipeline run yet" in empty and "once an ADO project is synced" in empty
    assert (
        "No Azure DevOps project is configured"
        in soup.select_one("[data-testid=freshness]").get_text()
    )
    PipelineRunFactory()
    empty = _soup(client_ds.get(RUNS + "?state=waiting")).select_one("[data-testid=empty-state]")
    assert "No run matches these filters" in empty.get_text()


def test_freshness_per_ado_project(client_ds):
    AdoProjectFactory(name="mlops", last_sync_succeeded_at=ago(minutes=3))
    AdoProjectFactory(
        name="broken",
        last_sync_succeeded_at=ago(hours=2),
        last_sync_error_at=ago(minutes=1),
        last_sync_error="HTTP 503 from dev.azure.com",
    )
    AdoProjectFactory(name="new", last_sync_succeeded_at=None)
    soup = _soup(client_ds.get(RUNS))
    by_project = {e["data-project"]: e for e in soup.select("[data-project]")}
    assert by_project["mlops"]["data-state"] == "ok"
    assert re.search(r"mlops synced 3\xa0minutes ago", by_project["mlops"].get_text())
    assert by_project["broken"]["data-state"] == "failing"
    assert "Azure DevOps answered with an error" in by_project["broken"].get_text()
    assert "as of its last good sync" in by_project["broken"].get_text()
    assert by_project["new"]["data-state"] == "never"
    assert soup.select_one(".as-of") is not None


def test_a_failing_project_gives_users_a_short_reason_and_operators_the_details(role_client):
    project = AdoProjectFactory(
        name="broken",
        last_sync_succeeded_at=None,
        last_sync_error_at=ago(minutes=1),
        last_sync_error="HTTPSConnectionPool(host='dev.azure.com', port=443): Max retries "
        "exceeded (Caused by NewConnectionError('Failed to establish a new connection'))",
    )
    for role in (Role.DATA_SCIENTIST, Role.APPROVER, Role.MANAGER):
        banner = _soup(role_client(role).get(RUNS)).select_one('[data-project="broken"]')
        text = " ".join(banner.get_text().split())
        assert "Azure DevOps could not be reached" in text, role
        assert "HTTPSConnectionPool" not in text and not banner.select("details"), role
        assert not banner.select("a[href^='/admin/']"), role
    banner = _soup(role_client(Role.ADMIN).get(RUNS)).select_one('[data-project="broken"]')
    assert "HTTPSConnectionPool" in banner.select_one("details code").get_text()
    admin_link = banner.select_one("a[data-testid=source-admin]")
    assert admin_link["href"] == reverse("admin:pipelines_adoproject_change", args=[project.pk])


# --- run detail ------------------------------------------------------------------------------


def test_the_run_page_shows_stages_parameters_version_requester_and_ado(client_ds, fraud):
    run = fraud["waiting"]
    run.triggered_by = None
    run.requested_by = "Rita Release"
    run.save()
    RunRequestFactory(pipeline=run.pipeline, run=run, status=RunRequest.Status.SENT, note="ship v3")
    response = client_ds.get(reverse("pipelines:run-detail", kwargs={"pk": run.pk}))
    assert response.status_code == 200
    soup = _soup(response)
    assert (
        soup.select_one("[data-testid=run-title]")
        .get_text(" ", strip=True)
        .startswith("risk-fraud-detector-release")
    )
    assert "waiting for approval" in soup.select_one("[data-testid=run-badges]").get_text()
    stages = soup.select("[data-testid=stage-timeline] li")
    assert [li["data-stage"] for li in stages] == ["QA", "PROD"]
    assert "Waiting for an approval" in stages[1].get_text()
    params = soup.select_one("[data-testid=run-parameters]").get_text(" ", strip=True)
    assert "deployTarget aks" in params and "modelVersion 3" in params
    version = soup.select_one("[data-testid=run-version] a")
    assert version["href"] == "/registry/sources/central/models/fraud-detector/versions/3/"
    assert soup.select_one("[data-testid=run-requester]").get_text(strip=True) == "Rita Release"
    assert soup.select_one("[data-testid=ado-link]")["href"] == run.web_url
    requests = soup.select_one("[data-testid=run-requests]").get_text(" ", strip=True)
    assert "Queued in ADO" in requests and "ship v3" in requests


def test_the_run_page_of_an_unknown_run_is_404(client_ds):
    assert client_ds.get(reverse("pipelines:run-detail", kwargs={"pk": 424242})).status_code == 404


# --- model page sections ---------------------------------------------------------------------


def test_the_model_page_shows_deployment_now_with_every_version_and_target(client_ds, fraud):
    soup = _soup(client_ds.get("/registry/models/fraud-detector/"))
    section = soup.select_one("[data-testid=section-deployment-now]")
    assert section.h2.get_text(strip=True) == "Deployment now"
    prod = {
        li["data-deployment"]: li.get_text(" ", strip=True)
        for li in section.select("[data-testid=deployment-prod] li")
    }
    assert set(prod) == {"PROD:aks", "PROD:databricks-job"}
    assert prod["PROD:aks"].startswith("v2 AKS") and "since" in prod["PROD:aks"]
    assert prod["PROD:databricks-job"].startswith("v3 Databricks job")
    qa = section.select("[data-testid=deployment-qa] li")
    assert [li["data-deployment"] for li in qa] == ["QA:aks", "QA:databricks-job"]
    link = section.select_one("[data-testid=deployment-prod] li a")
    assert link["href"] == "/registry/sources/central/models/fraud-detector/versions/2/"
    run_links = [a["href"] for a in section.select("[data-testid=deployment-prod] li a")]
    assert any(h.startswith("/pipelines/runs/") for h in run_links)
    releasing = section.select_one("[data-testid=releasing]").get_text(" ", strip=True)
    assert "Release in progress" in releasing and "v3" in releasing
    assert "once Azure DevOps release pipelines are synced" not in section.get_text()


def test_the_versions_table_says_where_each_version_runs_like_deployment_now(client_ds, fraud):
    soup = _soup(client_ds.get("/registry/models/fraud-detector/"))
    table = soup.select_one("[data-testid=versions-table]")
    deployed = {
        row["data-version"]: [
            div.get_text(" ", strip=True) for div in row.select("td[data-column=Deployed] div")
        ]
        for row in table.select("tbody tr")
    }
    assert deployed == {
        "central:3": ["QA · AKS", "QA · Databricks", "PROD · Databricks"],
        "central:2": ["PROD · AKS"],
        "central:1": [],
    }
    v1 = table.select_one('tr[data-version="central:1"] td[data-column=Deployed]')
    assert v1.get_text(strip=True) == "—" and "Not deployed" in v1.span["title"]
    v2 = table.select_one('tr[data-version="central:2"] td[data-column=Deployed] a')
    assert v2["href"].startswith("/pipelines/runs/")  # the run that deployed it
    assert "PROD on AKS since" in v2["title"]


def test_the_model_page_pipelines_section_shows_the_latest_run_per_kind(client_ds, fraud):
    soup = _soup(client_ds.get("/registry/models/fraud-detector/"))
    section = soup.select_one("[data-testid=section-pipelines]")
    rows = {tr["data-kind"]: tr for tr in section.select("[data-testid=pipelines-table] tbody tr")}
    assert list(rows) == ["training", "release"]
    assert rows["training"].select_one(".status-badge").get_text() == "running"
    assert rows["release"].select_one(".status-badge").get_text() == "waiting for approval"
    assert rows["training"].select_one("time") is not None
    button = section.select_one("[data-testid=trigger-button]")
    url = reverse("pipelines:trigger", kwargs={"pk": fraud["training"].pk})
    assert button.get_text(strip=True) == "Run training"
    assert button["href"] == url and button["hx-get"] == url
    assert (
        section.select_one("[data-testid=all-runs]")["href"] == "/pipelines/?model=fraud-detector"
    )


@pytest.mark.parametrize(
    ("role", "sees_button"),
    [
        (Role.DATA_SCIENTIST, True),
        (Role.ADMIN, True),
        (Role.APPROVER, False),
        (Role.MANAGER, False),
    ],
)
def test_only_data_scientists_and_admins_see_run_training(role, sees_button, role_client, fraud):
    soup = _soup(role_client(role).get("/registry/models/fraud-detector/"))
    assert soup.select_one("[data-testid=section-pipelines]") is not None
    assert bool(soup.select("[data-testid=trigger-button]")) == sees_button


def test_a_rule_based_model_gets_run_scoring(client_ds):
    model = CatalogModelFactory(name="credit-limit-rules", kind="rule_based")
    scoring = PipelineFactory(catalog_model=model, kind=PipelineKind.SCORING)
    PipelineFactory(catalog_model=model, kind=PipelineKind.RELEASE)
    soup = _soup(client_ds.get("/registry/models/credit-limit-rules/"))
    (button,) = soup.select("[data-testid=trigger-button]")
    assert button.get_text(strip=True) == "Run scoring"
    assert button["href"] == reverse("pipelines:trigger", kwargs={"pk": scoring.pk})
    qa = soup.select_one("[data-testid=deployment-qa]").get_text(" ", strip=True)
    assert "No version of this model has been deployed to QA yet" in qa
    rows = soup.select("[data-testid=pipelines-table] tbody tr")
    assert "never ran" in rows[0].get_text()


def test_a_model_without_training_pipeline_has_no_button_and_no_pipelines_say_so(client_ds):
    model = CatalogModelFactory(name="ci-only")
    PipelineFactory(catalog_model=model, kind=PipelineKind.CI)
    soup = _soup(client_ds.get("/registry/models/ci-only/"))
    assert soup.select("[data-testid=trigger-button]") == []
    CatalogModelFactory(name="bare")
    soup = _soup(client_ds.get("/registry/models/bare/"))
    assert (
        "No Azure DevOps pipeline serves this model yet"
        in soup.select_one("[data-testid=no-pipelines]").get_text()
    )
    assert (
        "once Azure DevOps release pipelines are synced"
        in soup.select_one("[data-testid=deployment-prod]").get_text()
    )


def test_recent_run_requests_are_listed_under_the_button(client_ds, fraud, make_user):
    dana = make_user(Role.DATA_SCIENTIST, first_name="Dana", last_name="Scientist")
    RunRequestFactory(pipeline=fraud["training"], requested_by=dana, note="new features")
    RunRequestFactory(
        pipeline=fraud["training"],
        requested_by=dana,
        status=RunRequest.Status.FAILED,
        error="HTTP 400: Unexpected parameter 'modelName'",
    )
    RunRequestFactory(
        pipeline=fraud["training"], status=RunRequest.Status.SENT, run=fraud["running"]
    )
    soup = _soup(client_ds.get("/registry/models/fraud-detector/"))
    items = soup.select("[data-testid=run-requests] li")
    assert [li["data-status"] for li in items] == ["sent", "failed", "queued"]
    assert "Queued in ADO" in items[0].get_text() and "automation" in items[0].get_text()
    assert "Unexpected parameter" in items[1].get_text()
    assert "Dana Scientist" in items[2].get_text() and "new features" in items[2].get_text()
    assert items[2].select_one(".status-badge")["class"][1] == "text-bg-warning"


def test_the_model_page_query_count_stays_bounded(client_ds, fraud, django_assert_max_num_queries):
    url = "/registry/models/fraud-detector/"
    client_ds.get(url)
    # 4 of them: maturity's section and badge; 7: the operations section; one each for the
    # metric chart's series, its PROD marks and the teams' headline aliases; the model card and
    # who may edit it; the deployment history's summary (one more when the suite has warmed a
    # different cache)
    with django_assert_max_num_queries(31) as before:
        client_ds.get(url)
    # more history, more pipeline kinds, more requests: not one query more
    for i in range(10):
        PipelineRunFactory(pipeline=fraud["release"], queued_at=ago(days=20 + i))
    for kind in (PipelineKind.CI, PipelineKind.DATA_CLEANSING, PipelineKind.OTHER):
        run = PipelineRunFactory(pipeline__catalog_model=fraud["model"], pipeline__kind=kind)
        RunStageFactory(run=run)
    for _ in range(3):
        RunRequestFactory(pipeline=fraud["training"])
    with django_assert_max_num_queries(len(before)):
        response = client_ds.get(url)
    assert len(_soup(response).select("[data-testid=pipelines-table] tbody tr")) == 5


# --- version page section --------------------------------------------------------------------


def test_the_version_page_shows_the_training_run_and_the_release_runs(client_ds, fraud):
    url = "/registry/sources/central/models/fraud-detector/versions/3/"
    soup = _soup(client_ds.get(url))
    section = soup.select_one("[data-testid=section-pipeline-runs]")
    produced = section.select_one("[data-testid=produced-by]")
    assert produced.select_one(".card-header").get_text(strip=True) == "Trained by"
    assert produced.select_one("a")["href"] == f"/pipelines/runs/{fraud['trained'].pk}/"
    assert produced.select_one(".status-badge").get_text() == "succeeded"
    rows = section.select("[data-testid=deployed-by] tbody tr")
    cells = [[td.get_text(" ", strip=True) for td in tr.select("td")][1:4] for tr in rows]
    assert cells == [
        ["QA", "AKS", "succeeded"],
        ["PROD", "AKS", "waiting for approval"],
        ["QA", "Databricks job", "succeeded"],
        ["PROD", "Databricks job", "succeeded"],
    ]
    assert "will appear here once Azure DevOps pipelines" not in soup.get_text()


def test_a_version_no_run_names_says_so(client_ds, fraud):
    soup = _soup(client_ds.get("/registry/sources/central/models/fraud-detector/versions/1/"))
    assert (
        "No synced pipeline run names this version"
        in soup.select_one("[data-testid=no-version-runs]").get_text()
    )


def test_without_providers_the_registry_pages_keep_their_placeholders(client_ds, fraud, settings):
    settings.REGISTRY_MODEL_PAGE_SECTIONS = []
    settings.REGISTRY_VERSION_PAGE_SECTIONS = []
    settings.REGISTRY_CATALOG_LIST_ANNOTATORS = []
    text = _soup(client_ds.get("/registry/models/fraud-detector/")).get_text()
    assert "once Azure DevOps release pipelines are synced" in text
    assert "Run training" not in text
    text = _soup(
        client_ds.get("/registry/sources/central/models/fraud-detector/versions/3/")
    ).get_text()
    assert "will appear here once Azure DevOps pipelines and approvals are synced" in text
    row = _soup(client_ds.get("/registry/models/")).select_one('tr[data-model="fraud-detector"]')
    assert row.select("td")[6].span["title"] == "Filled once pipelines are synced"


# --- model list columns ----------------------------------------------------------------------


@pytest.mark.sqlite
def test_the_model_list_fills_in_qa_and_in_prod(client_ds, fraud):
    CatalogModelFactory(name="credit-limit-rules", kind="rule_based")
    soup = _soup(client_ds.get("/registry/models/"))
    row = soup.select_one('tr[data-model="fraud-detector"]')
    qa = row.select_one("td[data-column=QA]")
    prod = row.select_one("td[data-column=PROD]")
    assert [a.get_text() for a in qa.select("a")] == ["v3 · AKS", "v3 · Databricks"]
    assert [a.get_text() for a in prod.select("a")] == ["v2 · AKS", "v3 · Databricks"]
    assert prod.a["href"] == "/registry/sources/central/models/fraud-detector/versions/2/"
    assert "since" in prod.a["title"]
    assert prod.select("a")[1]["title"].startswith("central v3 in PROD on Databricks job since")
    rules = soup.select_one('tr[data-model="credit-limit-rules"]')
    assert rules.select_one("td[data-column=PROD]").get_text(strip=True) == "—"
    assert rules.select_one("td[data-column=PROD] span")["title"] == "Not deployed to PROD"


@pytest.mark.sqlite
def test_an_unregistered_rule_based_model_lists_the_version_its_release_names(client_ds):
    rules = CatalogModelFactory(name="credit-limit-rules", kind="rule_based")
    release = PipelineFactory(catalog_model=rules, kind=PipelineKind.RELEASE)
    named = PipelineRunFactory(
        pipeline=release, parameters={"modelVersion": "4", "deployTarget": "databricks-job"}
    )
    RunStageFactory(run=named, environment="PROD")
    unnamed = PipelineRunFactory(pipeline=release, parameters={"deployTarget": "databricks-job"})
    RunStageFactory(run=unnamed, environment="QA")
    row = _soup(client_ds.get("/registry/models/")).select_one(
        'tr[data-model="credit-limit-rules"]'
    )
    prod = row.select_one("td[data-column=PROD] a")
    assert prod.get_text() == "v4 · Databricks"  # not "? · Databricks"
    assert "names version 4 (not registered)" in prod["title"]
    assert prod["href"] == reverse("pipelines:run-detail", kwargs={"pk": named.pk})
    qa = row.select_one("td[data-column=QA] a")
    assert qa.get_text() == "unknown version · Databricks"


def test_the_model_list_columns_cost_one_query_for_the_whole_page(
    client_ds, django_assert_max_num_queries
):
    RegistrySourceFactory(name="central", is_central=True)
    for i in range(30):
        rm = RegisteredModelFactory(name=f"model-{i:02d}")
        version = ModelVersionFactory(registered_model=rm, version=1)
        release = PipelineFactory(catalog_model=rm.catalog_model, kind=PipelineKind.RELEASE)
        for environment, target in [("QA", "aks"), ("PROD", "aks"), ("PROD", "databricks-job")]:
            run = PipelineRunFactory(
                pipeline=release, model_version=version, parameters={"deployTarget": target}
            )
            RunStageFactory(run=run, environment=environment)
    client_ds.get("/registry/models/")
    # 12, and 1 for the teams' headline aliases
    with django_assert_max_num_queries(13) as captured:
        response = client_ds.get("/registry/models/")
    stage_queries = [q for q in captured.captured_queries if "pipelines_runstage" in q["sql"]]
    assert len(stage_queries) == 1
    soup = _soup(response)
    assert len(soup.select("td[data-column=PROD] a")) == 60


# --- trigger ---------------------------------------------------------------------------------


def _trigger_url(pipeline):
    return reverse("pipelines:trigger", kwargs={"pk": pipeline.pk})


@pytest.mark.parametrize("role", [Role.APPROVER, Role.MANAGER])
def test_approvers_and_managers_may_not_trigger(role, role_client, fraud):
    client = role_client(role)
    url = _trigger_url(fraud["training"])
    assert client.get(url).status_code == 403
    assert client.post(url, {"note": "please"}).status_code == 403
    assert not RunRequest.objects.exists()


def test_a_data_scientist_confirms_then_the_run_is_requested(client_ds, fraud):
    url = _trigger_url(fraud["training"])
    page = client_ds.get(url)
    assert page.status_code == 200
    form = _soup(page).select_one("[data-testid=trigger-confirm]")
    assert form["method"] == "post" and form["action"] == url
    assert "risk-fraud-detector-train" in form.get_text()
    assert form.select_one("input[name=csrfmiddlewaretoken]") is not None
    assert not RunRequest.objects.exists()  # asking for confirmation changes nothing

    fragment = client_ds.get(url, headers={"HX-Request": "true"})
    assert "<html" not in fragment.content.decode()
    assert _soup(fragment).select_one("[data-testid=trigger-confirm]") is not None

    response = client_ds.post(url, {"note": "new features in the data"}, follow=True)
    assert response.redirect_chain == [("/registry/models/fraud-detector/", 302)]
    assert "Training requested: waiting for Azure DevOps" in response.content.decode()
    request = RunRequest.objects.get()
    assert request.pipeline == fraud["training"]
    assert request.reason == "manual"
    assert request.note == "new features in the data"
    assert request.requested_by == response.wsgi_request.user
    assert request.parameters.get("trigger") == "manual"
    listed = _soup(response).select("[data-testid=run-requests] li")
    assert listed and "new features in the data" in listed[0].get_text()


def test_an_admin_runs_scoring_of_a_rule_based_model(role_client):
    model = CatalogModelFactory(name="rules", kind="rule_based")
    scoring = PipelineFactory(catalog_model=model, kind=PipelineKind.SCORING)
    response = role_client(Role.ADMIN).post(_trigger_url(scoring), {}, follow=True)
    assert "Scoring requested: waiting for Azure DevOps" in response.content.decode()
    assert RunRequest.objects.get().pipeline == scoring


def test_the_trigger_needs_a_csrf_token(make_user, fraud):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(Role.DATA_SCIENTIST))
    url = _trigger_url(fraud["training"])
    assert client.post(url, {"note": "x"}).status_code == 403
    assert not RunRequest.objects.exists()
    page = client.get(url)
    token = _soup(page).select_one("input[name=csrfmiddlewaretoken]")["value"]
    assert client.post(url, {"note": "x", "csrfmiddlewaretoken": token}).status_code == 302
    assert RunRequest.objects.count() == 1


def test_only_training_and_scoring_pipelines_can_be_triggered(client_ds, fraud):
    assert client_ds.get(_trigger_url(fraud["release"])).status_code == 404
    assert client_ds.post(_trigger_url(fraud["release"])).status_code == 404
    orphan = PipelineFactory(catalog_model=None, kind=PipelineKind.TRAINING, name="orphan")
    assert client_ds.get(_trigger_url(orphan)).status_code == 404
    gone = PipelineFactory(kind=PipelineKind.TRAINING, deleted_upstream_at=NOW)
    assert client_ds.get(_trigger_url(gone)).status_code == 404
    assert client_ds.get("/pipelines/pipelines/999999/trigger/").status_code == 404


def test_a_note_too_long_is_refused_with_the_form_again(client_ds, fraud):
    response = client_ds.post(_trigger_url(fraud["training"]), {"note": "x" * 1001})
    assert response.status_code == 400
    assert "at most 1000 characters" in response.content.decode()
    assert not RunRequest.objects.exists()


# --- admin -----------------------------------------------------------------------------------


def _admin_form(response):
    """The change form's current values, as a browser would post them back."""
    form = _soup(response).select_one("form#pipeline_form")
    data = {}
    for field in form.select("input[name], select[name], textarea[name]"):
        name = field["name"]
        if field.name == "select":
            chosen = field.select_one("option[selected]")
            data[name] = chosen["value"] if chosen else ""
        elif field.get("type") == "checkbox":
            if field.has_attr("checked"):
                data[name] = "on"
        elif field.get("type") != "submit":
            data[name] = field.get("value", "")
    return data


def test_an_operator_correcting_kind_or_model_marks_it_set_by_hand(role_client, fraud):
    client = role_client(Role.ADMIN)
    pipeline = fraud["training"]
    url = reverse("admin:pipelines_pipeline_change", args=[pipeline.pk])
    data = _admin_form(client.get(url))
    assert client.post(url, data).status_code == 302  # saved unchanged
    pipeline.refresh_from_db()
    assert pipeline.kind_set_by_hand is False

    data["kind"] = PipelineKind.SCORING
    assert client.post(url, data).status_code == 302
    pipeline.refresh_from_db()
    assert pipeline.kind == PipelineKind.SCORING and pipeline.kind_set_by_hand is True

    other = PipelineFactory(kind=PipelineKind.CI, name="ci-x")
    url = reverse("admin:pipelines_pipeline_change", args=[other.pk])
    data = _admin_form(client.get(url))
    data["catalog_model"] = str(fraud["model"].pk)
    assert client.post(url, data).status_code == 302
    other.refresh_from_db()
    assert other.catalog_model == fraud["model"] and other.kind_set_by_hand is True


def test_the_mirror_is_read_only_in_the_admin(role_client, fraud):
    client = role_client(Role.ADMIN)
    run = fraud["trained"]
    for name in ("pipelinerun", "runstage", "runrequest", "hookdelivery"):
        assert client.get(reverse(f"admin:pipelines_{name}_changelist")).status_code == 200
        assert client.get(reverse(f"admin:pipelines_{name}_add")).status_code == 403
    page = client.get(reverse("admin:pipelines_pipelinerun_change", args=[run.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get(reverse("admin:pipelines_pipeline_add")).status_code == 403
    # The error is newer than the factory's last success (3 minutes ago): now, not the
    # module's NOW, which a long run leaves behind that success.
    AdoProjectFactory(
        name="broken",
        last_sync_error_at=timezone.now(),
        last_sync_error="HTTP 401 from dev.azure.com",
    )
    listing = client.get(reverse("admin:pipelines_adoproject_changelist")).content.decode()
    assert "failing" in listing and "HTTP 401 from dev.azure.com" in listing
    assert client.get(reverse("admin:pipelines_adoproject_add")).status_code == 200
