"""Forms of the approvals pages: the inbox filters, the decision, the audit trail filters.

Filter forms live in the URL (GET); an invalid field is shown and left out, never guessed.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.conf import settings

from pipelines.models import Environment

from .models import ApprovalStatus, AuditAction, DecisionStatus
from .selectors import AGE_CHOICES, SORTS, TABS, ApprovalFilters, AuditFilters

ENVIRONMENT_CHOICES = [("", "Any environment"), *Environment.choices]
AGE_LABELS = {"1h": "Over an hour", "1d": "Over a day", "7d": "Over a week"}
DECIDED_STATUSES = [
    ApprovalStatus.APPROVED,
    ApprovalStatus.REJECTED,
    ApprovalStatus.CANCELED,
    ApprovalStatus.TIMED_OUT,
    ApprovalStatus.SKIPPED,
]
INBOX_SORTS = [(k, k) for k in SORTS]
DATE_FORMATS = ["%Y-%m-%d"]


class ApprovalFilterForm(forms.Form):
    """The inbox's filter bar and tab (GET parameters)."""

    tab = forms.ChoiceField(required=False, choices=[(t, t) for t in TABS])
    environment = forms.ChoiceField(required=False, choices=ENVIRONMENT_CHOICES)
    team = forms.CharField(required=False, max_length=100)
    model = forms.CharField(required=False, max_length=255)
    overdue = forms.BooleanField(required=False)
    age = forms.ChoiceField(
        required=False,
        choices=[("", "Any age"), *((k, AGE_LABELS.get(k, k)) for k in AGE_CHOICES)],
        label="Waiting",
    )
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any outcome"), *((s.value, s.label) for s in DECIDED_STATUSES)],
        label="Outcome",
    )
    q = forms.CharField(required=False, max_length=200, label="Search")
    sort = forms.ChoiceField(required=False, choices=INBOX_SORTS)

    def filters(self) -> ApprovalFilters:
        data = getattr(self, "cleaned_data", {})
        tab = data.get("tab") or "pending"
        return ApprovalFilters(
            tab=tab,
            environment=data.get("environment") or "",
            model=(data.get("model") or "").strip(),
            team=(data.get("team") or "").strip(),
            overdue=bool(data.get("overdue")) and tab == "pending",
            older_than=data.get("age") or "",
            status=(data.get("status") or "") if tab == "decided" else "",
            q=(data.get("q") or "").strip(),
            sort=data.get("sort") or "",
        )


class DecisionForm(forms.Form):
    """Approve or reject, with a comment (required to reject). ``confirm`` marks the second
    step: the first POST only asks "are you sure"."""

    status = forms.ChoiceField(
        choices=DecisionStatus.choices,
        error_messages={
            "required": "Choose approve or reject.",
            "invalid_choice": "Choose approve or reject.",
        },
    )
    comment = forms.CharField(
        required=False,
        max_length=settings.APPROVALS_COMMENT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        strip=True,
    )
    confirm = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if data.get("status") == DecisionStatus.REJECTED and not data.get("comment"):
            self.add_error("comment", "A rejection needs a comment saying why.")
        return data

    @property
    def confirmed(self) -> bool:
        return bool(getattr(self, "cleaned_data", {}).get("confirm"))


class AuditFilterForm(forms.Form):
    """The audit trail's filter bar (GET parameters)."""

    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *AuditAction.choices])
    actor = forms.CharField(required=False, max_length=300)
    environment = forms.ChoiceField(required=False, choices=ENVIRONMENT_CHOICES)
    model = forms.CharField(required=False, max_length=255)
    approval = forms.IntegerField(required=False, min_value=1, label="Approval #")
    date_from = forms.DateField(required=False, input_formats=DATE_FORMATS, label="From")
    date_to = forms.DateField(required=False, input_formats=DATE_FORMATS, label="To")
    sort = forms.ChoiceField(
        required=False, choices=[(k, k) for k in ("at", "-at", "action", "-action")]
    )

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filters(self) -> AuditFilters:
        """Dates are whole UTC days: From is inclusive, To includes its whole day."""
        data = getattr(self, "cleaned_data", {})
        start, end = data.get("date_from"), data.get("date_to")
        return AuditFilters(
            action=data.get("action") or "",
            actor=(data.get("actor") or "").strip(),
            environment=data.get("environment") or "",
            model=(data.get("model") or "").strip(),
            approval=data.get("approval"),
            since=_day_start(start) if start else None,
            until=_day_start(end + dt.timedelta(days=1)) if end else None,
        )

    @property
    def sort_key(self) -> str:
        return getattr(self, "cleaned_data", {}).get("sort") or "-at"


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
