"""Forms of the history page (its filters, kept in the URL) and the point-in-time question,
shared with the API so both answer bad input the same way."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import Environment
from .selectors_history import DEFAULT_RANGE, HISTORY_KINDS, RANGES

ENVIRONMENT_CHOICES = [(Environment.QA.value, "QA"), (Environment.PROD.value, "PROD")]
RANGE_LABELS = {"30d": "Last 30 days", "90d": "Last 90 days", "1y": "Last year", "all": "All"}
AT_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")


def parse_moment(text: str) -> dt.datetime | None:
    """A UTC moment from a datetime-local value (taken as UTC) or ISO 8601 with an offset;
    None if it is not one."""
    text = (text or "").strip()
    if not text:
        return None
    for fmt in AT_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.UTC)
        except ValueError:
            continue
    try:
        parsed = parse_datetime(text)
    except ValueError:
        return None
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


class HistoryFilterForm(forms.Form):
    range = forms.ChoiceField(required=False, choices=list(RANGE_LABELS.items()))
    environment = forms.ChoiceField(
        required=False, choices=[("", "Any environment"), *ENVIRONMENT_CHOICES]
    )
    kind = forms.ChoiceField(
        required=False, choices=[("", "Any event"), *HISTORY_KINDS.items()], label="Event"
    )

    def value(self, name: str) -> str:
        data = getattr(self, "cleaned_data", {})
        return data.get(name) or ""

    @property
    def range_key(self) -> str:
        return self.value("range") or DEFAULT_RANGE

    @property
    def days(self) -> int | None:
        return RANGES[self.range_key]


class ServingForm(forms.Form):
    """ "What served in <environment> at <moment UTC>"."""

    environment = forms.ChoiceField(choices=ENVIRONMENT_CHOICES, initial=Environment.PROD.value)
    at = forms.CharField(
        max_length=40,
        label="At (UTC)",
        help_text="A moment in UTC, e.g. 2026-10-03T14:00 or 2026-10-03T14:00:00Z",
    )

    def clean_at(self) -> dt.datetime:
        moment = parse_moment(self.cleaned_data["at"])
        if moment is None:
            raise forms.ValidationError(
                "Not a date and time: give one like 2026-10-03T14:00 (UTC) or 2026-10-03T14:00:00Z."
            )
        if moment.year < 1970 or moment > timezone.now() + dt.timedelta(days=3660):
            raise forms.ValidationError("Give a moment between 1970 and ten years from now.")
        return moment
