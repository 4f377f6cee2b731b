"""Relative times read like a person would say them, on every page (one humanizer)."""

import datetime as dt

import pytest
from django.utils import timezone

from core.templatetags.portal_ui import relative_time, when
from pipelines.templatetags.pipelines_ui import when_short

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
NBSP = "\xa0"


def ago(**delta):
    return NOW - dt.timedelta(**delta)


@pytest.mark.parametrize(
    ("moment", "depth", "text"),
    [
        (NOW, 2, "just now"),
        (ago(seconds=59), 2, "just now"),
        (ago(seconds=59), 1, "just now"),
        (ago(seconds=60), 2, f"1{NBSP}minute ago"),
        (ago(hours=2, minutes=59), 2, f"2{NBSP}hours, 59{NBSP}minutes ago"),
        # one unit: rounded to the nearest, never cut down
        (ago(hours=2, minutes=59), 1, f"3{NBSP}hours ago"),
        (ago(hours=2, minutes=29), 1, f"2{NBSP}hours ago"),
        (ago(hours=2, minutes=30), 1, f"3{NBSP}hours ago"),
        (ago(minutes=1, seconds=29), 1, f"1{NBSP}minute ago"),
        (ago(minutes=1, seconds=30), 1, f"2{NBSP}minutes ago"),
        # rounding up into the next unit says the next unit
        (ago(minutes=59, seconds=40), 1, f"1{NBSP}hour ago"),
        (ago(hours=23, minutes=40), 1, f"1{NBSP}day ago"),
        (ago(days=6, hours=13), 1, f"1{NBSP}week ago"),
        (ago(days=12), 1, f"2{NBSP}weeks ago"),
        (ago(days=45), 1, f"2{NBSP}months ago"),
        (ago(days=400), 1, f"1{NBSP}year ago"),
        # the future too
        (NOW + dt.timedelta(seconds=30), 2, "in less than a minute"),
        (NOW + dt.timedelta(hours=2, minutes=59), 1, f"in 3{NBSP}hours"),
        (NOW + dt.timedelta(days=1, hours=3), 2, f"in 1{NBSP}day, 3{NBSP}hours"),
    ],
)
def test_relative_time_boundaries(moment, depth, text):
    assert relative_time(moment, now=NOW, depth=depth) == text


@pytest.mark.parametrize("template_filter", [when, when_short])
def test_the_template_filters_say_just_now_not_zero_minutes(template_filter):
    html = template_filter(timezone.now() - dt.timedelta(seconds=5))
    assert ">just now</time>" in html
    assert "0\xa0minutes" not in html


def test_the_short_filter_rounds():
    html = when_short(timezone.now() - dt.timedelta(hours=2, minutes=59, seconds=50))
    assert f">3{NBSP}hours ago</time>" in html
