"""Freeze windows, evaluated: pure functions of the windows and a time, no database.

A window is a first occurrence (``dtstart``, ``duration``) repeated by an RFC 5545 RRULE
(python-dateutil parses it), evaluated as wall-clock time in the window's own time zone:
"every Friday 16:00 Europe/Amsterdam" stays 16:00 there across daylight saving time, and an
occurrence lasts ``duration`` of wall-clock time (09:00 + 8 h ends 17:00 even on the night the
clocks change).

Every expansion is bounded: dateutil scans a rule that never matches (Feb 30) year by year up
to 9999, seconds of CPU; ``BoundedRule`` stops that scan at a horizon year, and rules finer
than hourly are refused, so no evaluation scans more than a few thousand periods per year.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.rrule import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY, rrule, rrulestr

ALL_ENVIRONMENTS = "all"
ALLOW, DENY = "allow", "deny"
HORIZON_DAYS = 731  # "the next 2 years": how far ahead a rule must match, and reopen is sought
MAX_CHAIN = 500  # at most this many occurrences chained when looking for the reopen time
# Finer rules (MINUTELY, SECONDLY) would make every evaluation scan 60x or 3600x more periods.
ALLOWED_FREQUENCIES = (YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY)


class RecurrenceError(ValueError):
    """Bad recurrence input, with a message for the person who typed it."""


class _HorizonReached(Exception):
    pass


class BoundedRule(rrule):
    """A dateutil rrule whose scan stops at ``horizon_year``.

    dateutil's iterator rebuilds its masks once per year it enters and reads ``_byweekno``
    there; this reads which year, and stops past the horizon instead of scanning to 9999."""

    horizon_year = 9999

    @property
    def _byweekno(self):
        caller = sys._getframe(1)
        if (
            caller.f_code.co_name == "rebuild"
            and caller.f_locals.get("year", 0) > self.horizon_year
        ):
            raise _HorizonReached
        return self.__dict__["_byweekno"]

    @_byweekno.setter
    def _byweekno(self, value):
        self.__dict__["_byweekno"] = value

    def bounded_between(self, after: datetime, before: datetime) -> list[datetime]:
        """Occurrences starting in [after, before], never scanning past ``before``'s year + 1."""
        self.horizon_year = before.year + 1
        found = []
        try:
            for start in self:
                if start > before:
                    break
                if start >= after:
                    found.append(start)
        except _HorizonReached:
            pass
        return found


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone ``name`` ("Europe/Amsterdam"), or a RecurrenceError saying so."""
    if not name or name != name.strip() or name not in _zone_names():
        raise RecurrenceError(
            f"Unknown time zone {name!r}: use an IANA name such as Europe/Amsterdam or UTC."
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RecurrenceError(f"Unknown time zone {name!r}.") from None


_ZONES: set[str] = set()


def _zone_names() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
        _ZONES.add("UTC")
    return _ZONES


def parse_rrule(text: str, *, dtstart: datetime, tz: ZoneInfo) -> BoundedRule:
    """The RRULE ``text`` ("FREQ=WEEKLY;BYDAY=FR", an "RRULE:" prefix allowed) from
    ``dtstart`` in ``tz``, or a RecurrenceError that says what is wrong."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:].strip()
    if not body:
        raise RecurrenceError("The recurrence rule is empty.")
    if "\n" in body or "\r" in body or ":" in body:
        raise RecurrenceError(
            "Give one RRULE line (e.g. FREQ=WEEKLY;BYDAY=FR), without DTSTART, EXDATE or "
            "other properties: the window's start and time zone are their own fields."
        )
    if "FREQ=" not in body.upper():
        raise RecurrenceError("The rule needs a FREQ (e.g. FREQ=WEEKLY;BYDAY=FR).")
    start = dtstart.astimezone(tz).replace(second=0, microsecond=0)
    try:
        parsed = rrulestr(body, dtstart=start, forceset=False)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise RecurrenceError(
            f"Not a valid RRULE ({exc or 'unreadable'}): {text.strip()!r}."
        ) from None
    if not isinstance(parsed, rrule):
        raise RecurrenceError(f"Not a single RRULE: {text.strip()!r}.")
    if parsed._freq not in ALLOWED_FREQUENCIES:
        raise RecurrenceError(
            "Windows repeat at most hourly: FREQ must be YEARLY, MONTHLY, WEEKLY, DAILY or "
            "HOURLY (use BYHOUR and BYMINUTE for the time of day)."
        )
    parsed.__class__ = BoundedRule
    return parsed


@dataclass(frozen=True)
class Occurrence:
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC; the interval is [start, end)

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


class WindowLike(Protocol):
    """What the evaluation reads of a window (``approvals.models.FreezeWindow`` has it)."""

    pk: Any
    name: str
    kind: str
    reason: str
    environment: str
    team: str
    active: bool
    dtstart: datetime
    duration_minutes: int
    rrule: str
    timezone: str

    @property
    def model_name(self) -> str: ...


