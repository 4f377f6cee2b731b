"""Forms of the operations pages: the inbox filters (GET, kept in the URL), declining a
proposal (a reason is required) and the "Create this rule" form of an unmatched signal."""

from __future__ import annotations

from django import forms
from django.db import IntegrityError, transaction

from registry.models import CatalogModel

from .models import (
    OPEN_STATES,
    TRIGGER_KINDS,
    Disposition,
    EpisodeKind,
    EpisodeState,
    MatchField,
    MatchRule,
    Severity,
    SignalFormat,
    SignalKind,
)
from .selectors import EPISODE_SORTS, SIGNAL_SORTS, TABS, EpisodeFilters, SignalFilters

STATE_CHOICES = [
    ("open", "Open"),
    ("closed", "Closed"),
    ("all", "Open or closed"),
    *((s, EpisodeState(s).label) for s in OPEN_STATES),
]
STALLED_CHOICES = [("", "Stalled or not"), ("1", "Stalled only"), ("0", "Not stalled")]
SORT_KEYS = sorted({*EPISODE_SORTS, *SIGNAL_SORTS})


class InboxFilterForm(forms.Form):
    """The inbox's tab and filter bar. An invalid field is shown and left out, never guessed."""

    tab = forms.ChoiceField(required=False, choices=[(t, t) for t in TABS])
    model = forms.CharField(required=False, max_length=255)
    state = forms.ChoiceField(required=False, choices=STATE_CHOICES)
    stalled = forms.ChoiceField(required=False, choices=STALLED_CHOICES)
    kind = forms.ChoiceField(required=False, choices=[("", "Any"), *SignalKind.choices])
    episode_kind = forms.ChoiceField(required=False, choices=[("", "Any"), *EpisodeKind.choices])
    disposition = forms.ChoiceField(
        required=False,
        choices=[("", "Any"), *((d.value, d.label) for d in Disposition if d.value)],
    )
    format = forms.ChoiceField(required=False, choices=[("", "Any"), *SignalFormat.choices])
    q = forms.CharField(required=False, max_length=200, label="Search")
    sort = forms.ChoiceField(
        required=False, choices=[(s, s) for k in SORT_KEYS for s in (k, f"-{k}")]
    )

    def _data(self) -> dict:
        return getattr(self, "cleaned_data", {})

    @property
    def active_tab(self) -> str:
        return self._data().get("tab") or "episodes"

    def episode_filters(self) -> EpisodeFilters:
        d = self._data()
        stalled = {"1": True, "0": False}.get(d.get("stalled") or "")
        sort = d.get("sort") or ""
        if sort.lstrip("-") not in EPISODE_SORTS:
            sort = ""
        state = (
            EpisodeState.PROPOSED if self.active_tab == "proposals" else d.get("state") or "open"
        )
        return EpisodeFilters(
            model=(d.get("model") or "").strip(),
            state=state,
            stalled=stalled,
            kind=d.get("episode_kind") or "",
            trigger_kind=d.get("kind") or "",
            q=(d.get("q") or "").strip(),
            sort=sort or ("opened" if self.active_tab == "proposals" else ""),
        )

    def signal_filters(self) -> SignalFilters:
        d = self._data()
        sort = d.get("sort") or ""
        if sort.lstrip("-") not in SIGNAL_SORTS:
            sort = ""
        unmatched = self.active_tab == "unmatched"
        return SignalFilters(
            model="" if unmatched else (d.get("model") or "").strip(),
            kind=d.get("kind") or "",
            disposition="" if unmatched else d.get("disposition") or "",
            format=d.get("format") or "",
            unmatched=unmatched,
            q=(d.get("q") or "").strip(),
            sort=sort,
        )


class DeclineForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the run is declined."},
    )


class RuleCreateForm(forms.ModelForm):
    """One suggested match rule, with the catalog model an admin chooses for it."""

    catalog_model = forms.ModelChoiceField(
        queryset=CatalogModel.objects.order_by("name"),
        to_field_name="name",
        label="Catalog model",
        error_messages={"required": "Choose the model this signal is about."},
    )
    field = forms.ChoiceField(choices=MatchField.choices)

    class Meta:
        model = MatchRule
        fields = ["field", "value", "catalog_model"]

    def save_as(self, user) -> MatchRule:
        """Create the rule (a duplicate field/value is a form error, never a 500)."""
        rule = self.save(commit=False)
        rule.created_by = user
        rule.note = "Created from an unmatched signal"
        try:
            with transaction.atomic():
                rule.save()
        except IntegrityError:
            self.add_error("value", "A rule with this field and value exists already.")
            raise
        return rule


class DemoSignalForm(forms.Form):
    """The demo's "send a signal" button (admins, only when settings.DEMO is on)."""

    model = forms.ModelChoiceField(
        queryset=CatalogModel.objects.order_by("name"),
        to_field_name="name",
        error_messages={"invalid_choice": "No catalog model has this name."},
    )
    kind = forms.ChoiceField(
        choices=[(str(k), k.label) for k in TRIGGER_KINDS], initial=str(SignalKind.DRIFT)
    )
    severity = forms.ChoiceField(choices=Severity.choices, initial=str(Severity.WARNING))
