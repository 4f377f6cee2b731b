"""The home page's cards, and how the apps contribute them without the portal importing any.

Each app names a provider in ``PORTAL_HOME_CARD_PROVIDERS``: ``f(user, held_roles) ->
list[HomeCard]``, the cards it has for the roles the user holds (``user`` may be ``None``: the
personal cards are then empty). The page shows the roles in the order of ``Role`` and, within
a role, the cards by ``order``, whatever the order of the setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.module_loading import import_string

from core.roles import Role


@dataclass(frozen=True)
class HomeCard:
    """One card of a role's home page: what waits for that role, or why nothing does yet."""

    key: str
    role: str
    title: str
    empty_text: str
    items: tuple = ()
    # Figures a card shows beside its items (e.g. the outbox backlog); empty for most cards.
    summary: dict = field(default_factory=dict)
    link: str = ""  # "see all" page
    link_label: str = "See all"
    order: int = 100  # its place among the cards of its role, lowest first


def home_cards(held_roles: frozenset[str], user=None) -> list[HomeCard]:
    """The cards of every role the user holds, grouped by role, collected from the providers."""
    cards: list[HomeCard] = []
    for dotted in settings.PORTAL_HOME_CARD_PROVIDERS:
        cards.extend(import_string(dotted)(user, held_roles) or [])
    rank = {role: position for position, role in enumerate(Role.values)}
    held = [card for card in cards if card.role in held_roles]
    return sorted(held, key=lambda card: (rank.get(card.role, len(rank)), card.order))
