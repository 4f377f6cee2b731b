"""The headline alias people choose: per catalog entry (the catalog edit form) and per team
(TeamPreference, the team preferences page and the admin)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import TeamPreference

# MLflow's alias names: letters, digits, "_" and "-" (it refuses "latest" and "v<number>").
ALIAS_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def _error(field: str | None, message: str) -> ValidationError:
    return ValidationError({field: message} if field else message, code="invalid")


def headline_alias_clean(value: str | None, *, field: str | None = "headline_alias") -> str:
    """An alias as MLflow would accept it, without a leading "@"; "" stays "" (the default).

    Raises ValidationError (keyed by ``field``, or plain when None) with a sentence."""
    alias = (value or "").strip().lstrip("@")
    if not alias:
        return ""
    if alias.lower() == "latest":
        raise _error(
            field, "Leave it blank for the latest version: “latest” is not an MLflow alias."
        )
    if not ALIAS_PATTERN.match(alias) or re.fullmatch(r"[vV]\d+", alias):
        raise _error(
            field,
            f"“{alias}” is not an MLflow alias: use letters, digits, “_” and “-” "
            "(e.g. champion), not v<number>.",
        )
    return alias


def team_preference_set(*, team: str, headline_alias: str, updated_by: str = "") -> TeamPreference:
    """Set a team's headline alias (blank: back to the default); the team matches in any case."""
    team = (team or "").strip()
    if not team or team.lower() == "unknown":
        raise ValidationError({"team": "Name a team (the catalog's team of its models)."})
    if len(team) > 100:
        raise ValidationError({"team": "A team name has at most 100 characters."})
    alias = headline_alias_clean(headline_alias)
    with transaction.atomic():
        existing = TeamPreference.objects.select_for_update().filter(team__iexact=team).first()
        if existing is None:
            return TeamPreference.objects.create(
                team=team, headline_alias=alias, updated_by=updated_by[:300]
            )
        existing.headline_alias = alias
        existing.updated_by = updated_by[:300]
        existing.save(update_fields=["headline_alias", "updated_by", "updated_at"])
        return existing
