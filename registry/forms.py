"""Forms of the registry pages: the catalog filters (shared with the API) and catalog edits."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from .models import ModelKind, Serving
from .selectors import SORTS, CatalogFilters

SORT_CHOICES = [(k, label) for k, (label, _) in SORTS.items()] + [
    (f"-{k}", f"{label} (descending)") for k, (label, _) in SORTS.items()
]
YES_NO = [("", "Registered or not"), ("yes", "Registered"), ("no", "Not registered")]


def _truthy(value) -> bool:
    return str(value).lower() in {"1", "true", "yes", "on"}


class CatalogFilterForm(forms.Form):
    """The model list's filter bar; its state lives in the URL (GET parameters)."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    source = forms.CharField(required=False, max_length=64)
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind"), *ModelKind.choices])
    serving = forms.ChoiceField(required=False, choices=[("", "Any serving"), *Serving.choices])
    team = forms.CharField(required=False, max_length=100)
    registered = forms.ChoiceField(required=False, choices=YES_NO)
    alias = forms.CharField(required=False, max_length=255)
    tag = forms.CharField(
        required=False,
        max_length=500,
        help_text="key=value (or just key) on the registered model's tags; repeat for several.",
    )
    include_deleted = forms.CharField(required=False)
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def clean_tag(self):
        tags = []
        raw_values = self.data.getlist("tag") if hasattr(self.data, "getlist") else []
        if not raw_values and self.cleaned_data.get("tag"):
            raw_values = [self.cleaned_data["tag"]]
        for raw in raw_values:
            raw = raw.strip()
            if not raw:
                continue
            if "\x00" in raw:
                raise ValidationError("A tag filter cannot contain a NUL character (%00).")
            key, sep, value = raw.partition("=")
            key = key.strip()
            if not key:
                raise ValidationError("Write a tag filter as key=value, e.g. team=risk.")
            tags.append((key, value.strip() if sep else None))
        return tuple(tags)

    def clean_include_deleted(self):
        return _truthy(self.cleaned_data.get("include_deleted") or "")

    def filters(self) -> CatalogFilters:
        """The filters from the valid fields (an invalid field is left out, not guessed)."""
        data = getattr(self, "cleaned_data", {})
        registered = data.get("registered")
        return CatalogFilters(
            q=(data.get("q") or "").strip(),
            source=(data.get("source") or "").strip(),
            kind=data.get("kind") or "",
            serving=data.get("serving") or "",
            team=(data.get("team") or "").strip(),
            registered={"yes": True, "no": False}.get(registered or ""),
            alias=(data.get("alias") or "").strip(),
            tags=data.get("tag") or (),
            include_deleted=bool(data.get("include_deleted")),
            sort=data.get("sort") or "name",
        )


class VersionFilterForm(forms.Form):
    """Filters of a model's versions (API): one source, deleted ones or not."""

    source = forms.CharField(required=False, max_length=64)
    include_deleted = forms.CharField(required=False)

    def clean_include_deleted(self):
        return _truthy(self.cleaned_data.get("include_deleted") or "")


class OwnersField(forms.CharField):
    """Comma-separated e-mail addresses, cleaned into a list."""

    def to_python(self, value):
        value = super().to_python(value)
        return [part.strip() for part in (value or "").split(",") if part.strip()]

    def validate(self, value):
        super().validate(value)
        bad = []
        for owner in value:
            try:
                validate_email(owner)
            except ValidationError:
                bad.append(owner)
        if bad:
            raise ValidationError(
                "Not an e-mail address: %(bad)s. Separate several addresses with commas.",
                params={"bad": ", ".join(bad)},
                code="invalid_email",
            )

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value


class CatalogModelForm(forms.Form):
    """Create (with a name) or edit (without) a catalog entry. Blank categories = registry's."""

    name = forms.CharField(
        max_length=255,
        help_text="Unique in the catalog; may contain dots and spaces, not “/” or “:”.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))
    kind = forms.ChoiceField(required=False, choices=[("", "From the registry tags")])
    serving = forms.ChoiceField(required=False, choices=[("", "From the registry tags")])
    team = forms.CharField(
        required=False, max_length=100, help_text="Blank: take it from the registry tags."
    )
    owners = OwnersField(
        required=False,
        max_length=2000,
        help_text="E-mail addresses, separated by commas.",
    )
    headline_alias = forms.CharField(
        required=False,
        max_length=256,
        label="Headline alias",
        help_text="The alias whose version this model shows first (list, page, home) instead "
        "of the latest, e.g. champion. Blank: its team's choice, else the portal's default.",
    )

    def __init__(self, *args, with_name: bool = True, catalog_model=None, **kwargs):
        super().__init__(*args, **kwargs)
        known = [(v, label) for v, label in ModelKind.choices if v != ModelKind.UNKNOWN]
        serving = [(v, label) for v, label in Serving.choices if v != Serving.UNKNOWN]
        registry_kind = registry_serving = registry_team = ""
        if catalog_model is not None:
            registry_kind = catalog_model.get_registry_kind_display()
            registry_serving = catalog_model.get_registry_serving_display()
            registry_team = catalog_model.registry_team
        if catalog_model is None:  # a new entry: nothing from a registry yet
            registry_kind = registry_serving = None
        self.fields["kind"].choices = [("", _from_registry(registry_kind)), *known]
        self.fields["serving"].choices = [("", _from_registry(registry_serving)), *serving]
        if registry_team:
            self.fields[
                "team"
            ].help_text = f"Blank: take it from the registry tags ({registry_team})."
        if not with_name:
            del self.fields["name"]
        for field in self.fields.values():
            css = "form-select" if isinstance(field, forms.ChoiceField) else "form-control"
            field.widget.attrs.setdefault("class", css)

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def mark_invalid_fields(self) -> None:
        """Bootstrap's is-invalid on each field with an error (call after adding errors)."""
        for name in self.errors:
            if name in self.fields:
                attrs = self.fields[name].widget.attrs
                attrs["class"] = f"{attrs.get('class', '')} is-invalid".strip()
                attrs["aria-invalid"] = "true"


def _from_registry(value: str | None) -> str:
    if value is None:
        return "Not set"
    return f"From the registry tags ({value})" if value else "From the registry tags (unknown)"
