"""The maturity dashboard, its CSV export and the criteria page: who may read them, what the
filters, switch, summary, charts' number tables and models table show, and bad input."""

import csv
import datetime as dt
import io
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from core.roles import Role
from maturity import services, views
from maturity.criteria import CRITERIA, CRITERIA_BY_CODE
from maturity.models import Result
from tests.maturity.factories import (
    AssessedRecordFactory,
    DeclaredRecordFactory,
    SnapshotFactory,
    results_for,
    set_maturity,
)
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("maturity:dashboard")
CSV_URL = reverse("maturity:dashboard-csv")
CRITERIA_URL = reverse("maturity:criteria")
ALL_ROLES = [Role.MANAGER, Role.APPROVER, Role.DATA_SCIENTIST, Role.ADMIN]
REASON = "Retraining on new data runs in Databricks workflows the portal cannot see."


def _model(name, team, kind, serving, description=""):
    return CatalogModelFactory(
        name=name, team=team, kind=kind, serving=serving, description=description
    )


def _not_measured(catalog_model, level):
    """An assessment at ``level`` whose next level's criteria could not be measured."""
    AssessedRecordFactory(
        catalog_model=catalog_model,
        level=level,
        results=results_for(level, next_result=Result.NOT_MEASURED),
    )
    services.model_maturity_rebuild(catalog_model_ids=[catalog_model.pk])


@pytest.fixture
def portfolio():
    """Five models over three teams, one declared above its assessment, one unassessed."""
    fraud = _model("fraud-detector", "risk", "ml", "real_time", "Card fraud scores")
    set_maturity(fraud, assessed=3, declared=4)  # declared L4, assessed L3: disagreement
    churn = _model("churn-predictor", "growth", "ml", "batch")
    _not_measured(churn, 2)
    demand = _model("demand-forecast", "growth", "ml", "batch")
    set_maturity(demand, assessed=5)
    rules = _model("credit-limit-rules", "operations", "rule_based", "batch")
    set_maturity(rules, assessed=1)
    _model("new-model", "risk", "ml", "batch")  # never assessed
    return {"fraud": fraud, "churn": churn, "demand": demand, "rules": rules}


@pytest.fixture
def manager(role_client):
    return role_client(Role.MANAGER)


def _names(response) -> list[str]:
    """The models in the table, in order."""
    return re.findall(r'<tr data-model="([^"]+)"', response.content.decode())


def _row(response, name: str) -> str:
    html = response.content.decode()
    match = re.search(rf'<tr data-model="{re.escape(name)}".*?</tr>', html, re.S)
    assert match, f"{name} is not in the table"
    return match.group(0)


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def _chart_data(response, element_id: str) -> dict:
    html = response.content.decode()
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html)
    assert match, f"no {element_id} on the page"
    return json.loads(match.group(1))


