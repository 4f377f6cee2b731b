"""A data scientist opens a model's history and reads its timeline, at 1366 and 390 px."""

import datetime as dt

import pytest
from django.utils import timezone

from core.roles import Role
from registry.models import RegistryEvent, RegistryEventKind
from tests.e2e.test_registry_browse import NARROW, OVERFLOWING, _no_page_overflow
from tests.e2e.test_sign_in import _sign_in
from tests.pipelines.factories import AdoProjectFactory, DeploymentRecordFactory
from tests.registry.factories import (
    ModelVersionFactory,
    RegisteredModelFactory,
    RegistrySourceFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDE = {"width": 1366, "height": 900}


def _history():
    """fraud-detector: PROD on AKS v1 then v2, PROD on a Databricks job v2, QA v1, v2, v3;
    @champion seen moving to v2 between two syncs."""
    now = timezone.now()
    central = RegistrySourceFactory(name="central", is_central=True)
    AdoProjectFactory(name="mlops", last_sync_succeeded_at=now - dt.timedelta(minutes=1))
    rm = RegisteredModelFactory(name="fraud-detector", source=central)
    versions = {n: ModelVersionFactory(registered_model=rm, version=n) for n in (1, 2, 3)}

    def deploy(n, days_ago, target="aks", environment="PROD"):
        DeploymentRecordFactory(
            catalog_model=rm.catalog_model,
            model_version=versions[n],
            environment=environment,
            target=target,
            started_at=now - dt.timedelta(days=days_ago),
        )

    deploy(1, 60, environment="QA")
    deploy(1, 58)
    deploy(2, 20, environment="QA")
    deploy(2, 18)
    deploy(2, 17, target="databricks-job")
    deploy(3, 2, environment="QA")
    for version, seen, before in ((1, 59, None), (2, 19, 19.5)):
        RegistryEvent.objects.create(
            source=central,
            registered_model=rm,
            kind=RegistryEventKind.ALIAS_SET,
            name="champion",
            version=version,
            new_value=version,
            observed_at=now - dt.timedelta(days=seen),
            previously_seen_at=now - dt.timedelta(days=before) if before else None,
        )
    return rm.catalog_model


def test_a_data_scientist_reads_the_timeline(page, live_server, make_user, screenshot):
    make_user(Role.DATA_SCIENTIST, username="e2e-dana", first_name="Dana")
    model = _history()
    base = live_server.url
    _sign_in(page, base, "e2e-dana")
    page.set_viewport_size(WIDE)

    page.goto(f"{base}{model.get_absolute_url()}")
    page.get_by_test_id("history-link").click()
    page.wait_for_url(f"{base}/pipelines/models/fraud-detector/history/")
    timeline = page.get_by_test_id("timeline")
    lanes = timeline.get_by_test_id("timeline-lane")
    titles = [lanes.nth(i).locator(".lane-title").text_content() for i in range(lanes.count())]
    assert titles == ["QA · AKS", "PROD · AKS", "PROD · Databricks job", "@champion"]
    prod = timeline.locator('[data-lane="env:PROD:aks"] [data-testid=timeline-span] title')
    assert prod.count() == 2
    first = prod.first.text_content()
    assert first.startswith("v1 in PROD · AKS from ") and " until " in first
    assert "(serving now)" in prod.nth(1).text_content()
    champion = timeline.locator("[data-lane^='alias:'] [data-testid=timeline-span] title")
    assert any("moved between" in champion.nth(i).text_content() for i in range(champion.count()))
    assert timeline.bounding_box()["width"] > 1000
    screenshot(page, "history-desktop")

    page.get_by_label("Environment", exact=True).first.select_option("PROD")
    page.get_by_label("At (UTC)").fill(
        (timezone.now() - dt.timedelta(days=16)).strftime("%Y-%m-%dT%H:%M")
    )
    page.get_by_role("button", name="Ask").click()
    answer = page.get_by_test_id("serving-answer").inner_text()
    assert "AKS" in answer and "Databricks job" in answer and "v2" in answer
    assert page.get_by_test_id("history-table").locator("tbody tr").count() == 8

    page.set_viewport_size(NARROW)
    page.wait_for_timeout(200)
    assert _no_page_overflow(page), page.evaluate(OVERFLOWING)
    box = page.get_by_test_id("timeline").bounding_box()
    assert box["width"] <= NARROW["width"]  # the chart scales down, the table scrolls
    assert timeline.locator(".lane-title").first.is_visible()
    screenshot(page, "history-narrow")
