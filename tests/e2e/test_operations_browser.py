"""The operations pages in a browser (Debian's chromium through Playwright, the session browser
of tests/e2e/conftest.py), at a desktop and a phone width, with no page wider than the screen;
the screenshots go to test-artifacts/ for people to look at (docs/screenshots/issue-15/ keeps a
set)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from core.roles import Role
from operations.models import (
    Disposition,
    EpisodeState,
    EpisodeStep,
    ModelOperations,
    SignalKind,
    TriggerMode,
    TriggerPolicy,
)
from tests.approvals.factories import ApprovalRequestFactory
from tests.e2e.test_sign_in import _sign_in
from tests.operations.factories_pages import (
    PROMOTE_EVALUATION,
    EpisodeFactory,
    RawSignalFactory,
    SignalFactory,
    event,
)
from tests.pipelines.factories import PipelineFactory
from tests.registry.factories import (
    CatalogModelFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"1366": {"width": 1366, "height": 900}, "390": {"width": 390, "height": 844}}


def _seed():
    now = timezone.now()
    fraud = CatalogModelFactory(name="fraud-detector", kind="ml", team="risk", serving="real_time")
    churn = CatalogModelFactory(name="churn-predictor", kind="ml", team="growth")
    registered = RegisteredModelFactory(name="fraud-detector", catalog_model=fraud)
    champion = ModelVersionFactory(registered_model=registered, version=3)
    challenger = ModelVersionFactory(registered_model=registered, version=4)
    pipeline = PipelineFactory(catalog_model=fraud, name="risk-fraud-train")
    run = pipeline.runs.create(
        ado_id=4711, name="20260301.3", state="completed", result="succeeded"
    )
    TriggerPolicy.objects.create(
        catalog_model=fraud, mode=TriggerMode.AUTOMATIC, cooldown_minutes=120
    )
    ModelOperations.objects.create(
        catalog_model=fraud,
        last_signal_at=now,
        last_monitoring_signal_at=now - dt.timedelta(hours=2),
    )
    for days in (3, 10, 17, 17, 30, 45, 60):
        SignalFactory(catalog_model=fraud, received_at=now - dt.timedelta(days=days))
    t0 = now - dt.timedelta(hours=5)
    signal = SignalFactory(
        catalog_model=fraud,
        format="azure_monitor",
        title="fraud-detector drift",
        observed_at=t0,
        received_at=t0,
    )
    qa = ApprovalRequestFactory(model_version=challenger)
    episode = EpisodeFactory(
        catalog_model=fraud,
        state=EpisodeState.IN_QA,
        first_signal=signal,
        signal_at=t0,
        opened_at=t0,
        pipeline=pipeline,
        run=run,
        run_requested_at=t0 + dt.timedelta(minutes=1),
        run_started_at=t0 + dt.timedelta(minutes=2),
        run_finished_at=t0 + dt.timedelta(minutes=47),
        challenger=challenger,
        champion=champion,
        version_registered_at=t0 + dt.timedelta(minutes=50),
        qa_approval=qa,
        qa_requested_at=t0 + dt.timedelta(minutes=58),
        evaluation=PROMOTE_EVALUATION,
        policy={
            "scope": "Policy for fraud-detector",
            "mode": "automatic",
            "cooldown_minutes": 120,
            "dedupe_window_minutes": 15,
            "max_runs_per_day": 3,
        },
    )
    signal.episode = episode
    signal.save()
    steps = [
        (0, EpisodeStep.SIGNAL, "Drift signal from Azure Monitor: fraud-detector drift (Sev2)."),
        (1, EpisodeStep.RUN_REQUESTED, "Training run of risk-fraud-train requested."),
        (2, EpisodeStep.RUN_STARTED, "Run 20260301.3 started in ADO."),
        (47, EpisodeStep.RUN_FINISHED, "Run 20260301.3 succeeded."),
        (50, EpisodeStep.VERSION, "Version 4 registered by run 20260301.3."),
        (
            51,
            EpisodeStep.EVALUATED,
            "v4 auc 0.912 against the champion v3's 0.897 (+0.015, +1.67%): promote.",
        ),
        (52, EpisodeStep.RELEASE_REQUESTED, "Release of v4 requested."),
        (58, EpisodeStep.QA_REQUESTED, "QA approval requested."),
    ]
    for minutes, step, message in steps:
        event(episode, step, message, at=t0 + dt.timedelta(minutes=minutes))
    EpisodeFactory(
        catalog_model=churn,
        state=EpisodeState.EVALUATING,
        opened_at=now - dt.timedelta(hours=4),
        stalled_reason="No version registered 60 min after the run succeeded.",
        stalled_since=now - dt.timedelta(hours=2),
    )
    EpisodeFactory(
        catalog_model=churn, state=EpisodeState.PROPOSED, trigger_kind=SignalKind.DATA_ARRIVAL
    )
    raw = RawSignalFactory(
        format="event_grid",
        body=json.dumps(
            [
                {
                    "id": "e1",
                    "eventType": "Microsoft.Storage.BlobCreated",
                    "subject": "/blobServices/default/containers/landing/blobs/"
                    "sales/2026-03-01.parquet",
                    "data": {
                        "url": "https://acct.blob.core.windows.net/landing/sales/2026-03-01.parquet"
                    },
                }
            ]
        ),
    )
    unmatched = SignalFactory(
        raw=raw,
        catalog_model=None,
        format="event_grid",
        kind=SignalKind.DATA_ARRIVAL,
        disposition=Disposition.UNMATCHED,
        disposition_note="No model named; no match rule covers it.",
        title="Blob created: landing/sales/2026-03-01.parquet",
        source_ref="landing/sales/2026-03-01.parquet",
        attributes={"blob_path": "landing/sales/2026-03-01.parquet"},
    )
    return fraud, episode, unmatched


def _wider_than_the_screen(page) -> list[str]:
    """The elements that stick out past the right edge (empty when the page fits)."""
    return page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            if (document.documentElement.scrollWidth <= width + 1) return [];
            return [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > width + 1)
                .slice(0, 5)
                .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''));
        }"""
    )


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_operations_pages_fit_a_laptop_and_a_phone(
    browser, live_server, make_user, screenshot, width
):
    fraud, episode, unmatched = _seed()
    make_user(Role.ADMIN, Role.DATA_SCIENTIST, username="ops-admin", first_name="Olga")
    pages = {
        "inbox": "/operations/",
        "unmatched-tab": "/operations/?tab=unmatched",
        "signals-tab": "/operations/?tab=signals",
        "episode": f"/operations/episodes/{episode.pk}/",
        "model-section": fraud.get_absolute_url() + "#operations",
        "unmatched-signal": f"/operations/signals/{unmatched.pk}/",
    }
    context = browser.new_context(viewport=WIDTHS[width])
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, "ops-admin")
        for name, url in pages.items():
            page.goto(live_server.url + url)
            screenshot(page, f"operations-{name}-{width}")
            assert _wider_than_the_screen(page) == [], f"{name} is wider than {width} px"
        # What each page is for, readable at this width.
        page.goto(live_server.url + pages["inbox"])
        assert page.get_by_role("link", name="fraud-detector").first.is_visible()
        page.goto(live_server.url + pages["episode"])
        assert page.get_by_text("v4 auc 0.912").first.is_visible()
        page.goto(live_server.url + pages["unmatched-signal"])
        assert page.get_by_text("landing/sales/2026-03-01.parquet").first.is_visible()
    finally:
        context.close()