def _table(response, testid: str) -> list[list[str]]:
    """The cells (text only) of a numbers table, row by row, header row first."""
    html = response.content.decode()
    match = re.search(rf'<table[^>]*data-testid="{testid}".*?</table>', html, re.S)
    assert match, f"no {testid} table"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", match.group(0), re.S)
    cells = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in rows]
    return [[" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in row] for row in cells]


# --- Access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [DASHBOARD, CSV_URL, CRITERIA_URL])
def test_anonymous_visitors_are_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_role_reads_the_dashboard_the_csv_and_the_criteria(role_client, portfolio, role):
    client = role_client(role)
    page = client.get(DASHBOARD)
    assert page.status_code == 200
    assert "fraud-detector" in _names(page)
    assert client.get(CSV_URL).status_code == 200
    assert client.get(CRITERIA_URL).status_code == 200
    nav = re.findall(r'<a class="nav-link[^"]*" href="([^"]+)"', page.content.decode())
    assert DASHBOARD in nav


def test_a_user_without_a_role_is_refused(client, make_user):
    client.force_login(make_user())
    for url in (DASHBOARD, CSV_URL, CRITERIA_URL):
        assert client.get(url).status_code == 403


def test_the_pages_only_answer_get(manager):
    for url in (DASHBOARD, CSV_URL, CRITERIA_URL):
        assert manager.post(url).status_code == 405


# --- Summary, charts and their numbers ---------------------------------------------------------


@pytest.mark.sqlite
def test_summary_cards_count_the_portfolio(manager, portfolio):
    html = manager.get(DASHBOARD).content.decode()

    def card(name):
        return re.search(rf'data-testid="summary-{name}">(.*?)</div>', html, re.S).group(1)

    assert card("assessed") == "4"
    assert card("average") == "L3.0"  # counted levels 4 (declared), 2, 5, 1
    assert ">1</a>" in card("disagreements")
    assert "disagreement=1" in card("disagreements")
    assert card("unassessed") == "1"
    assert card("change") == "—"  # no snapshots yet


@pytest.mark.sqlite
def test_the_change_over_four_weeks_comes_from_the_weekly_snapshots(manager, portfolio):
    this_week = services.week_of(timezone.localdate())
    four_ago = this_week - dt.timedelta(weeks=4)
    for model, then, now in [(portfolio["fraud"], 2, 4), (portfolio["demand"], 3, 5)]:
        SnapshotFactory(catalog_model=model, week=four_ago, assessed_level=then)
        SnapshotFactory(catalog_model=model, week=this_week, assessed_level=now)
    html = manager.get(DASHBOARD).content.decode()
    change = re.search(r'data-testid="summary-change">(.*?)</div>', html, re.S).group(1)
    assert "+2" in change and "bi-arrow-up-right" in change


@pytest.mark.sqlite
def test_the_distribution_chart_has_its_numbers_in_a_table_beneath(manager, portfolio):
    response = manager.get(DASHBOARD)
    html = response.content.decode()
    assert 'id="distribution-chart"' in html
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in html
    assert 'src="/static/maturity/dashboard.js"' in html
    data = _chart_data(response, "distribution-data")
    assert data["by"] == "team"
    assert data["labels"] == ["L1", "L2", "L3", "L4", "L5"]
    by_team = {d["label"]: d["data"] for d in data["datasets"]}
    assert by_team == {
        "growth": [0, 1, 0, 0, 1],
        "operations": [1, 0, 0, 0, 0],
        "risk": [0, 0, 0, 1, 0],
    }
    table = _table(response, "distribution-table")
    assert table[0] == ["Level", "growth", "operations", "risk", "Total"]
    assert table[1] == ["L1 DevOps but no MLOps", "0", "1", "0", "1"]
    assert table[4] == ["L4 Automated training after new data arrives", "0", "0", "1", "1"]
    assert table[-1] == ["Total", "2", "1", "1", "4"]
    assert "Not counted: 1 model not assessed yet." in html


@pytest.mark.sqlite
def test_the_distribution_switches_between_team_and_kind_and_keeps_the_filters(manager, portfolio):
    response = manager.get(DASHBOARD, {"serving": "batch", "by": "kind"})
    data = _chart_data(response, "distribution-data")
    assert data["by"] == "kind"
    assert {d["label"]: d["data"] for d in data["datasets"]} == {
        "ML model": [0, 1, 0, 0, 1],
        "Rule-based model": [1, 0, 0, 0, 0],
    }
    assert _table(response, "distribution-table")[0] == [
        "Level",
        "ML model",
        "Rule-based model",
        "Total",
    ]
    html = response.content.decode()
    switch = re.search(r'data-testid="distribution-switch">(.*?)</nav>', html, re.S).group(1)
    links = dict(re.findall(r'href="([^"]+)"[^>]*data-by="(\w+)"', switch))
    assert {v: k for k, v in links.items()} == {
        "team": f"{DASHBOARD}?serving=batch",
        "kind": f"{DASHBOARD}?serving=batch&amp;by=kind",
    }
    assert 'aria-current="true" data-by="kind"' in switch
    # the filter form keeps the grouping when it is submitted
    assert '<input type="hidden" name="by" value="kind">' in html


@pytest.mark.sqlite
def test_the_trend_chart_has_its_numbers_in_a_table_beneath(manager, portfolio):
    this_week = services.week_of(timezone.localdate())
    last_week = this_week - dt.timedelta(weeks=1)
    SnapshotFactory(catalog_model=portfolio["fraud"], week=last_week, assessed_level=2)
    SnapshotFactory(catalog_model=portfolio["demand"], week=last_week, assessed_level=4)
    SnapshotFactory(catalog_model=portfolio["fraud"], week=this_week, assessed_level=3)
    SnapshotFactory(catalog_model=portfolio["demand"], week=this_week, assessed_level=5)
    response = manager.get(DASHBOARD)
    data = _chart_data(response, "trend-data")
    assert data["labels"] == [last_week.isoformat(), this_week.isoformat()]
    assert {d["label"]: d["data"] for d in data["datasets"]} == {
        "L2": [1, 0],
        "L3": [0, 1],
        "L4": [1, 0],
        "L5": [0, 1],
    }
    assert data["averages"] == [3.0, 4.0]
    assert 'id="trend-chart"' in response.content.decode()
    table = _table(response, "trend-table")
    assert table[0] == ["Week of", "L0", "L1", "L2", "L3", "L4", "L5", "Total", "Average"]
    # newest week first
    assert table[1] == [this_week.isoformat(), "0", "0", "0", "1", "0", "1", "2", "4.00"]
    assert table[2] == [last_week.isoformat(), "0", "0", "1", "0", "1", "0", "2", "3.00"]


@pytest.mark.sqlite
def test_the_trend_follows_the_filters_including_disagreement(manager, portfolio):
    week = services.week_of(timezone.localdate())
    SnapshotFactory(catalog_model=portfolio["fraud"], week=week, assessed_level=3, declared_level=4)
    SnapshotFactory(catalog_model=portfolio["demand"], week=week, team="growth", assessed_level=5)
    data = _chart_data(manager.get(DASHBOARD, {"disagreement": "1"}), "trend-data")
    assert data["datasets"] == [{"label": "L4", "data": [1]}]
    data = _chart_data(manager.get(DASHBOARD, {"team": "growth"}), "trend-data")
    assert data["datasets"] == [{"label": "L5", "data": [1]}]
    response = manager.get(DASHBOARD, {"level": "unassessed"})
    assert 'data-testid="trend-empty"' in response.content.decode()


def test_without_snapshots_the_trend_says_how_it_will_fill(manager, portfolio):
    html = manager.get(DASHBOARD).content.decode()
    assert 'data-testid="trend-empty"' in html
    assert 'id="trend-chart"' not in html


# --- Models table ----------------------------------------------------------------------------


def test_the_table_shows_levels_the_next_criterion_and_its_fix(manager, portfolio):
    response = manager.get(DASHBOARD)
    assert _names(response) == [
        "churn-predictor",
        "credit-limit-rules",
        "demand-forecast",
        "fraud-detector",
    ]
    fraud = _row(response, "fraud-detector")
    model_url = reverse("registry:model-detail", kwargs={"name": "fraud-detector"})
    assert f'href="{model_url}#maturity"' in fraud
    assert 'data-disagreement="true"' in fraud
    assert 'data-testid="disagreement"' in fraud
    assert f"Reason: {REASON}" in fraud  # the declaration's reason on hover
    assert re.search(r'data-cell="assessed">\s*L3', fraud)
    assert re.search(r'data-cell="declared">\s*<span[^>]*>L4</span>', fraud)
    assert "maturity-level-4" in fraud  # the level that counts is the declared one
    data_triggered = CRITERIA_BY_CODE["data-triggered"]
    assert "L4:</span> " + data_triggered.title in fraud
    assert 'data-result="failed"' in fraud
    assert data_triggered.fix.replace("'", "&#x27;").replace('"', "&quot;")[:60] in fraud

    churn = _row(response, "churn-predictor")
    assert 'data-result="not_measured"' in churn
    assert "not measured" in churn and "failed</span>" not in churn
    deployment = CRITERIA_BY_CODE["pipeline-deployment"]
    assert f"L3:</span> {deployment.title}" in churn
    # not a fix to apply: the portal cannot see it, and the model page says why
    assert 'data-testid="next-unmeasured"' in churn and deployment.fix[:40] not in churn
    assert 'data-disagreement="true"' not in churn

    top = _row(response, "demand-forecast")
    assert "Top level: every criterion passes" in top
    assert "new-model" not in _names(response)  # unassessed: counted in its card


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"team": "growth"}, ["churn-predictor", "demand-forecast"]),
        ({"kind": "rule_based"}, ["credit-limit-rules"]),
        ({"serving": "real_time"}, ["fraud-detector"]),
        ({"level": "4"}, ["fraud-detector"]),  # declared L4 counts, not assessed L3
        ({"level": "3"}, []),
        ({"disagreement": "1"}, ["fraud-detector"]),
        ({"q": "card fraud"}, ["fraud-detector"]),  # the description matches too
        ({"q": "FORECAST"}, ["demand-forecast"]),
        ({"team": "growth", "level": "5"}, ["demand-forecast"]),
    ],
)
@pytest.mark.sqlite
def test_filters_narrow_the_table_and_the_charts(manager, portfolio, params, expected):
    response = manager.get(DASHBOARD, params)
    assert response.status_code == 200
    assert _names(response) == expected
    html = response.content.decode()
    if expected:
        data = _chart_data(response, "distribution-data")
        assert sum(sum(d["data"]) for d in data["datasets"]) == len(expected)
    else:
        assert 'data-testid="table-empty"' in html
        assert "No model matches these filters." in html
    # the CSV link carries the same filters
    csv_link = re.search(r'href="([^"]+)" data-testid="csv-link"', html).group(1)
    for key, value in params.items():
        assert f"{key}={value.replace(' ', '+')}" in csv_link


