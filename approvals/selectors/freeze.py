"""What the freeze page and the API read: what is frozen now per environment (which window,
its reason, when it reopens), the occurrences of the next days, and the windows themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.utils import timezone as dj_timezone

from pipelines.models import Environment

from .. import freeze
from ..models import FreezeWindow

ENVIRONMENTS = (Environment.QA.value, Environment.PROD.value)
UPCOMING_DAYS = 14


@dataclass(frozen=True)
class FrozenScope:
    """One frozen scope of an environment now: the windows that freeze it and the reopening."""

    environment: str
    cause: str  # "deny" or "outside_allow"
    scope: str  # "every model", "team risk", "model fraud-detector"
    windows: tuple
    reopens_at: datetime | None
    reopens_label: str
    message: str


@dataclass(frozen=True)
class UpcomingOccurrence:
    window: FreezeWindow
    start: datetime
    end: datetime
    start_label: str
    end_label: str
    in_effect: bool


@dataclass
class CalendarDay:
    day: date
    is_today: bool
    occurrences: list[UpcomingOccurrence] = field(default_factory=list)


@dataclass
class FreezeOverview:
    now: datetime
    frozen: dict[str, list[FrozenScope]]
    upcoming: list[UpcomingOccurrence]
    weeks: list[list[CalendarDay]]
    windows: list[FreezeWindow]


def freeze_window_list():
    """Every window, active first, for the page's table, the API and the admin."""
    return FreezeWindow.objects.select_related("catalog_model", "updated_by").order_by(
        "-active", "environment", "name", "pk"
    )


def freeze_window_get(*, pk: int) -> FreezeWindow:
    return freeze_window_list().get(pk=pk)


def _scope_label(team: str, model_name: str) -> str:
    if model_name:
        return f"model {model_name}"
    if team:
        return f"team {team}"
    return "every model"


def frozen_now(*, windows, now: datetime) -> dict[str, list[FrozenScope]]:
    """Per environment, each scope frozen at ``now``: the scopes the windows name (every
    model, a team, a model), broadest first; a narrower scope frozen by the same windows until
    the same time is not repeated."""
    active = [w for w in windows if w.active]
    result: dict[str, list[FrozenScope]] = {}
    for environment in ENVIRONMENTS:
        scoped = [w for w in active if w.environment in (freeze.ALL_ENVIRONMENTS, environment)]
        scopes = sorted({_scope_of(w) for w in scoped}, key=lambda s: (bool(s[1]), s))
        rows, seen = [], set()
        for team, model_name in [("", ""), *[s for s in scopes if s != ("", "")]]:
            verdict = freeze.freeze_verdict(
                windows=scoped, environment=environment, team=team, model_name=model_name, now=now
            )
            key = (verdict.cause, tuple(w.pk for w in verdict.windows), verdict.reopens_at)
            if not verdict.frozen or key in seen:
                continue
            seen.add(key)
            rows.append(_frozen_scope(environment, verdict, _scope_label(team, model_name)))
        result[environment] = rows
    return result


def _scope_of(window: FreezeWindow) -> tuple[str, str]:
    """The (team, model) a window names; a model's window is evaluated with the model's team,
    so a team's windows count for it too, as the gate counts them."""
    if window.catalog_model_id:
        return (window.catalog_model.effective_team, window.model_name)
    return (window.team, "")


def _frozen_scope(environment: str, verdict: freeze.FreezeVerdict, scope: str) -> FrozenScope:
    zone = verdict.windows[0].timezone
    label = freeze.format_local(verdict.reopens_at, zone) if verdict.reopens_at else ""
    names = ", ".join(f"'{w.name}'" for w in verdict.windows)
    if verdict.cause == freeze.DENY:
        message = f"Frozen by {names}"
    else:
        message = f"Outside the release window {names}"
    return FrozenScope(
        environment, verdict.cause, scope, verdict.windows, verdict.reopens_at, label, message
    )


def upcoming(*, windows, now: datetime, days: int = UPCOMING_DAYS) -> list[UpcomingOccurrence]:
    """The active windows' occurrences overlapping the next ``days`` days, by start."""
    end = now + timedelta(days=days)
    rows = []
    for window, occurrence in freeze.upcoming_occurrences(
        [w for w in windows if w.active], start=now, end=end
    ):
        rows.append(
            UpcomingOccurrence(
                window,
                occurrence.start,
                occurrence.end,
                freeze.format_local(occurrence.start, window.timezone),
                freeze.format_local(occurrence.end, window.timezone),
                occurrence.covers(now),
            )
        )
    return rows


def calendar_weeks(*, occurrences, now: datetime, days: int = UPCOMING_DAYS):
    """Whole weeks (Monday first, in the portal's time zone) covering the next ``days`` days,
    each day listing the occurrences that overlap it."""
    tz = dj_timezone.get_current_timezone()
    today = now.astimezone(tz).date()
    first = today - timedelta(days=today.weekday())
    last = today + timedelta(days=days)
    span = (last - first).days + 1
    count = span + (-span) % 7
    cells = [
        CalendarDay(first + timedelta(days=i), first + timedelta(days=i) == today)
        for i in range(count)
    ]
    for cell in cells:
        start = datetime.combine(cell.day, time.min, tzinfo=tz)
        end = start + timedelta(days=1)
        cell.occurrences = [o for o in occurrences if o.start < end and o.end > start]
    return [cells[i : i + 7] for i in range(0, len(cells), 7)]


def freeze_overview(*, now: datetime | None = None, days: int = UPCOMING_DAYS) -> FreezeOverview:
    """Everything the freeze page shows, from one read of the windows."""
    now = now or dj_timezone.now()
    windows = list(freeze_window_list())
    occurrences = upcoming(windows=windows, now=now, days=days)
    return FreezeOverview(
        now=now,
        frozen=frozen_now(windows=windows, now=now),
        upcoming=occurrences,
        weeks=calendar_weeks(occurrences=occurrences, now=now, days=days),
        windows=windows,
    )
