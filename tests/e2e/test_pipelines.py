"""A data scientist sees what is deployed and running, asks for a training run, and watches the
runs list in a browser."""

import datetime as dt

import pytest
from django.utils import timezone

from core.roles import Role
from pipelines.models import PipelineKind, RunRequest
from tests.e2e.test_registry_browse import NARROW, OVERFLOWING, _no_page_overflow
from tests.e2e.test_sign_in import _sign_in
from tests.pipelines.factories import (
    AdoProjectFactory,
    PipelineFactory,
    PipelineRunFactory,
    RunStageFactory,
)
from tests.registry.factories import (
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UC_NAME = "main.risk.fraud_detector"
DESKTOP = {"width": 1280, "height": 900}


def _history():
    """fraud_detector in QA and PROD (two targets), a release waiting at PROD, training running."""
    now = timezone.now()
    RegistrySourceFactory(name="central", is_central=True, ui_url="https://mlflow.example")
    AdoProjectFactory(name="mlops", last_sync_succeeded_at=now - dt.timedelta(minutes=1))
    rm = RegisteredModelFactory(name=UC_NAME, aliases={"champion": 2, "challenger": 3})
    versions = {n: ModelVersionFactory(registered_model=rm, version=n) for n in (1, 2, 3)}
    model = rm.catalog_model
    pipelines = {
        kind: PipelineFactory(
            catalog_model=model, kind=kind, name=f"risk-fraud_detector-{kind.replace('_', '-')}"
        )
        for kind in (
            PipelineKind.CI,
            PipelineKind.DATA_CLEANSING,
            PipelineKind.TRAINING,
            PipelineKind.RELEASE,
        )
    }
    for days, kind, trigger in [
        (8, PipelineKind.CI, ""),
        (4, PipelineKind.DATA_CLEANSING, "schedule"),
        (4, PipelineKind.TRAINING, "new-data"),
    ]:
        run = PipelineRunFactory(
            pipeline=pipelines[kind],
            queued_at=now - dt.timedelta(days=days),
            trigger=trigger,
            model_version=versions[3] if kind == PipelineKind.TRAINING else None,
        )
        RunStageFactory(run=run, name="Build", order=0)

    def release(version, target, when, prod_waiting=False):
        run = PipelineRunFactory(
            pipeline=pipelines[PipelineKind.RELEASE],
            model_version=versions[version],
            queued_at=when,
            parameters={"modelVersion": str(version), "deployTarget": target},
            **({"running": True} if prod_waiting else {}),
        )
        RunStageFactory(run=run, name="Build", order=0)
        RunStageFactory(
            run=run, environment="QA", order=1, finished_at=when + dt.timedelta(hours=1)
        )
        RunStageFactory(
            run=run,
            environment="PROD",
            order=2,
            finished_at=when + dt.timedelta(hours=20),
            **({"waiting": True} if prod_waiting else {}),
        )

    release(2, "aks", now - dt.timedelta(days=12))
    release(2, "databricks-job", now - dt.timedelta(days=11))
    release(3, "aks", now - dt.timedelta(hours=5), prod_waiting=True)
    running = PipelineRunFactory(
        pipeline=pipelines[PipelineKind.TRAINING],
        running=True,
        queued_at=now - dt.timedelta(minutes=7),
        trigger="drift",
    )
    RunStageFactory(run=running, name="Train", order=0, running=True)
    RunStageFactory(run=running, name="Register", order=1, not_started=True)
    return running


def test_a_data_scientist_requests_training_and_watches_the_runs(
    page, live_server, make_user, screenshot
):
    make_user(Role.DATA_SCIENTIST, username="e2e-dana", first_name="Dana")
    running = _history()
    base = live_server.url
    _sign_in(page, base, "e2e-dana")

    page.goto(f"{base}/registry/models/{UC_NAME}/")
    deployment = page.get_by_test_id("section-deployment-now")
    prod = deployment.get_by_test_id("deployment-prod").inner_text()
    assert "v2" in prod and "AKS" in prod and "Databricks job" in prod
    assert "v3" in deployment.get_by_test_id("deployment-qa").inner_text()
    assert "Release in progress" in deployment.get_by_test_id("releasing").inner_text()
    pipelines = page.get_by_test_id("section-pipelines")
    table = pipelines.get_by_test_id("pipelines-table").inner_text()
    assert "Training" in table and "running" in table and "waiting for approval" in table
    screenshot(page, "pipelines-model-desktop")

    # Run training: htmx loads the confirmation step under the button
    pipelines.get_by_role("link", name="Run training").click()
    confirm = page.get_by_test_id("trigger-confirm")
    confirm.wait_for()
    assert page.url == f"{base}/registry/models/{UC_NAME}/"  # no page change
    confirm.get_by_label("Note").fill("Retrain on the March data")
    screenshot(page, "pipelines-trigger-confirm")
    confirm.get_by_role("button", name="Confirm: run training").click()
    page.wait_for_url(f"{base}/registry/models/{UC_NAME}/")
    alert = page.get_by_role("alert").filter(has_text="Training requested")
    assert alert.inner_text() == "Training requested: waiting for Azure DevOps"
    request = RunRequest.objects.get()
    assert request.note == "Retrain on the March data" and request.requested_by.username == (
        "e2e-dana"
    )
    assert "Retrain on the March data" in page.get_by_test_id("run-requests").inner_text()
    screenshot(page, "pipelines-model-requested")

    page.set_viewport_size(NARROW)
    page.wait_for_timeout(200)
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    screenshot(page, "pipelines-model-narrow")
    page.set_viewport_size(DESKTOP)

    # The pipelines page: the running training run, polling in place
    page.get_by_role("link", name="Pipelines", exact=True).click()
    page.wait_for_url(f"{base}/pipelines/")
    row = page.locator(f"tr#run-{running.pk}")
    assert row.get_attribute("data-state") == "running"
    assert row.get_attribute("hx-trigger") == "every 10s"
    assert "running" in row.locator(".status-badge").inner_text()
    assert page.locator("tr[data-state=waiting]").count() == 1
    assert "mlops synced" in page.get_by_test_id("freshness").inner_text()
    screenshot(page, "pipelines-runs-desktop")

    # the run finishes: the row refreshes in place and stops polling
    running.state, running.result = "completed", "succeeded"
    running.finished_at = timezone.now()
    running.save()
    running.stages.update(state="completed", result="succeeded")
    row.locator(".status-badge", has_text="succeeded").wait_for(timeout=15000)
    assert row.get_attribute("hx-trigger") is None
    assert page.url == f"{base}/pipelines/"

    page.get_by_label("State").select_option("waiting")
    page.wait_for_url(lambda url: "state=waiting" in url)
    page.get_by_test_id("run-count").filter(has_text="1 run").wait_for()

    page.set_viewport_size(NARROW)
    page.goto(f"{base}/pipelines/")
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    table_box = page.locator(".table-responsive").first
    assert table_box.evaluate("e => e.scrollWidth > e.clientWidth")  # it scrolls, inside
    screenshot(page, "pipelines-runs-narrow")

    page.set_viewport_size(DESKTOP)
    page.locator(f"tr#run-{running.pk} a", has_text="#").click()
    page.wait_for_url(f"{base}/pipelines/runs/{running.pk}/")
    assert page.get_by_test_id("stage-timeline").locator("li").count() == 2
    screenshot(page, "pipelines-run-desktop")
    page.set_viewport_size(NARROW)
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    screenshot(page, "pipelines-run-narrow")

    page.goto(f"{base}/registry/sources/central/models/{UC_NAME}/versions/2/")
    assert "Databricks job" in page.get_by_test_id("deployed-by").inner_text()
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    screenshot(page, "pipelines-version-narrow")
    page.set_viewport_size(DESKTOP)
    screenshot(page, "pipelines-version-desktop")

    page.goto(f"{base}/registry/models/")
    prod_cell = page.locator(f'tr[data-model="{UC_NAME}"] td[data-column=PROD]').inner_text()
    assert "v2 · AKS" in prod_cell and "v2 · Databricks" in prod_cell
    # the deployment columns fit the desktop width: no scrolling inside the table box
    assert page.locator(".table-responsive").first.evaluate("e => e.scrollWidth <= e.clientWidth")
    screenshot(page, "pipelines-model-list-desktop")


def test_the_trigger_confirmation_works_without_javascript(
    browser, live_server, make_user, screenshot
):
    make_user(Role.DATA_SCIENTIST, username="e2e-nojs-ds")
    _history()
    context = browser.new_context(java_script_enabled=False, viewport=NARROW)
    page = context.new_page()
    try:
        base = live_server.url
        _sign_in(page, base, "e2e-nojs-ds")
        page.goto(f"{base}/registry/models/{UC_NAME}/")
        page.get_by_role("link", name="Run training").click()
        page.wait_for_url(lambda url: url.endswith("/trigger/"))
        assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
        screenshot(page, "pipelines-trigger-page-narrow")
        page.get_by_role("button", name="Confirm: run training").click()
        page.wait_for_url(f"{base}/registry/models/{UC_NAME}/")
        assert "Training requested" in page.get_by_role("alert").first.inner_text()
        assert RunRequest.objects.count() == 1
    finally:
        context.close()