def test_the_filter_form_shows_the_chosen_filters(manager, portfolio):
    html = manager.get(
        DASHBOARD, {"team": "growth", "kind": "ml", "level": "2", "disagreement": "1", "q": "x"}
    ).content.decode()
    assert '<option value="growth" selected>' in html
    assert '<option value="ml" selected>' in html
    assert '<option value="2" selected>' in html
    assert 'name="disagreement" value="1" checked' in html
    assert 'name="q" value="x"' in html


@pytest.mark.sqlite
def test_the_table_sorts_by_level_and_team(manager, portfolio):
    assert _names(manager.get(DASHBOARD, {"sort": "-level"})) == [
        "demand-forecast",
        "fraud-detector",
        "churn-predictor",
        "credit-limit-rules",
    ]
    assert _names(manager.get(DASHBOARD, {"sort": "assessed"}))[-2:] == [
        "fraud-detector",
        "demand-forecast",
    ]
    assert _names(manager.get(DASHBOARD, {"sort": "team"})) == [
        "churn-predictor",
        "demand-forecast",
        "credit-limit-rules",
        "fraud-detector",
    ]
    html = manager.get(DASHBOARD, {"sort": "level", "team": "growth"}).content.decode()
    # the header toggles the direction and keeps the filters
    assert re.search(
        r'aria-sort="ascending"[^>]*><a class="sort-link" href="\?sort=-level&amp;team=growth">',
        html,
    )


