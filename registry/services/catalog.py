"""The catalog: entries the sync links registered models to, and the edits people make.

A catalog entry is the organisation's record of a model. The sync creates one for each newly
registered model (named by a tag or by the model's short name) and derives its categories
from the registry tags. People create one for a rule-based model that is never registered,
and correct the category of any entry (kind, serving, team: blank means "take it from the
registry tags"), its description and owners.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.sync import values_assign

from ..models import CatalogModel, ModelKind, RegisteredModel, RegistrySource, Serving
from .preferences import headline_alias_clean

# Entries the sync links and derives ------------------------------------------------------

KIND_VALUES = {
    "ml": ModelKind.ML, "ml_model": ModelKind.ML, "machine_learning": ModelKind.ML,
    "rule_based": ModelKind.RULE_BASED, "rulebased": ModelKind.RULE_BASED,
    "rules": ModelKind.RULE_BASED, "rule": ModelKind.RULE_BASED,
}  # fmt: skip
SERVING_VALUES = {
    "batch": Serving.BATCH, "real_time": Serving.REAL_TIME, "realtime": Serving.REAL_TIME,
    "online": Serving.REAL_TIME, "streaming": Serving.REAL_TIME,
}  # fmt: skip


def _normalise(value: str) -> str:
    return value.strip().lower().replace("-", "_").replace(" ", "_")


def category_from_tags(tags: dict[str, str]) -> dict[str, str]:
    """The categories registry tags state ('' where a tag is missing or unrecognised)."""
    keys = settings.REGISTRY_CATEGORY_TAGS
    return {
        "registry_kind": KIND_VALUES.get(_normalise(tags.get(keys["kind"], "")), ""),
        "registry_serving": SERVING_VALUES.get(_normalise(tags.get(keys["serving"], "")), ""),
        "registry_team": tags.get(keys["team"], "").strip()[:100],
    }


def catalog_name_for(source: RegistrySource, name: str, tags: dict[str, str]) -> str:
    """The catalog entry a registered model belongs to: a tag, else its (short) name."""
    explicit = tags.get(settings.REGISTRY_CATALOG_NAME_TAG, "").strip()
    if explicit:
        return explicit[:255]
    if source.is_unity_catalog and name.count(".") == 2:
        return name.rsplit(".", 1)[1]
    return name[:255]


def catalog_entries_assign(source: RegistrySource, models: list[RegisteredModel]) -> set[int]:
    """Give unlinked registered models their catalog entry, creating missing entries with the
    categories and description their registry states. Returns the ids of entries that existed
    already and so need their categories refreshed."""
    unlinked = [m for m in models if m.catalog_model_id is None]
    if not unlinked:
        return set()
    wanted = {id(m): catalog_name_for(source, m.name, m.tags) for m in unlinked}
    names = set(wanted.values())
    existing = {c.name: c for c in CatalogModel.objects.filter(name__in=names)}
    created: dict[str, CatalogModel] = {}
    for model in unlinked:
        name = wanted[id(model)]
        if name not in existing and name not in created:
            created[name] = CatalogModel(
                name=name, description=model.description, **category_from_tags(model.tags)
            )
    # ignore_conflicts: another source's sync may create the same entry at the same moment.
    CatalogModel.objects.bulk_create(created.values(), batch_size=1000, ignore_conflicts=True)
    entries = (
        {c.name: c for c in CatalogModel.objects.filter(name__in=names)} if created else existing
    )
    for model in unlinked:
        model.catalog_model = entries[wanted[id(model)]]
    return {entries[name].pk for name in names if name in existing or name not in created}


def catalog_categories_refresh(catalog_ids: set[int]) -> None:
    """Derive registry_kind/serving/team from the linked models, the central registry first."""
    entries = CatalogModel.objects.filter(pk__in=catalog_ids)
    registered = (
        RegisteredModel.objects.filter(
            catalog_model_id__in=catalog_ids, deleted_upstream_at__isnull=True
        )
        .select_related("source")
        .order_by("-source__is_central", "source__name")
    )
    by_entry: dict[int, list[RegisteredModel]] = {}
    for model in registered:
        by_entry.setdefault(model.catalog_model_id, []).append(model)
    changed = []
    for entry in entries:
        derived = {"registry_kind": "", "registry_serving": "", "registry_team": ""}
        for model in by_entry.get(entry.pk, []):
            for key, value in category_from_tags(model.tags).items():
                derived[key] = derived[key] or value
        description = entry.description
        if not description:
            description = next(
                (m.description for m in by_entry.get(entry.pk, []) if m.description), ""
            )
        if values_assign(entry, {**derived, "description": description}):
            changed.append(entry)
    CatalogModel.objects.bulk_update(
        changed,
        ["registry_kind", "registry_serving", "registry_team", "description"],
        batch_size=1000,
    )


# Edits people make -------------------------------------------------------------------------

EDITABLE_FIELDS = ("description", "kind", "serving", "team", "owners", "headline_alias")
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
    headline_alias: str = "",
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
        headline_alias=headline_alias_clean(headline_alias),
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
    if "headline_alias" in fields:
        fields["headline_alias"] = headline_alias_clean(fields["headline_alias"])
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
