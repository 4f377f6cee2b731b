"""Freeze windows: RRULE parsing and bad input, the evaluation (deny wins, allow windows,
the reopen time across chained windows, time zones and DST, rules that never match), the gate
refusing a decision on the page and in the API, and who edits windows (audited)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from approvals import freeze
from approvals.models import AuditAction, AuditEvent, Decision, FreezeWindow
from core.roles import Role
from tests.approvals.factories import ApprovalRequestFactory
from tests.approvals.test_pages import _decide, _soup

AMS = ZoneInfo("Europe/Amsterdam")
# A Wednesday, in winter (CET, UTC+1).
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def window(**kwargs) -> FreezeWindow:
    """An unsaved window: the evaluation needs no database."""
    fields = {
        "name": "window",
        "kind": freeze.DENY,
        "reason": "",
        "environment": "PROD",
        "team": "",
        "dtstart": NOW - timedelta(days=30),
        "duration_minutes": 60,
        "rrule": "",
        "timezone": "UTC",
        "active": True,
    }
    fields.update(kwargs)
    return FreezeWindow(**fields)


def verdict(windows, at=NOW, environment="PROD", team="risk", model="fraud-detector"):
    return freeze.freeze_verdict(
        windows=windows, environment=environment, team=team, model_name=model, now=at
    )


# --- RRULE parsing and bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("FREQ=SOMETIMES", "invalid 'FREQ'"),
        ("BYDAY=FR", "needs a FREQ"),
        ("FREQ=WEEKLY;BYDAY=XX", "invalid 'BYDAY'"),
        ("FREQ=WEEKLY;COUNT=many", "invalid 'COUNT'"),
        ("FREQ=MINUTELY", "at most hourly"),
        ("FREQ=DAILY;UNTIL=20270101T000000", "UNTIL values must be specified in UTC"),
        ("DTSTART:20260101T000000\nRRULE:FREQ=DAILY", "one RRULE line"),
        ("   ", "empty"),
    ],
)
def test_a_bad_rule_is_refused_with_a_message(text, says):
    with pytest.raises(freeze.RecurrenceError) as refused:
        freeze.parse_rrule(text, dtstart=NOW, tz=AMS)
    assert says in str(refused.value)


def test_a_good_rule_parses_with_or_without_its_prefix():
    for text in ("FREQ=WEEKLY;BYDAY=FR;BYHOUR=16", "RRULE:FREQ=WEEKLY;BYDAY=FR;BYHOUR=16"):
        rule = freeze.parse_rrule(text, dtstart=NOW, tz=AMS)
        first = rule.bounded_between(NOW, NOW + timedelta(days=8))[0]
        assert (first.weekday(), first.hour, first.tzinfo) == (4, 16, AMS)


@pytest.mark.django_db
def test_the_model_refuses_a_bad_rule_and_an_unknown_zone():
    with pytest.raises(ValidationError) as refused:
        window(rrule="FREQ=WEEKLY;BYDAY=XX", timezone="Mars/Olympus").full_clean()
    errors = refused.value.message_dict
    assert "Unknown time zone 'Mars/Olympus'" in errors["timezone"][0]
    with pytest.raises(ValidationError) as refused:
        window(rrule="FREQ=WEEKLY;BYDAY=XX").save()
    assert "invalid 'BYDAY'" in refused.value.message_dict["rrule"][0]
    assert FreezeWindow.objects.count() == 0


@pytest.mark.parametrize(
    "text",
    [
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=HOURLY;BYMONTH=4;BYMONTHDAY=31",
        "FREQ=HOURLY;INTERVAL=6;BYHOUR=9",  # from 00:00 every 6 h never reaches 09:00
        "FREQ=WEEKLY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",  # next: Feb 2032
    ],
)
def test_a_rule_that_never_matches_is_refused_at_once(text):
    start = time.monotonic()
    impossible = window(rrule=text, dtstart=datetime(2020, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationError) as refused:
        impossible.clean()
    said = refused.value.message_dict["rrule"][0]
    assert "no occurrence in the next 2 years" in said or "generates an empty set" in said
    assert verdict([impossible]).frozen is False
    assert time.monotonic() - start < 1.0  # dateutil alone scans to 9999: seconds


# --- The evaluation ---------------------------------------------------------------------------


def test_a_one_off_deny_window_freezes_inside_and_reopens_at_its_end():
    xmas = window(name="Xmas", dtstart=NOW - timedelta(hours=1), duration_minutes=180)
    inside = verdict([xmas])
    assert inside.frozen and inside.cause == freeze.DENY and inside.windows == (xmas,)
    assert inside.reopens_at == NOW + timedelta(hours=2)
    assert not verdict([xmas], at=NOW + timedelta(hours=2)).frozen  # [start, end)
    assert not verdict([xmas], at=NOW - timedelta(hours=1, seconds=1)).frozen


def test_deny_wins_over_allow():
    allow = window(
        name="open all day",
        kind=freeze.ALLOW,
        dtstart=NOW - timedelta(hours=6),
        duration_minutes=720,
    )
    deny = window(name="incident", dtstart=NOW - timedelta(minutes=5), duration_minutes=30)
    result = verdict([allow, deny])
    assert result.frozen and result.cause == freeze.DENY and result.windows == (deny,)
    assert result.reopens_at == NOW + timedelta(minutes=25)


def test_an_allow_window_allows_only_inside_its_occurrences():
    release = window(
        name="Tue-Thu 09-17",
        kind=freeze.ALLOW,
        rrule="FREQ=WEEKLY;BYDAY=TU,WE,TH;BYHOUR=9;BYMINUTE=0",
        duration_minutes=8 * 60,
        timezone="Europe/Amsterdam",
        dtstart=datetime(2026, 1, 6, 9, 0, tzinfo=AMS),
    )
    assert not verdict([release]).frozen  # Wed 13:00 Amsterdam
    evening = datetime(2026, 12, 3, 17, 30, tzinfo=AMS)  # Thursday, after 17:00
    outside = verdict([release], at=evening)
    assert outside.frozen and outside.cause == "outside_allow"
    assert outside.reopens_at == datetime(2026, 12, 8, 9, 0, tzinfo=AMS)  # next Tuesday
    # an allow window scoped elsewhere does not close this scope
    other = window(name="growth only", kind=freeze.ALLOW, team="growth", duration_minutes=1)
    assert not verdict([other], at=evening).frozen


def test_the_reopen_time_chains_overlapping_and_adjacent_deny_windows():
    a = window(name="a", dtstart=NOW - timedelta(hours=1), duration_minutes=120)  # to +1 h
    b = window(name="b", dtstart=NOW + timedelta(minutes=30), duration_minutes=90)  # to +2 h
    c = window(name="c", dtstart=NOW + timedelta(hours=2), duration_minutes=60)  # to +3 h
    later = window(name="later", dtstart=NOW + timedelta(hours=4), duration_minutes=60)
    result = verdict([a, b, c, later])
    assert result.windows == (a,)
    assert result.reopens_at == NOW + timedelta(hours=3)
    assert not verdict([a, b, c, later], at=result.reopens_at).frozen


def test_a_deny_that_ends_outside_every_allow_reopens_at_the_next_allow_opening():
    allow = window(
        name="mornings",
        kind=freeze.ALLOW,
        rrule="FREQ=DAILY;BYHOUR=8;BYMINUTE=0",
        dtstart=datetime(2026, 1, 1, 8, tzinfo=UTC),
        duration_minutes=5 * 60,
    )
    deny = window(name="db upgrade", dtstart=NOW - timedelta(hours=3), duration_minutes=5 * 60)
    result = verdict([allow, deny], at=NOW - timedelta(hours=2))  # 10:00, inside both
    assert result.cause == freeze.DENY
    assert result.reopens_at == datetime(2026, 12, 3, 8, tzinfo=UTC)  # the deny ends at 14:00


def test_a_recurring_window_keeps_its_wall_clock_time_across_dst():
    friday = window(
        name="Friday freeze",
        rrule="FREQ=WEEKLY;BYDAY=FR",
        timezone="Europe/Amsterdam",
        dtstart=datetime(2026, 6, 5, 16, 0, tzinfo=AMS),  # summer: 14:00 UTC
        duration_minutes=4 * 60,
    )
    summer = datetime(2026, 6, 12, 14, 30, tzinfo=UTC)
    winter = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)  # 16:30 CET
    assert verdict([friday], at=summer).reopens_at == datetime(2026, 6, 12, 18, tzinfo=UTC)
    assert verdict([friday], at=winter).reopens_at == datetime(2026, 12, 4, 19, tzinfo=UTC)
    assert not verdict([friday], at=datetime(2026, 12, 4, 14, 30, tzinfo=UTC)).frozen
    message = freeze.format_local(datetime(2026, 12, 4, 19, tzinfo=UTC), "Europe/Amsterdam")
    assert message == "Fri 4 Dec 2026 20:00 CET"


def test_an_occurrence_across_the_autumn_change_lasts_its_wall_clock_time():
    night = window(
        name="night",
        rrule="FREQ=DAILY",
        timezone="Europe/Amsterdam",
        dtstart=datetime(2026, 10, 1, 0, 0, tzinfo=AMS),
        duration_minutes=6 * 60,
    )
    # 25 Oct 2026: clocks go back at 03:00; 00:00-06:00 local is 22:00-05:00 UTC (7 h)
    at = datetime(2026, 10, 25, 3, 0, tzinfo=UTC)
    assert verdict([night], at=at).reopens_at == datetime(2026, 10, 25, 5, tzinfo=UTC)


def test_an_occurrence_in_the_spring_gap_starts_when_the_clocks_have_moved():
    early = window(
        name="early",
        rrule="FREQ=DAILY",
        timezone="Europe/Amsterdam",
        dtstart=datetime(2026, 3, 1, 2, 30, tzinfo=AMS),
        duration_minutes=60,
    )
    # 29 Mar 2026: 02:00-03:00 does not exist; 02:30 is read with the winter offset (01:30 UTC)
    gap_day = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)
    [occurrence] = freeze.window_occurrences(
        early, start=gap_day, end=gap_day + timedelta(hours=12)
    )
    assert occurrence.start == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert occurrence.end == datetime(2026, 3, 29, 1, 30, tzinfo=UTC) + timedelta(hours=1)


def test_the_scope_environment_team_and_model():
    every = window(name="all", environment="all", dtstart=NOW - timedelta(minutes=1))
    assert verdict([every], environment="QA").frozen
    qa_only = window(name="qa", environment="QA", dtstart=NOW - timedelta(minutes=1))
    assert not verdict([qa_only]).frozen
    growth = window(name="growth", team="growth", dtstart=NOW - timedelta(minutes=1))
    assert not verdict([growth]).frozen and verdict([growth], team="Growth").frozen
    inactive = window(name="off", active=False, dtstart=NOW - timedelta(minutes=1))
    assert not verdict([inactive]).frozen


# --- Property: what "frozen" and "reopens at" promise -----------------------------------------

RULES = st.sampled_from(
    ["", "FREQ=DAILY", "FREQ=DAILY;INTERVAL=2", "FREQ=WEEKLY;BYDAY=MO,FR", "FREQ=HOURLY;INTERVAL=5"]
)
WINDOWS = st.builds(
    lambda kind, offset, minutes, rule, zone: window(
        name=f"{kind}-{offset}-{minutes}",
        kind=kind,
        dtstart=NOW + timedelta(minutes=offset),
        duration_minutes=minutes,
        rrule=rule,
        timezone=zone,
    ),
    st.sampled_from([freeze.DENY, freeze.ALLOW]),
    st.integers(-3 * 24 * 60, 3 * 24 * 60),
    st.integers(1, 36 * 60),
    RULES,
    st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York"]),
)


def _covered(windows, at) -> bool:
    return any(
        o.covers(at)
        for w in windows
        for o in freeze.window_occurrences(w, start=at, end=at + timedelta(seconds=1))
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(WINDOWS, max_size=4), st.integers(0, 7 * 24 * 60))
def test_frozen_means_inside_a_deny_or_outside_every_allow_and_reopening_is_open(windows, minutes):
    at = NOW + timedelta(minutes=minutes)
    result = verdict(windows, at=at)
    denies = [w for w in windows if w.kind == freeze.DENY]
    allows = [w for w in windows if w.kind == freeze.ALLOW]
    expected = _covered(denies, at) or (bool(allows) and not _covered(allows, at))
    assert result.frozen == expected
    if result.frozen and result.reopens_at is not None:
        assert result.reopens_at > at
        assert not verdict(windows, at=result.reopens_at).frozen
        assert not any(_covered([w], result.reopens_at) for w in result.windows if w in denies)


@pytest.mark.django_db
def test_the_gate_is_one_of_the_environment_rules_with_its_reopen_time():
    """What the decision box, the API and the automated ADO check all evaluate."""
    from approvals.services.gates import environment_rules
    from tests.registry.factories import RegisteredModelFactory

    model = RegisteredModelFactory(name="fraud-detector").catalog_model
    now = datetime.now(UTC)
    rules = lambda: environment_rules(  # noqa: E731
        catalog_model=model, model_version=None, run=None, environment="QA", now=now
    )
    assert [r.code for r in rules()] == []  # no window: nothing listed
    deny = FreezeWindow.objects.create(
        name="Freeze", environment="QA", dtstart=now - timedelta(minutes=1), duration_minutes=5
    )
    [rule] = rules()
    assert (rule.code, rule.ok) == ("freeze_window", False)
    assert rule.until == deny.dtstart + timedelta(minutes=5)
    assert rule.values["windows"] == [deny.pk] and rule.values["cause"] == "deny"
    assert rule.refusal().http_status == 403
    deny.team = "growth"  # fraud-detector's team is risk: the window no longer applies
    deny.save()
    assert rules() == []


# --- The gate refuses a decision: page and API ------------------------------------------------


@pytest.fixture
def approver_client(client, make_user):
    client.force_login(make_user(Role.APPROVER, username="alice", email="alice@example.com"))
    return client


@pytest.fixture
def frozen_qa(db):
    """A pending QA approval, and a deny window on QA covering now for two more hours."""
    approval = ApprovalRequestFactory()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    deny = FreezeWindow.objects.create(
        name="Year-end freeze",
        reason="Finance closes the books",
        environment="QA",
        dtstart=now - timedelta(hours=1),
        duration_minutes=180,
        timezone="Europe/Amsterdam",
    )
    return approval, deny


def test_a_freeze_window_refuses_a_decision_on_the_page(approver_client, frozen_qa):
    approval, deny = frozen_qa
    reopen = freeze.format_local(deny.dtstart + timedelta(minutes=180), deny.timezone)
    detail = _soup(approver_client.get(f"/approvals/{approval.pk}/"))
    rule = detail.select_one("[data-rule=freeze_window]")
    assert rule["data-ok"] == "false"
    for data in ({"status": "approved"}, {"status": "approved", "confirm": "1"}):
        response = approver_client.post(_decide(approval), data)
        assert response.status_code == 403
        error = _soup(response).select_one("[data-testid=decision-error]").get_text(" ")
        assert "Year-end freeze" in error and "Finance closes the books" in error
        assert f"reopens at {reopen}" in error
    assert Decision.objects.count() == 0
    refused = AuditEvent.objects.filter(action=AuditAction.DECISION_REFUSED).first()
    assert refused.detail["code"] == "freeze_window"


def test_a_freeze_window_refuses_a_decision_in_the_api(make_user, frozen_qa):
    from rest_framework.test import APIClient

    approval, deny = frozen_qa
    client = APIClient()
    client.force_login(make_user(Role.APPROVER, username="bob", email="bob@example.com"))
    response = client.post(
        f"/api/v1/approvals/{approval.pk}/decision", {"status": "approved"}, format="json"
    )
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "freeze_window"
    reopen = freeze.format_local(deny.dtstart + timedelta(minutes=180), deny.timezone)
    assert "Year-end freeze" in body["detail"] and f"reopens at {reopen}" in body["detail"]
    assert Decision.objects.count() == 0
    # once the window is deactivated the same decision goes through
    deny.active = False
    deny.save()
    again = client.post(
        f"/api/v1/approvals/{approval.pk}/decision", {"status": "approved"}, format="json"
    )
    assert again.status_code == 201, again.json()


def test_a_freeze_window_lets_a_rejection_through(approver_client, frozen_qa):
    """A freeze holds promotions back; rejecting stops one, so the gate lets it pass: the box
    offers only Reject, and the rejection is recorded and sent like any other."""
    approval, _ = frozen_qa
    box = _soup(approver_client.get(f"/approvals/{approval.pk}/"))
    assert "Year-end freeze" in box.select_one("[data-testid=decision-gated]").get_text(" ")
    form = box.select_one("[data-testid=decision-form]")
    assert [b["value"] for b in form.select("button[name=status]")] == ["rejected"]
    data = {"status": "rejected", "comment": "Not this year", "confirm": "1"}
    response = approver_client.post(_decide(approval), data)
    assert response.status_code in (200, 302), response.content[:300]
    decision = Decision.objects.get()
    assert decision.status == "rejected" and decision.outbox is not None
    approval.refresh_from_db()
    assert approval.status == "rejected"


# --- The page: what is frozen now and next ------------------------------------------------------


def _make(**kwargs) -> FreezeWindow:
    fields = {
        "name": "Friday freeze",
        "reason": "No changes before the weekend",
        "environment": "PROD",
        "dtstart": datetime.now(UTC) - timedelta(minutes=30),
        "duration_minutes": 120,
    }
    fields.update(kwargs)
    return FreezeWindow.objects.create(**fields)


def test_the_page_shows_what_is_frozen_now_and_next(role_client):
    frozen = _make()
    _make(
        name="Tue-Thu release",
        kind=freeze.ALLOW,
        environment="QA",
        team="risk",
        rrule="FREQ=DAILY",
        dtstart=datetime.now(UTC) + timedelta(hours=3),
        duration_minutes=60,
        timezone="Europe/Amsterdam",
    )
    page = role_client(Role.DATA_SCIENTIST).get("/approvals/freeze/")
    assert page.status_code == 200
    soup = _soup(page)
    prod = soup.select_one("[data-environment=PROD]")
    assert prod["data-frozen"] == "true"
    text = prod.get_text(" ", strip=True)
    reopen = freeze.format_local(frozen.dtstart + timedelta(minutes=120), "UTC")
    assert "Frozen by 'Friday freeze'" in text and "No changes before the weekend" in text
    assert f"Reopens at {reopen}" in text
    qa = soup.select_one("[data-environment=QA]")  # the allow window closes team risk in QA
    assert qa["data-frozen"] == "true" and "Outside the release window" in qa.get_text()
    upcoming = soup.select("[data-testid=freeze-upcoming] tbody tr")
    assert len(upcoming) == 1 + 14  # the one-off, and the daily window for 14 days
    assert "in effect" in upcoming[0].get_text()
    days = soup.select("[data-testid=freeze-calendar] li.freeze-day")
    assert len(days) % 7 == 0 and len(days) >= 15
    assert soup.select_one("[data-testid=freeze-new]") is None  # not an editor


@pytest.mark.django_db
def test_frozen_now_evaluates_a_models_scope_with_the_models_team():
    from approvals import selectors
    from tests.registry.factories import RegisteredModelFactory

    fraud = RegisteredModelFactory(name="fraud-detector").catalog_model  # team risk
    now = datetime.now(UTC)
    team_freeze = _make(name="risk freeze", environment="QA", team="risk")
    _make(
        name="fraud release window",
        kind=freeze.ALLOW,
        environment="QA",
        catalog_model=fraud,
        dtstart=now + timedelta(days=1),
        duration_minutes=60,
    )
    rows = {row.scope: row for row in selectors.frozen_now(windows=list(
        selectors.freeze_window_list()), now=now)["QA"]}  # fmt: skip
    assert rows["team risk"].windows == (team_freeze,)
    model_row = rows["model fraud-detector"]
    assert model_row.cause == "deny" and model_row.windows == (team_freeze,)
    assert model_row.reopens_at == now + timedelta(days=1)  # the deny ends, then the allow opens


def test_the_inbox_links_the_freeze_page(role_client):
    soup = _soup(role_client(Role.APPROVER).get("/approvals/"))
    assert soup.select_one("[data-testid=freeze-link]")["href"] == "/approvals/freeze/"


# --- Edit rights and the audit of edits ---------------------------------------------------------

FORM = {
    "name": "Year-end",
    "kind": "deny",
    "reason": "Books close",
    "environment": "PROD",
    "team": "",
    "catalog_model": "",
    "timezone": "Europe/Amsterdam",
    "starts": "2026-12-18T16:00",
    "duration_minutes": "",
    "ends": "2027-01-04T09:00",
    "rrule": "",
    "active": "on",
}


@pytest.mark.parametrize("role", [Role.APPROVER, Role.DATA_SCIENTIST])
def test_only_managers_and_admins_edit(role_client, role):
    window = _make()
    client = role_client(role)
    assert client.get("/approvals/freeze/new/").status_code == 403
    assert client.post("/approvals/freeze/new/", FORM).status_code == 403
    assert client.post(f"/approvals/freeze/{window.pk}/delete/").status_code == 403
    assert client.post(f"/approvals/freeze/{window.pk}/active/").status_code == 403
    assert FreezeWindow.objects.count() == 1 and FreezeWindow.objects.get().active


def test_a_manager_creates_a_window_in_its_zone_and_the_trail_records_it(role_client):
    client = role_client(Role.MANAGER)
    response = client.post("/approvals/freeze/new/", FORM)
    assert response.status_code == 302
    window = FreezeWindow.objects.get()
    assert window.dtstart == datetime(2026, 12, 18, 15, 0, tzinfo=UTC)  # 16:00 CET
    assert window.duration_minutes == (16 * 24 + 17) * 60
    created = AuditEvent.objects.get(action=AuditAction.FREEZE_CREATED)
    assert created.detail["freeze_window"] == window.pk and created.detail["before"] is None
    assert created.detail["after"]["name"] == "Year-end" and created.environment == "PROD"
    assert created.actor is not None


def test_a_bad_rule_on_the_form_is_a_400_with_the_message(role_client):
    client = role_client(Role.ADMIN)
    bad = dict(FORM, rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", ends="", duration_minutes="60")
    response = client.post("/approvals/freeze/new/", bad)
    assert response.status_code == 400
    error = _soup(response).select_one("[data-field=rrule]").get_text()
    assert "no occurrence in the next 2 years" in error
    zone = client.post("/approvals/freeze/new/", dict(FORM, timezone="Nowhere/Land"))
    assert zone.status_code == 400
    assert "Unknown time zone" in _soup(zone).select_one("[data-field=timezone]").get_text()
    no_length = client.post("/approvals/freeze/new/", dict(FORM, ends=""))
    assert "Give a duration" in _soup(no_length).select_one("[data-field=duration_minutes]").text
    assert FreezeWindow.objects.count() == 0


def test_edits_deactivation_and_deletion_are_audited_with_before_and_after(role_client):
    window = _make()
    client = role_client(Role.ADMIN)
    edit = f"/approvals/freeze/{window.pk}/edit/"
    form = _soup(client.get(edit)).select_one("[data-testid=freeze-form]")
    assert form.select_one("[name=starts]")["value"] == window.dtstart.strftime("%Y-%m-%dT%H:%M")
    changed = dict(FORM, name="Friday freeze", duration_minutes="90", ends="", timezone="UTC")
    changed["starts"] = window.dtstart.strftime("%Y-%m-%dT%H:%M")
    assert client.post(edit, changed).status_code == 302
    change = AuditEvent.objects.get(action=AuditAction.FREEZE_CHANGED)
    assert change.detail["before"]["duration_minutes"] == 120
    assert change.detail["after"]["duration_minutes"] == 90
    assert change.detail["before"]["reason"] == "No changes before the weekend"
    assert client.post(f"/approvals/freeze/{window.pk}/active/", {"active": "0"}).status_code == 302
    window.refresh_from_db()
    assert window.active is False
    off = AuditEvent.objects.filter(action=AuditAction.FREEZE_CHANGED).first()
    assert off.detail == {"freeze_window": window.pk, "before": {"active": True},
                          "after": {"active": False}}  # fmt: skip
    assert client.post(f"/approvals/freeze/{window.pk}/delete/").status_code == 302
    assert not FreezeWindow.objects.exists()
    gone = AuditEvent.objects.get(action=AuditAction.FREEZE_DELETED)
    assert gone.detail["before"]["name"] == "Friday freeze" and gone.detail["after"] is None


# --- The API ------------------------------------------------------------------------------------

API = "/api/v1/approvals/freeze-windows"


@pytest.fixture
def api_as(make_user):
    from rest_framework.test import APIClient

    def sign_in(*roles):
        client = APIClient()
        client.force_login(make_user(*roles))
        return client

    return sign_in


def test_the_api_lists_the_windows_and_what_is_frozen_now(api_as):
    window = _make()
    body = api_as(Role.APPROVER).get(API).json()
    assert body["count"] == 1 and body["results"][0]["id"] == window.pk
    assert body["results"][0]["next_occurrence"]["start"]
    [row] = body["frozen_now"]["PROD"]
    assert row["cause"] == "deny" and row["windows"] == [window.pk]
    assert row["reopens_at"] and body["frozen_now"]["QA"] == []


def test_the_api_creates_changes_and_deletes_for_managers_only(api_as):
    body = {
        "name": "Friday freeze",
        "environment": "PROD",
        "dtstart": "2026-06-05T16:00:00",
        "duration_minutes": 240,
        "rrule": "FREQ=WEEKLY;BYDAY=FR",
        "timezone": "Europe/Amsterdam",
        "reason": "Weekend",
    }
    refused = api_as(Role.APPROVER).post(API, body, format="json")
    assert refused.status_code == 403 and "managers and admins" in refused.json()["detail"]
    manager = api_as(Role.MANAGER)
    created = manager.post(API, body, format="json")
    assert created.status_code == 201, created.json()
    window = FreezeWindow.objects.get()
    assert window.dtstart == datetime(2026, 6, 5, 14, tzinfo=UTC)  # naive: read in its zone
    url = f"{API}/{window.pk}"
    assert (
        api_as(Role.DATA_SCIENTIST).patch(url, {"active": False}, format="json").status_code == 403
    )
    patched = manager.patch(url, {"reason": "Weekend on-call is thin"}, format="json")
    assert patched.status_code == 200 and patched.json()["reason"] == "Weekend on-call is thin"
    assert AuditEvent.objects.get(action=AuditAction.FREEZE_CHANGED).detail["after"] == {
        "reason": "Weekend on-call is thin"
    }
    assert api_as(Role.APPROVER).delete(url).status_code == 403
    assert manager.delete(url).status_code == 204
    assert AuditEvent.objects.filter(action=AuditAction.FREEZE_DELETED).count() == 1


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"rrule": "FREQ=WEEKLY;BYDAY=XX"}, "rrule", "invalid 'BYDAY'"),
        ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"}, "rrule", "no occurrence"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Unknown time zone"),
        ({"duration_minutes": None, "ends_at": None}, "duration_minutes", "Give duration"),
        ({"dtstart": "next friday"}, "dtstart", "Datetime has wrong format"),
    ],
)
def test_bad_input_in_the_api_is_a_400_that_names_it(api_as, change, field, says):
    body = {"name": "w", "environment": "QA", "dtstart": "2026-12-04T10:00:00Z"}
    body |= {"duration_minutes": 30} | change
    body = {k: v for k, v in body.items() if v is not None}
    response = api_as(Role.ADMIN).post(API, body, format="json")
    assert response.status_code == 400, response.json()
    answer = response.json()
    assert answer["code"] == "invalid_freeze_window"
    assert says in " ".join(answer["errors"][field]) and says in answer["detail"]
    assert FreezeWindow.objects.count() == 0


def test_the_admin_edits_windows_through_the_audited_services(make_user, client):
    admin_user = make_user(Role.ADMIN, is_staff=True)
    client.force_login(admin_user)
    add = client.post(
        "/admin/approvals/freezewindow/add/",
        {
            "name": "Admin freeze",
            "kind": "deny",
            "reason": "",
            "environment": "QA",
            "team": "",
            "dtstart_0": "2026-12-24",
            "dtstart_1": "00:00:00",
            "duration_minutes": "1440",
            "rrule": "FREQ=YEARLY",
            "timezone": "UTC",
            "active": "on",
        },
    )
    assert add.status_code == 302, _soup(add).select_one(".errornote")
    window = FreezeWindow.objects.get()
    assert AuditEvent.objects.get(action=AuditAction.FREEZE_CREATED).actor == admin_user
    bad = client.post(
        f"/admin/approvals/freezewindow/{window.pk}/change/",
        {"name": "x", "kind": "deny", "environment": "QA", "dtstart_0": "2026-12-24",
         "dtstart_1": "00:00:00", "duration_minutes": "60", "rrule": "FREQ=NEVER",
         "timezone": "UTC"},
    )  # fmt: skip
    assert bad.status_code == 200 and "invalid &#x27;FREQ&#x27;" in bad.content.decode()
    client.post(f"/admin/approvals/freezewindow/{window.pk}/delete/", {"post": "yes"})
    assert not FreezeWindow.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.FREEZE_DELETED).count() == 1
