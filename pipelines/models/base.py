"""Azure DevOps pipelines, their runs and stages, mirrored per ADO project.

Pipelines are per model (each serves one catalog entry); runs link to the model version they
trained or deployed, by configuration and by convention (see docs/pipelines.md).
"""

from django.conf import settings
from django.db import models

from core.models import EnvironmentDeclared, SyncBookkeeping


class PipelineKind(models.TextChoices):
    CI = "ci", "CI"
    DATA_CLEANSING = "data_cleansing", "Data cleansing"
    TRAINING = "training", "Training"
    SCORING = "scoring", "Scoring"
    RELEASE = "release", "Release"
    OTHER = "other", "Other"


class RunState(models.TextChoices):
    # ADO pipelines API values
    UNKNOWN = "unknown", "Unknown"
    IN_PROGRESS = "inProgress", "Running"
    CANCELING = "canceling", "Canceling"
    COMPLETED = "completed", "Completed"


class RunResult(models.TextChoices):
    NONE = "", "—"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIALLY_SUCCEEDED = "partiallySucceeded", "Partially succeeded"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"
    UNKNOWN = "unknown", "Unknown"


class Environment(models.TextChoices):
    NONE = "", "—"
    QA = "QA", "QA"
    PROD = "PROD", "PROD"


class AdoProject(SyncBookkeeping, EnvironmentDeclared):
    """One ADO organisation + project whose pipelines the portal mirrors.

    ``SyncBookkeeping`` gives the ``last_sync_*`` and lease columns and their writes
    (``sync_started`` / ``sync_succeeded`` / ``sync_failed``) and ``sync_status``."""

    name = models.SlugField(
        max_length=64, unique=True, help_text="Short name used in URLs and logs."
    )
    organization_url = models.URLField(
        max_length=300, help_text="e.g. https://dev.azure.com/contoso"
    )
    project = models.CharField(max_length=200, help_text="ADO project name or id.")
    enabled = models.BooleanField(default=True)
    sync_interval_seconds = models.PositiveIntegerField(default=120)

    # Sync bookkeeping (with SyncBookkeeping's columns), written only by pipelines.services.
    cursor = models.DateTimeField(
        null=True, blank=True, help_text="Latest run change seen (queue/start/finish time)."
    )
    service_identity = models.CharField(
        max_length=300,
        blank=True,
        help_text="Whom the portal's credentials are in ADO (connectionData), read by a full "
        "sync, a first sync and Test connection: the name ADO records the portal's approvals as.",
    )

    class Meta:
        verbose_name = "ADO project"
        verbose_name_plural = "ADO projects"
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization_url", "project"], name="pipelines_project_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def base_url(self) -> str:
        return f"{self.organization_url.rstrip('/')}/{self.project}"


class Pipeline(models.Model):
    project = models.ForeignKey(AdoProject, on_delete=models.PROTECT, related_name="pipelines")
    ado_id = models.PositiveIntegerField()
    name = models.CharField(max_length=300)
    folder = models.CharField(max_length=500, blank=True)
    kind = models.CharField(max_length=20, choices=PipelineKind.choices, default=PipelineKind.OTHER)
    catalog_model = models.ForeignKey(
        "registry.CatalogModel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pipelines",
        help_text="The model this pipeline serves (pipelines are per model).",
    )
    kind_set_by_hand = models.BooleanField(
        default=False, help_text="Kind and model were set by an operator; the sync keeps them."
    )
    web_url = models.URLField(max_length=500, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    deleted_upstream_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "ado_id"], name="pipelines_pipeline_unique")
        ]

    def __str__(self) -> str:
        return self.name


