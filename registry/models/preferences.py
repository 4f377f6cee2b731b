"""Per-team preferences of the registry pages: which alias a team's models headline."""

from __future__ import annotations

from django.db import models


class TeamPreference(models.Model):
    """A team's choices for its models' pages (one row per team, matched in any case)."""

    team = models.CharField(
        max_length=100, unique=True, help_text="The team as the catalog names it (any case)."
    )
    headline_alias = models.CharField(
        max_length=255,
        blank=True,
        help_text="The alias the team's models show as their headline version (blank: the "
        "portal's default, REGISTRY_HEADLINE_ALIAS). A model's own choice wins.",
    )
    updated_by = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["team"]

    def __str__(self) -> str:
        return f"{self.team}: @{self.headline_alias or '(default)'}"
