"""What the syncs saw change in a registry, kept append-only (mlflow/mlflow#2169: "which
version was in production when").

A sync sees states, not changes: it compares what the registry holds now with the mirror and
writes one event per difference. The change happened after the last sync that saw the old
state (``previously_seen_at``) and no later than the sync that saw the new one
(``observed_at``); pages say "between A and B" unless the registry itself says when
(``upstream_at``, e.g. a version's creation time). Moves that came and went between two
syncs are not seen, and nothing here pretends they were.
"""

from __future__ import annotations

from django.db import models

from core.append_only import AppendOnlyModel

from .base import ModelVersion, RegisteredModel, RegistrySource


class RegistryEventKind(models.TextChoices):
    MODEL_CREATED = "model_created", "Model registered"
    MODEL_DELETED = "model_deleted", "Model deleted"
    MODEL_REAPPEARED = "model_reappeared", "Model back in the registry"
    MODEL_DESCRIPTION = "model_description", "Model description changed"
    MODEL_TAG_SET = "model_tag_set", "Model tag set"
    MODEL_TAG_REMOVED = "model_tag_removed", "Model tag removed"
    VERSION_CREATED = "version_created", "Version registered"
    VERSION_DELETED = "version_deleted", "Version deleted"
    VERSION_REAPPEARED = "version_reappeared", "Version back in the registry"
    VERSION_STATUS = "version_status", "Version status changed"
    VERSION_STAGE = "version_stage", "Version stage changed"
    VERSION_DESCRIPTION = "version_description", "Version description changed"
    VERSION_TAG_SET = "version_tag_set", "Version tag set"
    VERSION_TAG_REMOVED = "version_tag_removed", "Version tag removed"
    ALIAS_SET = "alias_set", "Alias set"
    ALIAS_REMOVED = "alias_removed", "Alias removed"


ALIAS_KINDS = (RegistryEventKind.ALIAS_SET, RegistryEventKind.ALIAS_REMOVED)


class RegistryEvent(AppendOnlyModel):
    """One difference a sync saw between the registry and the mirror.

    ``name`` is the alias or the tag key; ``old_value`` / ``new_value`` what it was and is
    (an alias: the version numbers; a tag: its values; a status or stage: the strings).
    Append-only: on PostgreSQL a trigger refuses UPDATE and DELETE (migration 0005).
    """

    source = models.ForeignKey(RegistrySource, on_delete=models.PROTECT, related_name="+")
    registered_model = models.ForeignKey(
        RegisteredModel, on_delete=models.PROTECT, related_name="events"
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The version concerned (an alias: the new one)."
    )
    kind = models.CharField(max_length=32, choices=RegistryEventKind.choices)
    name = models.CharField(max_length=500, blank=True, help_text="The alias or the tag key.")
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    observed_at = models.DateTimeField(help_text="The sync that saw the change.")
    previously_seen_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The last sync that saw the old state: the change happened after it. "
        "Blank: the first time the portal saw this model.",
    )
    upstream_at = models.DateTimeField(
        null=True, blank=True, help_text="When the registry says it happened, if it says."
    )
    seen_by = models.CharField(
        max_length=20, blank=True, help_text="full sweep, incremental sync or targeted re-read"
    )

    append_only_name = "The registry history is"

    class Meta:
        ordering = ["observed_at", "pk"]
        indexes = [
            models.Index(fields=["registered_model", "observed_at"]),
            models.Index(fields=["registered_model", "kind", "observed_at"]),
        ]

    def __str__(self) -> str:
        what = f" v{self.version}" if self.version else ""
        return f"{self.registered_model}{what}: {self.get_kind_display()} at {self.observed_at}"

    @property
    def happened_after(self):
        """The earliest moment it can have happened (None: unknown, before the first sync)."""
        return self.upstream_at or self.previously_seen_at

    @property
    def happened_by(self):
        """The latest moment it can have happened."""
        return self.upstream_at or self.observed_at
