"""The registry's own section of the model page (``REGISTRY_MODEL_PAGE_SECTIONS``): the model
card with its risk and review badges, the buttons the user's roles allow, its last changes."""

from __future__ import annotations

from . import selectors
from .sections import Section


def card_context(request, catalog_model) -> dict:
    card = selectors.card_for(catalog_model)
    return {
        "catalog_model": catalog_model,
        "card": card,
        "can_edit": not selectors.card_edit_refusal(request.user, catalog_model),
        "can_review": not selectors.card_review_refusal(request.user),
        "revisions": selectors.card_revisions(card, limit=5),
    }


def model_page(request, catalog_model) -> list[Section]:
    return [
        Section(
            "Model card",
            "registry/_model_card.html",
            card_context(request, catalog_model),
            order=5,
        )
    ]
