"""What started serving where, and when: one append-only row per deploying stage.

A release run's QA or PROD stage that completes successfully puts its version into service on
its target (AKS, a Databricks job…) at the stage's finish time, which ADO records exactly. The
version serves until the next record of the same lane (model, environment, target) starts:
the end is read from that next row, never written back, so the table stays append-only (on
PostgreSQL a trigger refuses UPDATE and DELETE, migration 0007). Several targets of one
environment are several lanes, each with its own version.
"""

from __future__ import annotations

from django.db import models

from core.append_only import AppendOnlyModel

from .base import Environment, PipelineRun, RunStage


class DeploymentRecord(AppendOnlyModel):
    """A version that started serving in an environment on a target."""

    catalog_model = models.ForeignKey(
        "registry.CatalogModel", on_delete=models.PROTECT, related_name="deployment_records"
    )
    environment = models.CharField(max_length=10, choices=Environment.choices)
    target = models.CharField(
        max_length=100, help_text="Lower case, as deployments_now names it ('default' if none)."
    )
    # The mirror's rows may go (a run past ADO's retention); the record stays.
    run = models.ForeignKey(
        PipelineRun, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    stage = models.OneToOneField(
        RunStage, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    version_label = models.CharField(
        max_length=50, blank=True, help_text="v3, or the run's modelVersion if unregistered."
    )
    approval_ids = models.JSONField(
        default=list, blank=True, help_text="The stage's ADO approvals."
    )
    requested_by = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(help_text="When it started serving (the stage finished).")
    observed_at = models.DateTimeField(help_text="When the pipelines sync recorded it.")

    append_only_name = "The deployment history is"

    class Meta:
        ordering = ["started_at", "pk"]
        indexes = [
            models.Index(fields=["catalog_model", "environment", "target", "started_at"]),
            models.Index(fields=["catalog_model", "started_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.catalog_model_id} {self.environment}/{self.target} {self.version_label}"
