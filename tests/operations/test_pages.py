"""The operations pages: the inbox and its tabs, filters, order and empty states; the episode
page (timeline, durations, the evaluation in numbers, confirm / decline); the signal page
(raw payload, rule suggestions); the model page section, the approval page's "Why this
version exists", the home card and the nav link; who may see and do what."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from operations.models import (
    Disposition,
    Episode,
    EpisodeOutcome,
    EpisodeState,
    EpisodeStep,
    SignalKind,
    TriggerMode,
    TriggerPolicy,
)
from operations.services import signal_decide
from pipelines.models import PipelineKind
from tests.approvals.factories import ApprovalRequestFactory
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

pytestmark = pytest.mark.django_db

INBOX = "/operations/"
NOW = timezone.now()


def ago(**kwargs):
    return NOW - dt.timedelta(**kwargs)


def _soup(response):
    return BeautifulSoup(response.content.decode().replace("<wbr>", ""), "html.parser")


def _text(response) -> str:
    return " ".join(_soup(response).get_text(" ").split())


def _episode_rows(response) -> list[int]:
    return [int(tr["data-episode"]) for tr in _soup(response).select("tr[data-episode]")]


def _signal_rows(response) -> list[int]:
    return [int(tr["data-signal"]) for tr in _soup(response).select("tr[data-signal]")]


def _episode_url(episode) -> str:
    return reverse("operations:episode", kwargs={"pk": episode.pk})


@pytest.fixture
def fraud():
    return CatalogModelFactory(name="fraud-detector", kind="ml", team="risk")


# --- Access --------------------------------------------------------------------------------


def test_every_portal_role_may_read_and_no_role_is_refused(client, make_user, fraud):
    episode = EpisodeFactory(catalog_model=fraud)
    signal = SignalFactory(catalog_model=None, disposition=Disposition.UNMATCHED)
    urls = [INBOX, _episode_url(episode), reverse("operations:signal", kwargs={"pk": signal.pk})]
    for role in Role.values:
        client.force_login(make_user(role))
        for url in urls:
            assert client.get(url).status_code == 200, (role, url)
    client.force_login(make_user())
    assert all(client.get(url).status_code == 403 for url in urls)
    client.logout()
    assert client.get(INBOX).status_code in (302, 401, 403)


def test_a_manager_may_not_confirm_or_decline_nor_create_a_rule(role_client, fraud):
    episode = EpisodeFactory(catalog_model=fraud, state=EpisodeState.PROPOSED)
    signal = SignalFactory(catalog_model=None, disposition=Disposition.UNMATCHED)
    client = role_client(Role.MANAGER)
    page = client.get(_episode_url(episode))
    assert not _soup(page).select("[data-testid=confirm-button]")
    assert "A data scientist, an approver or an admin confirms" in _text(page)
    confirm = reverse("operations:episode-confirm", kwargs={"pk": episode.pk})
    decline = reverse("operations:episode-decline", kwargs={"pk": episode.pk})
    assert client.post(confirm).status_code == 403
    assert client.post(decline, {"reason": "no"}).status_code == 403
    rule = reverse("operations:signal-rule-create", kwargs={"pk": signal.pk})
    assert client.post(rule, {"field": "alert_rule", "value": "x"}).status_code == 403
    episode.refresh_from_db()
    assert episode.state == EpisodeState.PROPOSED


def test_unknown_ids_are_404(role_client):
    client = role_client(Role.DATA_SCIENTIST)
    assert client.get("/operations/episodes/999999/").status_code == 404
    assert client.get("/operations/signals/999999/").status_code == 404


# --- Inbox ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tab", "says"),
    [
        ("", "No episode is open"),
        ("proposals", "No proposal waits for a confirmation"),
        ("unmatched", "Every signal received names a known model"),
        ("signals", "No signal has been received yet"),
    ],
)
def test_each_tab_says_what_will_appear_when_empty(role_client, tab, says):
    response = role_client(Role.APPROVER).get(INBOX + (f"?tab={tab}" if tab else ""))
    assert response.status_code == 200
    empty = _soup(response).select_one("[data-testid=empty-state]")
    assert empty is not None and says in empty.get_text()
    assert "As of" in _text(response)


def test_open_episodes_stalled_first_then_the_oldest(role_client, fraud):
    old = EpisodeFactory(catalog_model=fraud, opened_at=ago(days=2))
    new = EpisodeFactory(catalog_model=fraud, opened_at=ago(hours=1))
    stalled = EpisodeFactory(
        catalog_model=fraud,
        opened_at=ago(minutes=5),
        state=EpisodeState.EVALUATING,
        stalled_reason="No version registered 60 min after the run succeeded.",
    )
    EpisodeFactory(catalog_model=fraud, state=EpisodeState.CLOSED, outcome="reached_prod")
    response = role_client(Role.DATA_SCIENTIST).get(INBOX)
    assert _episode_rows(response) == [stalled.pk, old.pk, new.pk]
    soup = _soup(response)
    assert soup.select_one(f"tr[data-episode='{stalled.pk}'] .stalled-badge")
    assert "No version registered 60 min" in soup.select_one("[data-testid=stalled-reason]").text
    assert soup.select_one("[data-testid=tab-count-episodes]").text == "3"
    assert "1 stalled" in soup.select_one("[data-testid=tab-count-stalled]").text
    # Sorting by model keeps the filters and drops the stall-first order.
    closed = role_client(Role.DATA_SCIENTIST).get(INBOX + "?state=closed")
    assert len(_episode_rows(closed)) == 1


def test_episode_filters_are_in_the_url(role_client, fraud):
    churn = CatalogModelFactory(name="churn-predictor")
    mine = EpisodeFactory(catalog_model=fraud, stalled_reason="Run failed to start")
    EpisodeFactory(catalog_model=churn)
    client = role_client(Role.APPROVER)
    assert _episode_rows(client.get(INBOX + "?model=fraud-detector")) == [mine.pk]
    assert _episode_rows(client.get(INBOX + "?stalled=1")) == [mine.pk]
    assert len(_episode_rows(client.get(INBOX + "?stalled=0"))) == 1
    bad = client.get(INBOX + "?state=nonsense&sort=bogus")
    assert bad.status_code == 200 and _soup(bad).select_one("[data-testid=filter-errors]")
    nothing = client.get(INBOX + "?model=nope")
    assert "Nothing matches these filters" in _text(nothing)


def test_proposals_unmatched_and_signals_tabs(role_client, fraud):
    proposal = EpisodeFactory(catalog_model=fraud, state=EpisodeState.PROPOSED)
    EpisodeFactory(catalog_model=fraud)
    unmatched = SignalFactory(catalog_model=None, disposition=Disposition.UNMATCHED, title="x")
    drift = SignalFactory(catalog_model=fraud, received_at=ago(minutes=2))
    arrival = SignalFactory(
        catalog_model=fraud, kind=SignalKind.DATA_ARRIVAL, received_at=ago(minutes=1)
    )
    client = role_client(Role.DATA_SCIENTIST)
    assert _episode_rows(client.get(INBOX + "?tab=proposals")) == [proposal.pk]
    assert _signal_rows(client.get(INBOX + "?tab=unmatched")) == [unmatched.pk]
    everything = client.get(INBOX + "?tab=signals")
    assert _signal_rows(everything)[0] == unmatched.pk  # newest first
    assert set(_signal_rows(everything)) == {unmatched.pk, drift.pk, arrival.pk}
    assert _signal_rows(client.get(INBOX + "?tab=signals&kind=data_arrival")) == [arrival.pk]
    oldest = client.get(INBOX + "?tab=signals&sort=received")
    assert _signal_rows(oldest)[0] == drift.pk
    soup = _soup(everything)
    assert soup.select_one("[data-testid=tab-count-unmatched]").text == "1"
    assert soup.select_one("[data-testid=tab-count-proposals]").text == "1"


def test_the_inbox_pages_with_counts(role_client, fraud, monkeypatch):
    from operations import views

    for _ in range(3):
        EpisodeFactory(catalog_model=fraud)
    monkeypatch.setattr(views, "PER_PAGE", 2)
    response = role_client(Role.ADMIN).get(INBOX + "?page=2")
    assert len(_episode_rows(response)) == 1
    assert "Showing 3\u20133 of 3" in _text(response)


# --- Episode page --------------------------------------------------------------------------


def test_the_episode_page_shows_the_chain_durations_and_numbers(role_client, fraud):
    registered = RegisteredModelFactory(name="fraud-detector", catalog_model=fraud)
    champion = ModelVersionFactory(registered_model=registered, version=3)
    challenger = ModelVersionFactory(registered_model=registered, version=4)
    run = PipelineFactory(catalog_model=fraud, kind=PipelineKind.TRAINING).runs.create(
        ado_id=77, name="20250301.1", state="completed", result="succeeded"
    )
    t0 = ago(hours=5)
    qa = ApprovalRequestFactory(model_version=challenger)
    episode = EpisodeFactory(
        catalog_model=fraud,
        state=EpisodeState.IN_QA,
        signal_at=t0,
        opened_at=t0,
        run=run,
        run_started_at=t0 + dt.timedelta(minutes=2),
        run_finished_at=t0 + dt.timedelta(minutes=47),
        challenger=challenger,
        champion=champion,
        version_registered_at=t0 + dt.timedelta(minutes=50),
        qa_approval=qa,
        qa_requested_at=t0 + dt.timedelta(minutes=55),
        evaluation=PROMOTE_EVALUATION,
    )
    signal = SignalFactory(catalog_model=fraud, episode=episode, title="auc drift <b>x</b>")
    episode.first_signal = signal
    episode.save()
    event(episode, EpisodeStep.SIGNAL, "Drift signal from Azure Monitor.", at=t0)
    event(episode, EpisodeStep.RUN_STARTED, "Run started.", at=t0 + dt.timedelta(minutes=2))
    event(episode, EpisodeStep.EVALUATED, "v4 beats v3.", at=t0 + dt.timedelta(minutes=51))

    response = role_client(Role.MANAGER).get(_episode_url(episode))
    soup = _soup(response)
    assert [li["data-step"] for li in soup.select("[data-testid=timeline] li")] == [
        "signal",
        "run_started",
        "evaluated",
    ]
    assert soup.select_one("[data-testid=timeline] time")["title"].endswith("UTC")
    durations = {
        tr["data-duration"]: tr.select_one("td").get_text(strip=True)
        for tr in soup.select("[data-duration]")
    }
    assert durations == {
        "signal_to_run_start": "2 min",
        "training": "45 min",
        "version_to_qa": "5 min",
        "qa_to_prod": "—",
    }
    evaluation = soup.select_one("[data-testid=evaluation]").get_text(" ")
    for shown in ("auc", "0.912", "0.897", "+0.015", "+1.67%", "promote", "0.005", "1.00%"):
        assert shown in evaluation, shown
    links = soup.select_one("[data-testid=episode-links]")
    assert links.select_one("[data-testid=link-run]")["href"].endswith(f"/runs/{run.pk}/")
    assert links.select_one("[data-testid=link-version]") is not None
    assert links.select_one("[data-testid=link-qa]")["href"] == f"/approvals/{qa.pk}/"
    assert "auc drift <b>x</b>" in soup.select_one("[data-testid=episode-signals]").get_text()
    assert "<b>x</b>" not in response.content.decode()  # escaped


def test_an_episode_not_yet_evaluated_says_what_comes(role_client, fraud):
    episode = EpisodeFactory(catalog_model=fraud)
    text = _text(role_client(Role.APPROVER).get(_episode_url(episode)))
    assert "Once the run registers a new version" in text
    assert "No step recorded yet" in text


@pytest.fixture
def proposal(fraud):
    PipelineFactory(catalog_model=fraud, kind=PipelineKind.TRAINING, name="risk-fraud-train")
    TriggerPolicy.objects.create(catalog_model=fraud, mode=TriggerMode.CONFIRM)
    signal = SignalFactory(catalog_model=fraud, disposition=Disposition.PENDING)
    signal_decide(signal)
    return Episode.objects.get(state=EpisodeState.PROPOSED)


def test_a_data_scientist_confirms_a_proposal(client, make_user, proposal):
    client.force_login(make_user(Role.DATA_SCIENTIST))
    page = client.get(_episode_url(proposal))
    assert _soup(page).select_one("[data-testid=confirm-button]")
    url = reverse("operations:episode-confirm", kwargs={"pk": proposal.pk})
    response = client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == _episode_url(proposal)
    assert "Confirmed" in _text(response)
    proposal.refresh_from_db()
    assert proposal.state == EpisodeState.REQUESTED
    again = client.post(url)
    assert again.status_code == 409
    assert "not waiting for a confirmation" in _text(again)


def test_declining_needs_a_reason(client, make_user, proposal):
    client.force_login(make_user(Role.APPROVER))
    url = reverse("operations:episode-decline", kwargs={"pk": proposal.pk})
    empty = client.post(url, {"reason": "  "})
    assert empty.status_code == 400 and "Say why the run is declined" in _text(empty)
    proposal.refresh_from_db()
    assert proposal.state == EpisodeState.PROPOSED
    client.post(url, {"reason": "Known data outage, retrain tomorrow"})
    proposal.refresh_from_db()
    assert proposal.state == EpisodeState.CLOSED and proposal.outcome == EpisodeOutcome.DECLINED
    assert "Known data outage" in _text(client.get(_episode_url(proposal)))


def test_confirm_needs_csrf(make_user, proposal):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(Role.DATA_SCIENTIST))
    url = reverse("operations:episode-confirm", kwargs={"pk": proposal.pk})
    assert client.post(url).status_code == 403
    assert client.get(url).status_code == 405


# --- Signal page ---------------------------------------------------------------------------


def test_the_signal_page_shows_the_raw_payload_pretty_and_escaped(role_client, fraud):
    raw = RawSignalFactory(body=json.dumps({"alert": "<script>alert(1)</script>", "n": 1}))
    signal = SignalFactory(raw=raw, catalog_model=fraud)
    response = role_client(Role.DATA_SCIENTIST).get(
        reverse("operations:signal", kwargs={"pk": signal.pk})
    )
    pre = _soup(response).select_one("[data-testid=raw-payload]").get_text()
    assert '"alert": "<script>alert(1)</script>"' in pre and '\n  "n": 1' in pre
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert not _soup(response).select("[data-testid=rule-suggestions]")


def test_an_unmatched_signal_offers_its_rules_and_an_admin_creates_one(client, make_user, fraud):
    pytest.importorskip("operations.services.matching")
    from operations.models import MatchRule

    signal = SignalFactory(
        catalog_model=None,
        disposition=Disposition.UNMATCHED,
        format="azure_monitor",
        attributes={"alert_rule": "fraud-drift"},
        source_ref="fraud-drift",
    )
    url = reverse("operations:signal", kwargs={"pk": signal.pk})
    client.force_login(make_user(Role.DATA_SCIENTIST))
    as_ds = _soup(client.get(url))
    assert as_ds.select_one("[data-testid=rule-suggestions]")
    assert not as_ds.select("[data-testid=rule-form]")
    client.force_login(make_user(Role.ADMIN))
    page = _soup(client.get(url))
    forms = page.select("[data-testid=rule-form]")
    assert forms, "an admin sees a Create this rule form"
    field = forms[0].select_one("input[name=field]")["value"]
    value = forms[0].select_one("input[name=value]")["value"]
    create = reverse("operations:signal-rule-create", kwargs={"pk": signal.pk})
    missing = client.post(create, {"field": field, "value": value})
    assert missing.status_code == 400 and "Choose the model" in _text(missing)
    response = client.post(
        create, {"field": field, "value": value, "catalog_model": fraud.name}, follow=True
    )
    assert "Rule created" in _text(response)
    assert MatchRule.objects.filter(field=field, value=value, catalog_model=fraud).exists()
    signal.refresh_from_db()
    assert signal.catalog_model == fraud
    duplicate = client.post(create, {"field": field, "value": value, "catalog_model": fraud.name})
    assert duplicate.status_code == 400


# --- Other pages' hooks --------------------------------------------------------------------


def test_the_model_page_has_an_operations_section(role_client, fraud):
    TriggerPolicy.objects.create(
        catalog_model=fraud, mode=TriggerMode.AUTOMATIC, cooldown_minutes=90
    )
    SignalFactory(catalog_model=fraud, received_at=ago(days=1))
    SignalFactory(catalog_model=fraud, received_at=ago(days=100))  # outside the 90 days
    EpisodeFactory(catalog_model=fraud, opened_at=ago(days=1))
    from operations.models import ModelOperations

    ModelOperations.objects.create(
        catalog_model=fraud, last_monitoring_signal_at=timezone.now() - dt.timedelta(hours=2)
    )
    response = role_client(Role.DATA_SCIENTIST).get(fraud.get_absolute_url())
    section = _soup(response).select_one("[data-testid=model-operations]")
    assert section is not None
    text = " ".join(section.get_text(" ").split())
    assert "1 signal, 1 episode" in text
    assert "Monitoring last heard from: 2 hours ago" in text
    assert "90 min / 15 min" in text and "Automatic" in text
    assert section.select_one("[data-testid=ops-inbox-link]")["href"].startswith(
        "/operations/?model=fraud-detector"
    )


def test_a_model_without_operations_says_so(role_client, fraud):
    response = role_client(Role.MANAGER).get(fraud.get_absolute_url())
    section = _soup(response).select_one("[data-testid=model-operations]")
    text = section.get_text(" ")
    assert "No signal named fraud-detector" in text and "Built-in default" in text
    assert "never" in section.select_one("[data-testid=monitoring-heard]").get_text()


def test_the_approval_page_says_why_the_version_exists(role_client, fraud):
    registered = RegisteredModelFactory(name="fraud-detector", catalog_model=fraud)
    challenger = ModelVersionFactory(registered_model=registered, version=4)
    approval = ApprovalRequestFactory(model_version=challenger)
    other = ApprovalRequestFactory()
    signal = SignalFactory(
        catalog_model=fraud,
        format="azure_monitor",
        title="fraud-detector drift",
        observed_at=ago(hours=2),
    )
    episode = EpisodeFactory(
        catalog_model=fraud,
        challenger=challenger,
        first_signal=signal,
        evaluation=PROMOTE_EVALUATION,
        state=EpisodeState.IN_QA,
    )
    client = role_client(Role.APPROVER)
    page = _soup(client.get(reverse("approvals:detail", kwargs={"pk": approval.pk})))
    why = page.select_one("[data-testid=evidence] [data-testid=approval-why]")
    assert why is not None
    text = " ".join(why.get_text().split())
    assert (
        "Retrained on a drift signal from Azure Monitor (fraud-detector drift, 2 hours ago)" in text
    )
    assert "beat the champion v3 on auc 0.912 vs 0.897 (+0.015, +1.67%)" in text
    assert why.select_one("[data-testid=approval-why-link]")["href"] == _episode_url(episode)
    unrelated = _soup(client.get(reverse("approvals:detail", kwargs={"pk": other.pk})))
    assert unrelated.select_one("[data-testid=approval-why]") is None


def test_home_card_and_nav(role_client, fraud):
    EpisodeFactory(catalog_model=fraud, stalled_reason="Approval overdue")
    EpisodeFactory(catalog_model=fraud, state=EpisodeState.PROPOSED)
    client = role_client(Role.DATA_SCIENTIST)
    home = _soup(client.get("/"))
    card = home.select_one("[data-card=operations-open]")
    text = " ".join(card.get_text().split())
    assert "2 episodes open, 1 stalled, 1 proposal waiting" in text
    assert any(a.get_text(strip=True) == "Operations" for a in home.select(".navbar .nav-link"))
    manager_home = _soup(role_client(Role.MANAGER).get("/"))
    assert manager_home.select_one("[data-card=operations-open]") is None
    assert any(
        a.get_text(strip=True) == "Operations" for a in manager_home.select(".navbar .nav-link")
    )
