"""Forms of the pipelines pages: the runs filters (shared with the API) and the run trigger."""

from __future__ import annotations

from django import forms

from .models import PipelineKind
from .selectors import (
    DEFAULT_SORT,
    RESULT_FILTERS,
    SORTS,
    STATE_FILTERS,
    PipelineFilters,
    RunFilters,
)

SORT_CHOICES = [(k, k) for k in SORTS] + [(f"-{k}", f"-{k}") for k in SORTS]
DATE_FORMATS = ["%Y-%m-%d"]


class PipelineFilterForm(forms.Form):
    model = forms.CharField(required=False, max_length=255)
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *PipelineKind.choices])
    project = forms.CharField(required=False, max_length=64)

    def filters(self) -> PipelineFilters:
        data = getattr(self, "cleaned_data", {})
        return PipelineFilters(
            model=(data.get("model") or "").strip(),
            kind=data.get("kind") or "",
            project=(data.get("project") or "").strip(),
        )


class RunFilterForm(PipelineFilterForm):
    """The runs list's filter bar; its state lives in the URL (GET parameters)."""

    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *STATE_FILTERS.items()])
    result = forms.ChoiceField(
        required=False, choices=[("", "Any result"), *RESULT_FILTERS.items()]
    )
    trigger = forms.CharField(required=False, max_length=50, label="Reason")
    date_from = forms.DateField(
        required=False, input_formats=DATE_FORMATS, label="From", help_text="YYYY-MM-DD (UTC)"
    )
    date_to = forms.DateField(
        required=False, input_formats=DATE_FORMATS, label="To", help_text="YYYY-MM-DD (UTC)"
    )
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filters(self) -> RunFilters:
        """The filters from the valid fields (an invalid field is left out, not guessed)."""
        base = super().filters()
        data = getattr(self, "cleaned_data", {})
        return RunFilters(
            model=base.model,
            kind=base.kind,
            project=base.project,
            state=data.get("state") or "",
            result=data.get("result") or "",
            trigger=(data.get("trigger") or "").strip(),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            sort=data.get("sort") or DEFAULT_SORT,
        )


def form_errors_text(form: forms.Form) -> str:
    """The form's errors as one sentence, e.g. for an API's 400 answer."""
    parts = []
    for name, errors in form.errors.items():
        text = " ".join(str(e) for e in errors)
        parts.append(text if name == "__all__" else f"{name}: {text}")
    return "Invalid filters: " + "; ".join(parts)


class TriggerForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why you are running it (optional); it is kept with the request.",
    )
