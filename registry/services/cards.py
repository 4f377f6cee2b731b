"""Model card changes: an edit (data scientists of the owning team, owners, admins), a
submission for review, a manager's review (approve, or back to draft with a reason), and
archiving. Every change writes its ModelCardRevision in the same transaction: the audit."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from core.errors import PortalError

from ..models import (
    CARD_FIELDS,
    CardAction,
    CardStatus,
    CatalogModel,
    ModelCard,
    ModelCardRevision,
    RiskRating,
)
from ..selectors.cards import card_edit_refusal, card_review_refusal

FIELD_MAX_LENGTH = 20_000


class CardRefused(PortalError):
    code = "card_refused"
    http_status = 403


def _display(user) -> str:
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return (full or user.get_username())[:300]


def _locked_card(catalog_model: CatalogModel) -> ModelCard:
    card, _ = ModelCard.objects.get_or_create(catalog_model=catalog_model)
    return ModelCard.objects.select_for_update().get(pk=card.pk)


def _revision(card, action, user, changes=None, comment="") -> ModelCardRevision:
    return ModelCardRevision.objects.create(
        card=card,
        action=action,
        user=user,
        user_name=_display(user),
        changes=changes or {},
        comment=comment,
    )


def _clean(data: dict) -> dict:
    clean = {}
    for name in CARD_FIELDS:
        if name not in data:
            continue
        value = str(data[name] if data[name] is not None else "").strip()
        if name == "risk_rating" and value not in ("", *RiskRating.values):
            raise PortalError(
                "Choose a risk rating of low, medium or high (or leave it blank).",
                code="invalid_risk_rating",
                http_status=400,
            )
        if len(value) > FIELD_MAX_LENGTH:
            raise PortalError(
                f"Keep {name.replace('_', ' ')} under {FIELD_MAX_LENGTH} characters.",
                code="too_long",
                http_status=400,
            )
        clean[name] = value
    return clean


def card_update(*, catalog_model: CatalogModel, user, data: dict, comment: str = "") -> ModelCard:
    """Edit the card's fields (creating the card on the first edit). An edit of an approved
    or in-review card sends it back to draft: the review was of other words."""
    refusal = card_edit_refusal(user, catalog_model)
    if refusal:
        raise CardRefused(refusal)
    clean = _clean(data)
    with transaction.atomic():
        created = not ModelCard.objects.filter(catalog_model=catalog_model).exists()
        card = _locked_card(catalog_model)
        if card.review_status == CardStatus.ARCHIVED:
            raise CardRefused("This card is archived; it is no longer edited.", http_status=409)
        changes = {
            name: [getattr(card, name), value]
            for name, value in clean.items()
            if getattr(card, name) != value
        }
        if not changes and not created:
            return card
        for name, (_, value) in changes.items():
            setattr(card, name, value)
        if card.review_status in (CardStatus.APPROVED, CardStatus.IN_REVIEW):
            changes["review_status"] = [card.review_status, CardStatus.DRAFT]
            card.review_status = CardStatus.DRAFT
        card.updated_by = user
        card.save()
        action = CardAction.CREATED if created else CardAction.EDITED
        _revision(card, action, user, changes, comment)
    return card


def _status_change(card, user, action, new_status, comment="", reviewed=False) -> ModelCard:
    changes = {"review_status": [card.review_status, new_status]}
    card.review_status = new_status
    if reviewed:
        card.reviewed_by = user
        card.reviewed_at = timezone.now()
        changes["reviewed_by"] = [None, _display(user)]
    card.save()
    _revision(card, action, user, changes, comment)
    return card


def card_submit(*, catalog_model: CatalogModel, user) -> ModelCard:
    """Ask a manager to review a draft card."""
    refusal = card_edit_refusal(user, catalog_model)
    if refusal:
        raise CardRefused(refusal)
    with transaction.atomic():
        card = ModelCard.objects.select_for_update().filter(catalog_model=catalog_model).first()
        if card is None:
            raise CardRefused("Write the model card before submitting it.", http_status=409)
        if card.review_status != CardStatus.DRAFT:
            raise CardRefused(
                f"Only a draft is submitted; this card is {card.get_review_status_display()}.",
                http_status=409,
            )
        if not card.intended_use or not card.risk_rating:
            raise PortalError(
                "A card needs its intended use and a risk rating before review.",
                code="card_incomplete",
                http_status=400,
            )
        return _status_change(card, user, CardAction.SUBMITTED, CardStatus.IN_REVIEW)


REVIEW_APPROVE = "approve"
REVIEW_RETURN = "return"
REVIEW_OUTCOMES = (REVIEW_APPROVE, REVIEW_RETURN)  # the API names its enum after it


def card_review(*, catalog_model: CatalogModel, user, outcome: str, comment: str = "") -> ModelCard:
    """A manager approves the card in review, or sends it back to draft saying why."""
    refusal = card_review_refusal(user)
    if refusal:
        raise CardRefused(refusal)
    comment = (comment or "").strip()
    if outcome not in (REVIEW_APPROVE, REVIEW_RETURN):
        raise PortalError("Choose approve or return.", code="invalid_outcome", http_status=400)
    if outcome == REVIEW_RETURN and not comment:
        raise PortalError(
            "Sending a card back to draft needs a comment saying why.",
            code="comment_required",
            http_status=400,
        )
    with transaction.atomic():
        card = ModelCard.objects.select_for_update().filter(catalog_model=catalog_model).first()
        if card is None or card.review_status != CardStatus.IN_REVIEW:
            state = card.get_review_status_display() if card else "not written"
            raise CardRefused(
                f"Only a card in review is reviewed; this one is {state}.", http_status=409
            )
        if outcome == REVIEW_APPROVE:
            return _status_change(
                card, user, CardAction.APPROVED, CardStatus.APPROVED, comment, reviewed=True
            )
        return _status_change(
            card, user, CardAction.RETURNED, CardStatus.DRAFT, comment, reviewed=True
        )


def card_archive(*, catalog_model: CatalogModel, user, comment: str = "") -> ModelCard:
    """Retire a card (the model is retired, or the card is replaced): managers and editors."""
    if card_review_refusal(user) and card_edit_refusal(user, catalog_model):
        raise CardRefused("Only a manager or an editor of this card archives it.")
    with transaction.atomic():
        card = ModelCard.objects.select_for_update().filter(catalog_model=catalog_model).first()
        if card is None or card.review_status == CardStatus.ARCHIVED:
            raise CardRefused("There is no live card to archive.", http_status=409)
        return _status_change(card, user, CardAction.ARCHIVED, CardStatus.ARCHIVED, comment)