def window_occurrences(window: WindowLike, *, start: datetime, end: datetime) -> list[Occurrence]:
    """The window's occurrences that overlap [start, end), in order. A window whose zone or
    rule does not parse (saving validates both: only a hand-edited row) has none."""
    try:
        tz = zone_of(window.timezone)
        rule = (
            parse_rrule(window.rrule, dtstart=window.dtstart, tz=tz)
            if window.rrule.strip()
            else None
        )
    except RecurrenceError:
        return []
    length = timedelta(minutes=window.duration_minutes)
    if rule is None:
        starts = [window.dtstart.astimezone(tz)]
    else:
        # Wall-clock arithmetic may move an occurrence by an hour against UTC: a day of slack.
        slack = length + timedelta(days=1)
        starts = rule.bounded_between(
            (start - slack).astimezone(tz), (end + timedelta(days=1)).astimezone(tz)
        )
    found = []
    for wall_start in starts:
        # A start in the spring gap (02:30 that never happens) is the instant the clocks moved
        # past it (03:30 summer time); the occurrence lasts its length from there.
        local_start = wall_start.astimezone(UTC).astimezone(tz)
        occurrence = Occurrence(local_start.astimezone(UTC), (local_start + length).astimezone(UTC))
        if occurrence.end > start and occurrence.start < end and occurrence.end > occurrence.start:
            found.append(occurrence)
    return found


def first_occurrence_problem(window: WindowLike, *, now: datetime) -> str:
    """Why the window would never take effect (no occurrence ends after ``now`` within the
    horizon), or "" when it does: the bounded check a form, the API and ``clean`` run."""
    horizon = now + timedelta(days=HORIZON_DAYS)
    if window.rrule.strip() and not window_occurrences(window, start=now, end=horizon):
        return "The rule has no occurrence in the next 2 years."
    return ""


def applies(window: WindowLike, *, environment: str, team: str, model_name: str) -> bool:
    """The window's scope covers this environment, team and model (blank team or model: any)."""
    if not window.active:
        return False
    if window.environment not in (ALL_ENVIRONMENTS, environment):
        return False
    if window.team and window.team.lower() != (team or "").lower():
        return False
    return not (window.model_name and window.model_name != model_name)


@dataclass(frozen=True)
class FreezeVerdict:
    """Whether promotions are frozen at ``now`` and why.

    ``cause``: "deny" (inside a deny occurrence; ``windows`` are those covering now), or
    "outside_allow" (allow windows apply and none is open; ``windows`` are those allow
    windows); ``reopens_at``: the first time from now that is not frozen (deny occurrences
    chained, then the next allow opening), None when none in the next 2 years."""

    frozen: bool
    cause: str = ""
    windows: tuple = ()
    reopens_at: datetime | None = None
    covering: tuple[Occurrence, ...] = field(default=(), compare=False)


def freeze_verdict(
    *, windows, environment: str, team: str, model_name: str, now: datetime
) -> FreezeVerdict:
    """Deny wins over allow; when an allow window applies to the scope, promotions are allowed
    only inside one of its occurrences."""
    scoped = [
        w for w in windows if applies(w, environment=environment, team=team, model_name=model_name)
    ]
    denies = [w for w in scoped if w.kind == DENY]
    allows = [w for w in scoped if w.kind == ALLOW]
    horizon = now + timedelta(days=HORIZON_DAYS)
    covering = [(w, o) for w in denies for o in _covering([w], now)]
    if covering:
        return FreezeVerdict(
            True,
            DENY,
            tuple({id(w): w for w, _ in covering}.values()),  # unsaved models do not hash
            _reopen(denies, allows, now, horizon),
            tuple(o for _, o in covering),
        )
    if allows and not _inside_allow(allows, now):
        return FreezeVerdict(
            True, "outside_allow", tuple(allows), _reopen(denies, allows, now, horizon)
        )
    return FreezeVerdict(False)


def _covering(windows, at: datetime) -> list[Occurrence]:
    return [
        o
        for w in windows
        for o in window_occurrences(w, start=at, end=at + timedelta(seconds=1))
        if o.covers(at)
    ]


def _inside_allow(allows, at: datetime) -> bool:
    return bool(_covering(allows, at))


def _reopen(denies, allows, now: datetime, horizon: datetime) -> datetime | None:
    """The first instant from ``now`` outside every deny occurrence and (allow windows
    applying) inside an allow one: covering deny occurrences are chained to their latest end,
    then a closed allow scope waits for the next opening, and so on."""
    at = now
    for _ in range(MAX_CHAIN):
        if at >= horizon:
            return None
        denied = _covering(denies, at)
        if denied:
            at = max(o.end for o in denied)
            continue
        if allows and not _inside_allow(allows, at):
            opening = _next_opening(allows, at, horizon)
            if opening is None:
                return None
            at = opening
            continue
        return at
    return None


def _next_opening(allows, at: datetime, horizon: datetime) -> datetime | None:
    """The next allow occurrence's start after ``at``: a day ahead first, then a month, then
    the horizon (an hourly window expands a few occurrences, not two years of them)."""
    for span in (timedelta(days=1), timedelta(days=31), horizon - at):
        end = min(at + span, horizon)
        starts = [
            o.start
            for w in allows
            for o in window_occurrences(w, start=at, end=end)
            if o.start > at
        ]
        if starts:
            return min(starts)
    return None


def upcoming_occurrences(
    windows, *, start: datetime, end: datetime
) -> list[tuple[Any, Occurrence]]:
    """Every (window, occurrence) overlapping [start, end), by start time: the page's list."""
    pairs = [(w, o) for w in windows for o in window_occurrences(w, start=start, end=end)]
    return sorted(pairs, key=lambda pair: (pair[1].start, pair[0].name))


def format_local(at: datetime, zone_name: str) -> str:
    """A time as people read it in the window's zone: "Fri 4 Dec 2026 18:00 CET"."""
    local = at.astimezone(zone_of(zone_name))
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} {local.tzname()}"