def test_the_table_is_paginated_and_pages_keep_the_filters(manager, portfolio, monkeypatch):
    monkeypatch.setattr(views, "MODELS_PER_PAGE", 2)
    first = manager.get(DASHBOARD, {"serving": "batch"})
    assert _names(first) == ["churn-predictor", "credit-limit-rules"]
    html = first.content.decode()
    assert "Page 1 of 2" in html
    assert 'href="?serving=batch&amp;page=2" rel="next"' in html
    second = manager.get(DASHBOARD, {"serving": "batch", "page": "2"})
    assert _names(second) == ["demand-forecast"]
    # a page past the end or not a number shows a real page, never an error
    assert _names(manager.get(DASHBOARD, {"serving": "batch", "page": "99"})) == ["demand-forecast"]
    assert _names(manager.get(DASHBOARD, {"page": "abc"})) == [
        "churn-predictor",
        "credit-limit-rules",
    ]


def test_before_any_assessment_the_page_explains_how_it_fills(manager):
    CatalogModelFactory(name="fraud-detector")
    response = manager.get(DASHBOARD)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="empty-state"' in html
    assert "No model has been assessed yet." in html
    assert "assess_maturity" in html and "each night" in html
    assert "<canvas" not in html
    assert f'href="{CRITERIA_URL}"' in html


def test_the_page_explains_the_levels_against_microsofts_model(manager, portfolio):
    html = manager.get(DASHBOARD).content.decode()
    help_text = re.search(r'data-testid="level-help">(.*?)</details>', html, re.S).group(1)
    assert "Microsoft level 4 (full MLOps, automated operations)" in help_text
    assert "Not a Microsoft level: Google&#x27;s continuous training" in help_text
    assert f'href="{CRITERIA_URL}"' in html


# --- Bad input ---------------------------------------------------------------------------------


