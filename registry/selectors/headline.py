"""The headline version of a model: the version its headline alias points at.

Which alias: the catalog entry's own ``headline_alias``, else its team's (TeamPreference,
matched in any case), else the ``REGISTRY_HEADLINE_ALIAS`` setting ("champion"). A model
without that alias on any live registered model headlines its latest version instead, and
the pages say so (``fallback``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from ..models import CatalogModel, RegisteredModel, TeamPreference

RULE_MODEL, RULE_TEAM, RULE_DEFAULT = "model", "team", "default"


@dataclass(frozen=True)
class Headline:
    """The headline of one model: the alias asked for, where the choice came from, the version."""

    alias: str
    rule: str  # RULE_MODEL, RULE_TEAM or RULE_DEFAULT
    registration: RegisteredModel | None
    version: int | None
    fallback: bool  # the alias is on no live registered model: this is the latest version

    @property
    def label(self) -> str:
        """What a column header or a badge calls it: "@champion"."""
        return f"@{self.alias}"

    @property
    def explanation(self) -> str:
        source = {
            RULE_MODEL: "this model's choice",
            RULE_TEAM: "its team's choice",
            RULE_DEFAULT: "the portal's default",
        }[self.rule]
        if self.version is None:
            return f"No version carries @{self.alias} ({source}) and none is in the mirror."
        if self.fallback:
            return f"No version carries @{self.alias} ({source}); showing the latest version."
        return f"The version @{self.alias} points at ({source})."


def default_headline_alias() -> str:
    return str(getattr(settings, "REGISTRY_HEADLINE_ALIAS", "") or "champion").lstrip("@")


def team_headline_aliases() -> dict[str, str]:
    """Team (lower case) -> its headline alias, for every team that chose one (one query)."""
    return {
        team.strip().lower(): alias.strip().lstrip("@")
        for team, alias in TeamPreference.objects.exclude(headline_alias="").values_list(
            "team", "headline_alias"
        )
        if alias.strip().lstrip("@")
    }


def team_preference_list() -> list[TeamPreference]:
    return list(TeamPreference.objects.order_by("team"))


def headline_alias_for(model: CatalogModel, team_aliases: dict[str, str]) -> tuple[str, str]:
    """(alias, rule) of a catalog entry: its own, else its team's, else the default."""
    own = (model.headline_alias or "").strip().lstrip("@")
    if own:
        return own, RULE_MODEL
    team = (getattr(model, "eff_team", None) or model.effective_team or "").strip().lower()
    if team and team in team_aliases:
        return team_aliases[team], RULE_TEAM
    return default_headline_alias(), RULE_DEFAULT


def headline_for(
    model: CatalogModel,
    registrations: list[RegisteredModel],
    *,
    team_aliases: dict[str, str],
    latest: tuple[RegisteredModel | None, int | None] = (None, None),
) -> Headline:
    """The headline of ``model`` from its live ``registrations`` (central source first) and
    its ``latest`` (registered model, version number), used when the alias is absent."""
    alias, rule = headline_alias_for(model, team_aliases)
    live = sorted(
        (r for r in registrations if r.deleted_upstream_at is None),
        key=lambda r: (not r.source.is_central, r.source.name, r.name),
    )
    for registration in live:
        number = (registration.aliases or {}).get(alias)
        if isinstance(number, int) and not isinstance(number, bool):
            return Headline(alias, rule, registration, number, fallback=False)
    registration, number = latest
    if registration is None or number is None:
        return Headline(alias, rule, None, None, fallback=True)
    return Headline(alias, rule, registration, number, fallback=True)


def headlines_attach(models: list[CatalogModel]) -> list[CatalogModel]:
    """Set ``model.headline`` on rows of ``catalog_model_list`` (one query for the teams)."""
    team_aliases = team_headline_aliases()
    for model in models:
        listed = model.listed_registrations
        latest = next((r for r in listed if r.pk == model.latest_version_model_id), None)
        model.headline = headline_for(
            model, listed, team_aliases=team_aliases, latest=(latest, model.latest_version)
        )
    return models


def headline_column_label(models: list[CatalogModel]) -> str:
    """The model list's column header: "@champion version", or "Headline version" when the
    rows headline different aliases."""
    aliases = {m.headline.alias for m in models if getattr(m, "headline", None)}
    if len(aliases) == 1:
        return f"@{aliases.pop()} version"
    if not aliases:
        return f"@{default_headline_alias()} version"
    return "Headline version"