class PipelineRun(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="runs")
    ado_id = models.PositiveIntegerField(help_text="Run id (= build id).")
    name = models.CharField(max_length=300, blank=True, help_text="Run number, e.g. 20261126.3")
    state = models.CharField(max_length=20, choices=RunState.choices, default=RunState.UNKNOWN)
    result = models.CharField(max_length=20, choices=RunResult.choices, blank=True)
    reason = models.CharField(
        max_length=50, blank=True, help_text="ADO build reason: manual, schedule…"
    )
    trigger = models.CharField(
        max_length=50, blank=True, help_text="Why it ran, in the workflow's words: new data, drift…"
    )
    requested_by = models.CharField(max_length=300, blank=True)
    requested_by_id = models.CharField(max_length=100, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    source_branch = models.CharField(max_length=300, blank=True)
    source_version = models.CharField(max_length=100, blank=True, help_text="Commit.")
    web_url = models.URLField(max_length=500, blank=True)
    parameters = models.JSONField(default=dict, blank=True, help_text="templateParameters.")
    model_version = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pipeline_runs",
        help_text="The version this run trained, scored or deployed.",
    )
    # Set when the portal queued the run.
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger_note = models.TextField(blank=True)

    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    timeline_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at", "-ado_id"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "ado_id"], name="pipelines_run_unique")
        ]
        indexes = [
            models.Index(fields=["state"]),
            models.Index(fields=["-queued_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.name} #{self.name or self.ado_id}"

    @property
    def is_running(self) -> bool:
        return self.state in (RunState.IN_PROGRESS, RunState.CANCELING)

    @property
    def stated_version(self) -> str:
        """The version number the run says it works on (its ``modelVersion`` parameter), "" if
        none: what names a rule-based model's version when no registry holds it."""
        return str((self.parameters or {}).get("modelVersion") or "").strip()


class RunStage(models.Model):
    run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="stages")
    record_id = models.CharField(max_length=64, help_text="Timeline record id.")
    identifier = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=300)
    order = models.IntegerField(default=0)
    environment = models.CharField(max_length=10, choices=Environment.choices, blank=True)
    target = models.CharField(
        max_length=100, blank=True, help_text="Where it deploys: AKS, Databricks job…"
    )
    state = models.CharField(
        max_length=20, blank=True, help_text="pending / inProgress / completed"
    )
    result = models.CharField(max_length=30, blank=True)
    waiting_for_approval = models.BooleanField(default=False)
    approval_ids = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "order"]
        constraints = [
            models.UniqueConstraint(fields=["run", "record_id"], name="pipelines_stage_unique")
        ]

    def __str__(self) -> str:
        return f"{self.run} / {self.name}"


class HookDelivery(models.Model):
    """ADO service-hook deliveries already accepted (by event id), so duplicates are no-ops."""

    event_id = models.CharField(max_length=100, unique=True)
    project = models.ForeignKey(
        AdoProject, on_delete=models.CASCADE, related_name="hook_deliveries"
    )
    event_type = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "hook deliveries"
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["received_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class RunRequest(models.Model):
    """A run the portal asked ADO to queue: who asked and why, and what ADO answered.

    The web process never calls ADO itself: it records the request, and a task sends it.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting to be sent"
        SENT = "sent", "Queued in ADO"
        FAILED = "failed", "Failed"

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="run_requests")
    parameters = models.JSONField(default=dict, blank=True)
    reason = models.CharField(
        max_length=50, help_text="manual, new-data, drift, threshold, schedule…"
    )
    note = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # The outbox columns: sent at least once, and exactly once in effect, because a retry
    # first looks in ADO for a run carrying this key (templateParameter portalRequestId).
    key = models.CharField(
        max_length=40, blank=True, db_index=True, help_text="portalRequestId, unique per request."
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="Not before this; the sweep uses it."
    )
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is sending it until then."
    )
    run = models.ForeignKey(
        PipelineRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="requests"
    )
    # A rollback (pipelines/services/rollback.py): the version serving when it was asked for,
    # and the version it puts back.
    rollback_of = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A rollback: the version it replaces.",
    )
    rollback_to = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A rollback: the version it deploys again.",
    )

    class Meta:
        ordering = ["-requested_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.pipeline} ({self.reason}) by {self.requested_by or 'automation'}"