def test_filters_it_does_not_understand_are_named_and_ignored(manager, portfolio):
    response = manager.get(
        DASHBOARD,
        {
            "level": "9",
            "kind": "spaceship",
            "serving": "<script>",
            "sort": "evil",
            "by": "planet",
            "team": "x" * 300,
            "page": "-1",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    errors = re.search(r'data-testid="filter-errors">(.*?)</div>', html, re.S).group(1)
    for label in ("Level", "Kind", "Serving", "Sort", "Stack by", "Team"):
        assert f"<strong>{label}</strong>" in errors
    assert "<script>" not in html.split('data-testid="filter-errors"')[1][:2000]
    assert len(_names(response)) == 4  # every filter ignored
    assert _chart_data(response, "distribution-data")["by"] == "team"


def test_a_team_nobody_has_shows_the_empty_table_not_an_error(manager, portfolio):
    response = manager.get(DASHBOARD, {"team": "nobody"})
    assert response.status_code == 200
    assert _names(response) == []
    assert '<option value="nobody" selected>' in response.content.decode()


# --- CSV ---------------------------------------------------------------------------------------


def test_the_csv_has_every_matching_row_not_just_a_page(manager, portfolio, monkeypatch):
    monkeypatch.setattr(views, "MODELS_PER_PAGE", 1)
    rows = _csv(manager.get(CSV_URL))
    assert rows[0] == list(views.CSV_COLUMNS)
    body = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert list(body) == [
        "churn-predictor",
        "credit-limit-rules",
        "demand-forecast",
        "fraud-detector",
    ]
    fraud = body["fraud-detector"]
    assert fraud["team"] == "risk" and fraud["kind"] == "ml" and fraud["serving"] == "real_time"
    assert (fraud["level"], fraud["assessed_level"], fraud["declared_level"]) == ("4", "3", "4")
    assert fraud["disagreement"] == "yes"
    assert fraud["declaration_reason"] == REASON
    assert fraud["next_level"] == "4"
    assert fraud["next_criterion"] == "data-triggered"
    assert fraud["next_result"] == "failed"
    assert fraud["next_fix"] == CRITERIA_BY_CODE["data-triggered"].fix
    assert fraud["checked_at"].endswith("+00:00")
    churn = body["churn-predictor"]
    assert churn["next_result"] == "not_measured" and churn["declared_level"] == ""
    assert body["demand-forecast"]["next_criterion"] == ""


def test_the_csv_applies_the_dashboards_filters(manager, portfolio):
    rows = _csv(manager.get(CSV_URL, {"team": "growth", "sort": "-level"}))
    assert [r[0] for r in rows[1:]] == ["demand-forecast", "churn-predictor"]
    rows = _csv(manager.get(CSV_URL, {"disagreement": "1"}))
    assert [r[0] for r in rows[1:]] == ["fraud-detector"]
    # bad filters are ignored here too
    rows = _csv(manager.get(CSV_URL, {"level": "nine", "kind": "x"}))
    assert len(rows) == 5


def test_csv_cells_cannot_run_as_spreadsheet_formulas(manager):
    sneaky = CatalogModelFactory(name='=HYPERLINK("http://x")', team="+risk")
    AssessedRecordFactory(catalog_model=sneaky, level=2)
    DeclaredRecordFactory(catalog_model=sneaky, level=3, reason="@SUM(A1:A9) -1")
    services.model_maturity_rebuild(catalog_model_ids=[sneaky.pk])
    rows = _csv(manager.get(CSV_URL))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["model"] == '\'=HYPERLINK("http://x")'
    assert row["team"] == "'+risk"
    assert row["declaration_reason"] == "'@SUM(A1:A9) -1"


# --- Criteria ----------------------------------------------------------------------------------


def test_the_criteria_page_lists_the_catalogue_by_level(manager):
    html = manager.get(CRITERIA_URL).content.decode()
    codes = re.findall(r'data-testid="criterion" data-code="([^"]+)"', html)
    assert codes == [c.code for c in sorted(CRITERIA, key=lambda c: c.level)]
    levels = re.findall(r'data-testid="criteria-level" data-level="(\d)"', html)
    assert levels == ["1", "2", "3", "4", "5"]
    promoted = re.search(r'data-code="promoted".*?</article>', html, re.S).group(0)
    for text in (
        "The retrained model is promoted",
        "Applies to ML models",
        "How the portal evaluates it",
    ):
        assert text in promoted
    assert "Fix when it fails" in promoted
    assert "Not a Microsoft level" in html


def test_the_page_runs_the_same_queries_however_many_models_it_lists(manager, portfolio):
    manager.get(DASHBOARD)  # the first request of a session also saves the session
    with CaptureQueriesContext(connection) as few:
        manager.get(DASHBOARD)
    for n in range(6):
        model = _model(f"extra-{n}", "risk", "ml", "batch")
        set_maturity(model, assessed=n % 5 + 1, declared=3 if n % 2 else None)
    with CaptureQueriesContext(connection) as many:
        response = manager.get(DASHBOARD)
    assert len(_names(response)) == 10
    assert len(many) == len(few)
