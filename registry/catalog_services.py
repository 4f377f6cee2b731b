"""State changes of the catalog made by people in the portal (the sync lives in services.py).

A catalog entry is the organisation's record of a model. People create one for a rule-based
model that is never registered, and correct the category of any entry (kind, serving, team:
blank means "take it from the registry tags"), its description and owners.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from .models import CatalogModel

EDITABLE_FIELDS = ("description", "kind", "serving", "team", "owners")
FORBIDDEN_NAME_CHARACTERS = "/:"


def catalog_name_validate(name: str) -> None:
    """Names appear in URLs and version references (source:name:version)."""
    if any(c in name for c in FORBIDDEN_NAME_CHARACTERS):
        raise ValidationError(
            {"name": "A model name may not contain “/” or “:”."}, code="invalid_character"
        )
    if name.strip() != name or not name:
        raise ValidationError(
            {"name": "A model name may not be empty or start or end with a space."},
            code="invalid",
        )
    if name in (".", ".."):  # path segments that browsers collapse
        raise ValidationError(
            {"name": f"“{name}” is reserved; pick another name."}, code="reserved"
        )


def _owners_clean(owners) -> list[str]:
    if owners is None:
        return []
    if isinstance(owners, str):
        owners = owners.split(",")
    cleaned: list[str] = []
    for owner in owners:
        owner = str(owner).strip()
        if owner and owner not in cleaned:
            cleaned.append(owner)
    return cleaned


def catalog_model_create(
    *,
    name: str,
    description: str = "",
    kind: str = "",
    serving: str = "",
    team: str = "",
    owners: list[str] | None = None,
    created_by=None,
) -> CatalogModel:
    """Create a catalog entry (e.g. a rule-based model that is never registered).

    Raises ValidationError (``name`` key) when the name is taken or not usable in URLs.
    """
    catalog_name_validate(name)
    catalog_model = CatalogModel(
        name=name,
        description=description or "",
        kind=kind or "",
        serving=serving or "",
        team=(team or "").strip(),
        owners=_owners_clean(owners),
        created_by=created_by,
    )
    catalog_model.full_clean()
    try:
        with transaction.atomic():
            catalog_model.save()
    except IntegrityError as exc:  # a concurrent create of the same name won the race
        raise ValidationError(
            {"name": f"A catalog model named “{name}” already exists."}, code="unique"
        ) from exc
    return catalog_model


def catalog_model_update(*, catalog_model: CatalogModel, **fields) -> CatalogModel:
    """Change the editable fields of a catalog entry; full_clean, then save only those."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    if "owners" in fields:
        fields["owners"] = _owners_clean(fields["owners"])
    if "team" in fields:
        fields["team"] = (fields["team"] or "").strip()
    for field in ("description", "kind", "serving"):
        if field in fields and fields[field] is None:
            fields[field] = ""
    before = {field: getattr(catalog_model, field) for field in fields}
    for field, value in fields.items():
        setattr(catalog_model, field, value)
    try:
        catalog_model.full_clean()
    except ValidationError:
        for field, value in before.items():  # leave the caller's object as it was
            setattr(catalog_model, field, value)
        raise
    catalog_model.save(update_fields=[*fields, "updated_at"])
    return catalog_model
