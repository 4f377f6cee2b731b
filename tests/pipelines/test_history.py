"""The deployment history: recorded by the real sync from the ADO simulator's runs, read as
lanes and as "what served at", on the history page, in its CSV and in the API."""

import csv
import datetime as dt
import importlib
import io

import pytest
from bs4 import BeautifulSoup
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from approvals.models import DecidedIn
from core.roles import Role
from pipelines import selectors_history as history
from pipelines.forms_history import parse_moment
from pipelines.models import DeploymentRecord, PipelineRun
from pipelines.views_history import rollback_base
from registry.models import RegistryEvent, RegistryEventKind
from tests.approvals.factories import ApprovalRequestFactory
from tests.pipelines.factories import DeploymentRecordFactory, RunStageFactory
from tests.pipelines.test_sync import (  # noqa: F401
    ado_client,
    fraud,
    make_pipelines,
    project,
    sim,
    sync,
)
from tests.registry.factories import (
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistryEventFactory,
)

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)


def hours(n: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


# --- Recording through the real sync ---------------------------------------------------------


def test_the_sync_records_each_deployment_once(project, ado_client, sim, fraud):  # noqa: F811
    pipes = make_pipelines(sim)
    run = sim.queue_run(
        pipes["release"],
        template_parameters={
            "modelName": "fraud-detector",
            "modelVersion": "2",
            "deployTarget": "AKS",
        },
    )
    sim.advance(600)
    sync(project, ado_client)
    assert not DeploymentRecord.objects.exists()  # QA waits for its approval: nothing served

    [qa] = sim.pending_approvals(run)
    sim.decide(qa.id, "approved", "alice@example.com", "QA fine")
    sim.advance(600)
    result = sync(project, ado_client)
    assert result.deployments_recorded == 1
    [record] = DeploymentRecord.objects.all()
    mirrored = PipelineRun.objects.get(ado_id=run.id)
    qa_stage = mirrored.stages.get(environment="QA")
    assert record.catalog_model == fraud["catalog"] and record.environment == "QA"
    assert record.target == "aks" and record.model_version == fraud["v2"]
    assert record.version_label == "v2" and record.run == mirrored
    assert record.approval_ids == [qa.id] and record.started_at == qa_stage.finished_at

    [prod] = sim.pending_approvals(run)
    sim.decide(prod.id, "approved", "bob@example.com", "ship it")
    sim.advance(3600)
    sync(project, ado_client)
    assert DeploymentRecord.objects.filter(environment="PROD", target="aks").count() == 1

    again = sync(project, ado_client, full=True)  # a full resync re-reads every timeline
    assert again.deployments_recorded == 0 and DeploymentRecord.objects.count() == 2


def test_a_failed_stage_or_a_run_without_a_model_records_nothing(project, ado_client, sim, fraud):  # noqa: F811
    pipes = make_pipelines(sim)
    orphan = sim.create_pipeline("shared-release", "release", folder="\\platform")
    sim.queue_run(orphan, decisions={"QA": {"seconds": 60, "status": "approved"}})
    sim.queue_run(
        pipes["release"],
        template_parameters={"modelName": "fraud-detector", "modelVersion": "1"},
        fail_stage="QA",
    )
    sim.advance(7200)
    sync(project, ado_client)
    assert not DeploymentRecord.objects.exists()


def test_the_backfill_migration_records_the_stages_already_mirrored():
    stage = RunStageFactory(environment="PROD", target="Databricks-Job")
    stage.run.parameters = {"modelVersion": "7"}
    stage.run.save()
    RunStageFactory(environment="QA", state="completed", result="failed")
    RunStageFactory(environment="QA", run__pipeline__catalog_model=None)
    backfill = importlib.import_module("pipelines.migrations.0008_deployments_backfill").backfill
    backfill(apps, None)
    backfill(apps, None)  # twice: still one record per stage
    [record] = DeploymentRecord.objects.all()
    assert record.stage_id == stage.pk and record.target == "databricks-job"
    assert record.version_label == "v7" and record.started_at == stage.finished_at


# --- Lanes and the point-in-time answer ------------------------------------------------------


@pytest.fixture
def served():
    """PROD on AKS: v1 from hour 0, v2 from hour 10; PROD on a Databricks job: v2 from hour 5;
    QA: v2 from hour 2."""
    registered = RegisteredModelFactory(name="churn-predictor")
    catalog = registered.catalog_model
    v1 = ModelVersionFactory(registered_model=registered, version=1)
    v2 = ModelVersionFactory(registered_model=registered, version=2)

    def deploy(version, at, target="aks", environment="PROD"):
        return DeploymentRecordFactory(
            catalog_model=catalog,
            model_version=version,
            started_at=at,
            target=target,
            environment=environment,
        )

    return {
        "catalog": catalog,
        "v1": v1,
        "v2": v2,
        "aks_v1": deploy(v1, hours(0)),
        "aks_v2": deploy(v2, hours(10)),
        "job_v2": deploy(v2, hours(5), target="databricks-job"),
        "qa_v2": deploy(v2, hours(2), environment="QA"),
    }


def _lanes(catalog):
    return history.deployment_lanes(
        history.placed_records(list(history.deployment_records(catalog)))
    )


def test_each_environment_and_target_is_a_lane_ending_where_the_next_starts(served):
    lanes = _lanes(served["catalog"])
    assert [lane.title for lane in lanes] == ["QA · AKS", "PROD · AKS", "PROD · Databricks job"]
    aks = lanes[1]
    assert [(s.label, s.start, s.end) for s in aks.spans] == [
        ("v1", hours(0), hours(10)),
        ("v2", hours(10), None),
    ]
    assert "v1 in PROD · AKS from 2026-10-01 12:00 UTC until 2026-10-01 22:00 UTC" in (
        aks.spans[0].title
    )


def _served(catalog, at, environment="PROD"):
    return [
        (s.target, s.record.version_label) for s in history.serving_at(catalog, environment, at)
    ]


def test_what_served_before_between_and_after(served):
    catalog = served["catalog"]
    assert _served(catalog, hours(-1)) == []
    assert _served(catalog, hours(1)) == [("aks", "v1")]
    assert _served(catalog, hours(0)) == [("aks", "v1")]  # from the moment it started
    # Two targets at once, each its own version.
    assert _served(catalog, hours(6)) == [("aks", "v1"), ("databricks-job", "v2")]
    assert _served(catalog, hours(10)) == [("aks", "v2"), ("databricks-job", "v2")]
    assert _served(catalog, hours(100)) == [("aks", "v2"), ("databricks-job", "v2")]
    assert _served(catalog, hours(3), environment="QA") == [("aks", "v2")]
    [aks, _] = history.serving_at(catalog, "PROD", hours(6))
    assert aks.since == hours(0) and aks.until == hours(10)


def test_who_approved_comes_from_the_approvals_in_one_go(served, django_assert_max_num_queries):
    record = served["aks_v1"]
    approval = ApprovalRequestFactory(
        run=record.run,
        environment_name="PROD",
        model_version=served["v1"],
        decided_in=DecidedIn.ADO,
        steps=[
            {"status": "approved", "actual": {"name": "Alice Approver"}},
            {"status": "approved", "actual": {"name": "Bob Approver"}},
        ],
    )
    records = list(history.deployment_records(served["catalog"]))
    with django_assert_max_num_queries(2):
        found = history.deployment_annotations(records)
    assert found[record.pk]["approved_by"] == ["Alice Approver", "Bob Approver"]
    assert found[record.pk]["approval_url"] == reverse(
        "approvals:detail", kwargs={"pk": approval.pk}
    )
    assert served["aks_v2"].pk not in found


def test_rows_merge_deployments_and_registry_events_newest_first(served):
    registered = served["v1"].registered_model
    RegistryEvent.objects.create(
        source=registered.source,
        registered_model=registered,
        kind=RegistryEventKind.ALIAS_SET,
        name="champion",
        version=2,
        old_value=1,
        new_value=2,
        previously_seen_at=hours(3),
        observed_at=hours(4),
    )
    placed = history.placed_records(list(history.deployment_records(served["catalog"])))
    rows = history.history_rows(served["catalog"], placed)
    assert [(r.lane, r.version) for r in rows] == [
        ("PROD · AKS", "v2"),
        ("PROD · Databricks job", "v2"),
        ("@champion", "v2"),
        ("QA · AKS", "v2"),
        ("PROD · AKS", "v1"),
    ]
    alias = rows[2]
    assert alias.uncertain and "between 2026-10-01 15:00 and 2026-10-01 16:00 UTC" in alias.window
    # v1 served PROD on AKS and v2 serves it now: a rollback to v1 may be requested.
    assert rows[-1].rollback_version_pk == served["v1"].pk
    assert rows[0].rollback_version_pk is None
    only_prod = history.history_rows(served["catalog"], placed, environment="PROD")
    assert {r.lane for r in only_prod} == {"PROD · AKS", "PROD · Databricks job"}
    aliases = history.history_rows(served["catalog"], placed, kind="alias")
    assert [r.lane for r in aliases] == ["@champion"]


def test_moments_are_read_as_utc():
    assert parse_moment("2026-10-03T14:00") == dt.datetime(2026, 10, 3, 14, 0, tzinfo=dt.UTC)
    assert parse_moment("2026-10-03T16:00:00+02:00") == dt.datetime(
        2026, 10, 3, 14, 0, tzinfo=dt.UTC
    )
    assert parse_moment("2026-10-03T14:00:00Z").tzinfo == dt.UTC
    assert parse_moment("yesterday") is None and parse_moment("2026-13-40T99:00") is None


# --- The page, its CSV, the model page's section ---------------------------------------------


def _page(client, catalog, **params):
    return client.get(reverse("pipelines:model-history", kwargs={"name": catalog.name}), params)


def test_the_history_page_draws_the_lanes_and_answers_the_question(role_client, served):
    client = role_client(Role.DATA_SCIENTIST)
    response = _page(client, served["catalog"], range="all")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-lane="env:PROD:aks"' in html and 'data-lane="env:PROD:databricks-job"' in html
    assert "v1 in PROD · AKS from 2026-10-01 12:00 UTC" in html
    assert 'data-testid="history-table"' in html

    answer = _page(client, served["catalog"], serve_env="PROD", at="2026-10-01T18:00")
    assert answer.status_code == 200
    text = answer.content.decode()
    assert "What served in PROD at 2026-10-01 18:00 UTC" in text
    assert 'data-serving="aks"' in text and 'data-serving="databricks-job"' in text


def test_the_answer_says_what_each_alias_pointed_at_then(role_client, served):
    """The registry's answer beside the deployments': sure between two syncs that saw the
    same state, unknown inside the window in which the alias moved."""
    registered = served["v1"].registered_model
    seen = {"registered_model": registered, "name": "champion"}
    RegistryEventFactory(**seen, version=1, observed_at=hours(0), previously_seen_at=None)
    RegistryEventFactory(
        **seen, version=2, old_value=1, observed_at=hours(12), previously_seen_at=hours(8)
    )
    client = role_client(Role.DATA_SCIENTIST)

    def aliases_then(at: str) -> list[tuple[str, str]]:
        html = _page(client, served["catalog"], serve_env="PROD", at=at).content.decode()
        items = BeautifulSoup(html, "html.parser").select("[data-testid=aliases-answer] li")
        return [(li["data-outcome"], li.get_text(" ", strip=True)) for li in items]

    assert aliases_then("2026-10-01T18:00") == [("version", "@champion pointed at v1")]
    [(outcome, text)] = aliases_then("2026-10-01T22:00")
    assert outcome == "unknown" and "between 2026-10-01 20:00 UTC and 2026-10-02 00:00 UTC" in text
    assert aliases_then("2026-10-02T01:00") == [("version", "@champion pointed at v2")]


def test_a_bad_moment_is_a_form_error_not_a_500(role_client, served):
    client = role_client(Role.APPROVER)
    response = _page(client, served["catalog"], serve_env="PROD", at="not-a-date")
    assert response.status_code == 400
    assert "Not a date and time" in response.content.decode()
    response = _page(client, served["catalog"], serve_env="STAGING", at="2026-10-01T18:00")
    assert response.status_code == 400


def test_an_empty_history_says_what_will_appear(role_client):
    catalog = RegisteredModelFactory(name="demand-forecast").catalog_model
    response = _page(role_client(Role.MANAGER), catalog)
    html = response.content.decode()
    assert 'data-testid="timeline-empty"' in html and 'data-testid="history-empty"' in html


def test_the_history_page_needs_a_role_and_a_known_model(client, role_client, served):
    assert _page(client, served["catalog"]).status_code in (302, 403)
    missing = reverse("pipelines:model-history", kwargs={"name": "no-such-model"})
    assert role_client(Role.APPROVER).get(missing).status_code == 404


def test_the_csv_has_every_row_under_the_filters(role_client, served):
    client = role_client(Role.DATA_SCIENTIST)
    url = reverse("pipelines:model-history-csv", kwargs={"name": served["catalog"].name})
    response = client.get(url, {"environment": "PROD"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:5] == ["time_utc", "lane", "kind", "event", "version"]
    assert [(r[1], r[4]) for r in rows[1:]] == [
        ("PROD · AKS", "v2"),
        ("PROD · Databricks job", "v2"),
        ("PROD · AKS", "v1"),
    ]
    assert rows[-1][8] == hours(10).isoformat()


def test_the_model_page_links_the_history(role_client, served):
    client = role_client(Role.DATA_SCIENTIST)
    response = client.get(served["catalog"].get_absolute_url())
    html = response.content.decode()
    assert reverse("pipelines:model-history", kwargs={"name": "churn-predictor"}) in html
    assert 'data-history-lane="PROD · AKS"' in html


# --- The API ---------------------------------------------------------------------------------


def test_the_history_api_lists_records_newest_first_with_approvers(role_client, served):
    client = role_client(Role.APPROVER)
    url = reverse("api:pipelines:model-history", kwargs={"name": "churn-predictor"})
    body = client.get(url, {"environment": "PROD"}).json()
    assert body["count"] == 3
    first = body["results"][0]
    assert first["lane"] == "PROD · AKS" and first["version"] == "v2" and first["current"]
    last = body["results"][-1]
    assert last["ended_at"].startswith("2026-10-01T22:00") and not last["current"]
    assert last["model_version"]["version"] == 1
    bad = client.get(url, {"environment": "DEV"})
    assert bad.status_code == 400 and "environment" in bad.json()["detail"]


def test_the_serving_api_answers_and_refuses_bad_input(role_client, served):
    client = role_client(Role.APPROVER)
    url = reverse("api:pipelines:model-serving", kwargs={"name": "churn-predictor"})
    body = client.get(url, {"environment": "PROD", "at": "2026-10-01T18:00:00Z"}).json()
    assert [(s["target"], s["version"]) for s in body["serving"]] == [
        ("aks", "v1"),
        ("databricks-job", "v2"),
    ]
    assert body["serving"][0]["until"].startswith("2026-10-01T22:00")
    before = client.get(url, {"environment": "PROD", "at": "2026-09-01T00:00:00Z"}).json()
    assert before["serving"] == []
    for params in ({"environment": "PROD", "at": "soon"}, {"at": "2026-10-01T18:00:00Z"}, {}):
        bad = client.get(url, params)
        assert bad.status_code == 400 and bad.json()["detail"]
    missing = reverse("api:pipelines:model-serving", kwargs={"name": "nope"})
    assert client.get(missing, {"environment": "PROD", "at": "2026-10-01"}).status_code == 404


def test_the_api_needs_a_role(client, served):
    url = reverse("api:pipelines:model-history", kwargs={"name": "churn-predictor"})
    assert client.get(url).status_code in (401, 403)


def test_records_are_append_only(served):
    record = served["aks_v1"]
    record.version_label = "v9"
    with pytest.raises(TypeError):
        record.save()
    assert timezone.now()  # the table itself refuses too (migration 0007)


def test_data_scientists_may_request_a_rollback_to_a_version_that_served(role_client, served):
    base = rollback_base(served["catalog"])
    assert base == "/pipelines/models/churn-predictor/rollback/"
    html = _page(role_client(Role.DATA_SCIENTIST), served["catalog"]).content.decode()
    assert html.count('data-testid="rollback-link"') == 1  # v1 on AKS; v2 serves every lane
    assert f'href="{base}?version={served["v1"].pk}"' in html
    approver = _page(role_client(Role.APPROVER), served["catalog"]).content.decode()
    assert 'data-testid="rollback-link"' not in approver
