"""Model cards: one catalog model's card, its revisions, the cards of many models at once
(the approvals inbox), and who may edit or review a card."""

from __future__ import annotations

from core.roles import Role, user_roles

from ..models import CatalogModel, ModelCard, ModelCardRevision
from .catalog import UNKNOWN, catalog_ids_owned_by, catalog_model_annotated, owner_names


def card_for(catalog_model: CatalogModel) -> ModelCard | None:
    """The model's card, or None when nobody wrote one yet."""
    return (
        ModelCard.objects.filter(catalog_model=catalog_model)
        .select_related("reviewed_by", "updated_by")
        .first()
    )


def cards_for(catalog_model_ids) -> dict[int, ModelCard]:
    """{catalog model pk: card} for many models in one query."""
    ids = [pk for pk in set(catalog_model_ids) if pk]
    if not ids:
        return {}
    return {
        c.catalog_model_id: c
        for c in ModelCard.objects.filter(catalog_model_id__in=ids).select_related("reviewed_by")
    }


def card_revisions(card: ModelCard | None, limit: int = 50) -> list[ModelCardRevision]:
    if card is None:
        return []
    return list(card.revisions.select_related("user")[:limit])


def user_teams(user) -> set[str]:
    """A portal user's teams: those of the catalog entries naming them as an owner, in lower
    case (core/roles: a user belongs to no team of their own)."""
    owned = catalog_ids_owned_by(user)
    if not owned:
        return set()
    teams = catalog_model_annotated().filter(pk__in=owned).values_list("eff_team", flat=True)
    return {t.lower() for t in teams if t and t != UNKNOWN}


def card_edit_refusal(user, catalog_model: CatalogModel) -> str:
    """Why ``user`` may not edit the card ("" when they may): admins, owners of the model, and
    data scientists of its owning team may."""
    held = user_roles(user)
    if Role.ADMIN in held:
        return ""
    owners = {str(o).strip().lower() for o in catalog_model.owners or []}
    if owner_names(user) & owners:
        return ""
    if Role.DATA_SCIENTIST not in held:
        return (
            "Only data scientists of the owning team, the model's owners and admins edit its card."
        )
    team = (catalog_model.effective_team or "").lower()
    if not team:
        return (
            f"{catalog_model.name} has no owning team, so only its owners and admins edit its card."
        )
    if team not in user_teams(user):
        return f"Only data scientists of the {catalog_model.effective_team} team edit this card."
    return ""


def card_review_refusal(user) -> str:
    """Why ``user`` may not review cards ("" when they may): managers review."""
    if Role.MANAGER in user_roles(user):
        return ""
    return "Only a manager reviews a model card."
