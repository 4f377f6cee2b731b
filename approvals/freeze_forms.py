"""The freeze window form of the pages: the start (and optional end) are typed as wall-clock
time in the window's own zone, which is how people say them ("Friday 16:00 Amsterdam")."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.core.exceptions import ValidationError

from registry.models import CatalogModel

from . import freeze
from .models import FreezeKind, FreezeScope, FreezeWindow

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
COMMON_ZONES = ["UTC", "Europe/Amsterdam", "Europe/London", "America/New_York", "Asia/Singapore"]


class FreezeWindowForm(forms.Form):
    """Create or edit one window; ``clean`` gives every bad input its own message (the model's
    validation: the rule parses, has an occurrence in the next 2 years, the zone exists)."""

    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(
        choices=FreezeKind.choices,
        help_text="Deny: promotions are refused inside. Allow: when an allow window applies, "
        "promotions are refused outside its occurrences. Deny wins.",
    )
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown with every refusal the window causes.",
    )
    environment = forms.ChoiceField(choices=FreezeScope.choices)
    team = forms.CharField(max_length=100, required=False, help_text="Blank: every team.")
    catalog_model = forms.ModelChoiceField(
        queryset=CatalogModel.objects.order_by("name"),
        to_field_name="name",
        required=False,
        label="Model",
        empty_label="Every model",
        help_text="Blank: every model.",
        error_messages={"invalid_choice": "No catalog model has this name."},
    )
    timezone = forms.CharField(
        max_length=64,
        initial="UTC",
        label="Time zone",
        help_text="IANA name; the start, the end and the rule are read in it.",
        widget=forms.TextInput(attrs={"list": "freeze-zones", "autocomplete": "off"}),
    )
    starts = forms.DateTimeField(
        label="First occurrence starts",
        input_formats=[LOCAL_FORMAT, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT),
    )
    duration_minutes = forms.IntegerField(
        min_value=1,
        max_value=366 * 24 * 60,
        required=False,
        label="Duration (minutes)",
        help_text="Or leave it blank and give the end of the first occurrence below.",
    )
    ends = forms.DateTimeField(
        required=False,
        label="First occurrence ends",
        input_formats=[LOCAL_FORMAT, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT),
    )
    rrule = forms.CharField(
        max_length=500,
        required=False,
        label="Repeats (RRULE)",
        help_text="RFC 5545, e.g. FREQ=WEEKLY;BYDAY=FR (every Friday) or "
        "FREQ=WEEKLY;BYDAY=TU,WE,TH. Blank: once.",
    )
    active = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, window: FreezeWindow | None = None, **kwargs):
        if window is not None and "initial" not in kwargs:
            kwargs["initial"] = initial_of(window)
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                widget.attrs.setdefault("class", "form-check-input")
            elif isinstance(widget, forms.Select):
                widget.attrs.setdefault("class", "form-select")
            else:
                widget.attrs.setdefault("class", "form-control")
            if field.help_text:
                widget.attrs.setdefault("aria-describedby", f"id_{_name_of(self, field)}_helptext")

    def clean(self):
        data = super().clean()
        zone_name = (data.get("timezone") or "").strip()
        try:
            tz = freeze.zone_of(zone_name)
        except freeze.RecurrenceError as exc:
            self.add_error("timezone", str(exc))
            return data
        data["timezone"] = zone_name
        starts, ends = data.get("starts"), data.get("ends")
        if starts is None:
            return data
        data["dtstart"] = _in_zone(starts, tz)
        minutes = data.get("duration_minutes")
        if minutes is None and ends is None:
            self.add_error("duration_minutes", "Give a duration, or when the first one ends.")
        elif minutes is None:
            length = _in_zone(ends, tz) - data["dtstart"]
            if length < timedelta(minutes=1):
                self.add_error("ends", "The end must be after the start.")
            else:
                data["duration_minutes"] = int(length.total_seconds() // 60)
        return data

    def window_fields(self) -> dict:
        """What the services take (``freeze_window_create`` / ``_update``)."""
        data = self.cleaned_data
        return {
            "name": data["name"].strip(),
            "kind": data["kind"],
            "reason": data["reason"].strip(),
            "environment": data["environment"],
            "team": data["team"].strip(),
            "catalog_model": data["catalog_model"],
            "dtstart": data["dtstart"],
            "duration_minutes": data["duration_minutes"],
            "rrule": data["rrule"].strip(),
            "timezone": data["timezone"],
            "active": data["active"],
        }

    def apply_errors(self, error: ValidationError) -> None:
        """The model's validation errors on the form's own fields."""
        renamed = {"dtstart": "starts"}
        if hasattr(error, "error_dict"):
            for name, errors in error.error_dict.items():
                target = renamed.get(name, name)
                self.add_error(target if target in self.fields else None, errors)
        else:
            self.add_error(None, error)

    def mark_invalid_fields(self) -> None:
        """Bootstrap's is-invalid on each field with an error."""
        for name in self.errors:
            if name in self.fields:
                attrs = self.fields[name].widget.attrs
                attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()
                attrs["aria-invalid"] = "true"


def _name_of(form: forms.Form, field) -> str:
    return next(name for name, f in form.fields.items() if f is field)


def _in_zone(value: datetime, tz) -> datetime:
    """A typed wall-clock time (Django made it aware in UTC) as that time in ``tz``."""
    return value.replace(tzinfo=None).replace(tzinfo=tz)


def initial_of(window: FreezeWindow) -> dict:
    """A saved window as the form shows it: start and end in the window's zone."""
    tz = freeze.zone_of(window.timezone)
    start = window.dtstart.astimezone(tz)
    return {
        "name": window.name,
        "kind": window.kind,
        "reason": window.reason,
        "environment": window.environment,
        "team": window.team,
        "catalog_model": window.catalog_model.name if window.catalog_model_id else "",
        "timezone": window.timezone,
        "starts": start.strftime(LOCAL_FORMAT),
        "duration_minutes": window.duration_minutes,
        "rrule": window.rrule,
        "active": window.active,
    }
