"""The managers' home cards: "Portfolio maturity" (the distribution as a bar with its numbers,
the average level's change over four weeks) and "Models whose level dropped"."""

import datetime as dt

import pytest
from bs4 import BeautifulSoup
from django.utils import timezone

from core.roles import Role
from maturity import services
from tests.maturity.factories import SnapshotFactory, set_maturity
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db


def _card(client, key):
    soup = BeautifulSoup(client.get("/").content, "html.parser")
    return soup.select_one(f"[data-card={key}]")


@pytest.fixture
def manager(role_client):
    return role_client(Role.MANAGER)


def test_the_portfolio_card_shows_models_per_level(manager):
    for n, level in enumerate([1, 3, 3, 5]):
        set_maturity(CatalogModelFactory(name=f"m{n}"), assessed=level)
    set_maturity(CatalogModelFactory(name="disputed"), assessed=2, declared=4)
    CatalogModelFactory(name="never")
    card = _card(manager, "maturity-portfolio")
    counts = {
        li["data-level"]: li["data-count"]
        for li in card.select("[data-testid=maturity-portfolio-levels] li")
    }
    assert counts == {"1": "1", "2": "0", "3": "2", "4": "1", "5": "1"}
    bar = card.select("svg[role=img] > rect")
    assert len(bar) == 4  # one segment per level that has models
    assert sum(float(r["width"]) for r in bar) == pytest.approx(100, abs=0.05)
    title = card.select_one("svg[role=img] title").get_text()
    assert "level 3 2" in title
    text = card.get_text(" ", strip=True)
    assert "5 models with a level" in text and "1 not assessed yet" in text
    assert "1 where the declared level differs" in text
    average = card.select_one("[data-testid=maturity-portfolio-average]")
    assert "3.20" in average.get_text()  # (1 + 3 + 3 + 5 + 4) / 5
    assert average.select_one("[data-change=none]") is not None  # no snapshots yet
    assert card.select_one(".empty-state") is None


def test_the_portfolio_card_shows_the_change_since_four_weeks_ago(manager):
    model = set_maturity(CatalogModelFactory(name="m"), assessed=3)
    other = set_maturity(CatalogModelFactory(name="n"), assessed=3)
    this_week = services.week_of(timezone.localdate())
    SnapshotFactory(week=this_week - dt.timedelta(weeks=4), catalog_model=model, assessed_level=1)
    SnapshotFactory(week=this_week - dt.timedelta(weeks=4), catalog_model=other, assessed_level=2)
    SnapshotFactory(week=this_week, catalog_model=model, assessed_level=3)
    SnapshotFactory(week=this_week, catalog_model=other, assessed_level=3)
    card = _card(manager, "maturity-portfolio")
    change = card.select_one("[data-change]")
    assert change["data-change"] == "up"
    assert "+1.50 in 4 weeks" in change.get_text(" ", strip=True)


def test_a_fall_of_the_average_shows_as_down(manager):
    model = set_maturity(CatalogModelFactory(name="m"), assessed=2)
    this_week = services.week_of(timezone.localdate())
    SnapshotFactory(week=this_week - dt.timedelta(weeks=5), catalog_model=model, assessed_level=4)
    SnapshotFactory(week=this_week, catalog_model=model, assessed_level=2)
    change = _card(manager, "maturity-portfolio").select_one("[data-change]")
    assert change["data-change"] == "down" and "-2.00" in change.get_text()


def test_the_portfolio_card_links_to_the_dashboard(manager):
    from django.urls import NoReverseMatch, reverse

    set_maturity(CatalogModelFactory(name="m"), assessed=2)
    footer = _card(manager, "maturity-portfolio").select_one(".card-footer a")
    try:
        expected = reverse("maturity:dashboard")
    except NoReverseMatch:  # pragma: no cover - the dashboard ships in the same issue
        pytest.skip("no dashboard page yet")
    assert footer["href"] == expected
    assert footer.get_text(strip=True) == "Open the maturity dashboard"


def test_the_portfolio_card_is_empty_until_a_model_has_a_level(manager):
    CatalogModelFactory(name="never")
    card = _card(manager, "maturity-portfolio")
    assert card.select_one("[data-testid=maturity-portfolio]") is None
    assert "once models are assessed" in card.select_one(".empty-state").get_text()
    assert card.select_one(".card-footer") is None


def test_the_dropped_card_lists_drops_with_from_and_to(manager):
    now = timezone.now()
    set_maturity(CatalogModelFactory(name="fell"), history=[4], assessed=2, at=now)
    set_maturity(CatalogModelFactory(name="rose"), history=[2], assessed=3, at=now)
    set_maturity(
        CatalogModelFactory(name="fell-long-ago"),
        history=[4],
        assessed=1,
        at=now - dt.timedelta(days=60),
    )
    card = _card(manager, "maturity-dropped")
    rows = card.select("[data-testid=maturity-dropped] li")
    assert [(r["data-model"], r["data-from"], r["data-to"]) for r in rows] == [("fell", "4", "2")]
    assert rows[0].a["href"] == "/registry/models/fell/#maturity"
    assert "L4" in rows[0].get_text() and "L2" in rows[0].get_text()


def test_the_dropped_card_is_empty_without_drops(manager):
    set_maturity(CatalogModelFactory(name="rose"), history=[2], assessed=3)
    card = _card(manager, "maturity-dropped")
    assert card.select_one("[data-testid=maturity-dropped]") is None
    assert "None has dropped" in card.select_one(".empty-state").get_text()


@pytest.mark.parametrize("role", [Role.APPROVER, Role.DATA_SCIENTIST, Role.ADMIN])
def test_other_roles_do_not_get_the_maturity_cards(role, role_client):
    set_maturity(CatalogModelFactory(name="m"), assessed=2)
    client = role_client(role)
    assert _card(client, "maturity-portfolio") is None
    assert _card(client, "maturity-dropped") is None


def test_the_approvals_cards_keep_their_inbox_link(role_client):
    from tests.approvals.factories import ApprovalRequestFactory

    ApprovalRequestFactory(created_on=timezone.now() - dt.timedelta(days=2))
    footer = _card(role_client(Role.MANAGER), "approvals-overdue").select_one(".card-footer a")
    assert footer.get_text(strip=True) == "Open the approvals inbox"
