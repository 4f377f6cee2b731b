"""Operations: the signals monitoring and data arrival send, what they may start (trigger
policies), and the episodes that follow a signal to a run, a new version, its evaluation
against the champion and its way through QA and PROD (docs/operations.md).

``RawSignal`` keeps every request body as it came (append-only, bad ones too); ``Signal`` is
one normalised event, unique by its dedupe key, so a redelivered event is one signal.
"""

from __future__ import annotations

from datetime import time

from django.conf import settings
from django.db import models

from core.append_only import AppendOnlyModel


class SignalKind(models.TextChoices):
    DATA_ARRIVAL = "data_arrival", "Data arrival"
    DRIFT = "drift", "Drift"
    THRESHOLD_BREACH = "threshold_breach", "Threshold breach"
    PERFORMANCE_DROP = "performance_drop", "Performance drop"
    RESOLVED = "resolved", "Resolved"


# The kinds that may start a run (RESOLVED only closes the alert it names).
TRIGGER_KINDS = (
    SignalKind.DATA_ARRIVAL,
    SignalKind.DRIFT,
    SignalKind.THRESHOLD_BREACH,
    SignalKind.PERFORMANCE_DROP,
)


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    ERROR = "error", "Error"
    WARNING = "warning", "Warning"
    INFO = "info", "Informational"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2, Severity.CRITICAL: 3}


class SignalFormat(models.TextChoices):
    AZURE_MONITOR = "azure_monitor", "Azure Monitor alert (common alert schema)"
    EVENT_GRID = "event_grid", "Azure Event Grid (Event Grid schema)"
    CLOUDEVENTS = "cloudevents", "Azure Event Grid (CloudEvents 1.0)"
    DATABRICKS = "databricks", "Databricks job notification"
    EVIDENTLY = "evidently", "Evidently report"
    GENERIC = "generic", "Plain JSON signal"


class IntakeOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    DUPLICATE = "duplicate", "Duplicate (already received)"
    HANDSHAKE = "handshake", "Subscription validation"
    IGNORED = "ignored", "Nothing to act on"
    REJECTED = "rejected", "Rejected (bad payload)"
    REFUSED = "refused", "Refused (not authenticated)"


class RawSignal(AppendOnlyModel):
    """One request to a signal endpoint, kept as it came, whatever became of it."""

    append_only_name = "Raw signals are"

    received_at = models.DateTimeField(db_index=True)
    format = models.CharField(max_length=20, choices=SignalFormat.choices)
    sender = models.CharField(
        max_length=300, blank=True, help_text="Who sent it: the sender key's name or the user."
    )
    content_type = models.CharField(max_length=200, blank=True)
    headers = models.JSONField(default=dict, blank=True, help_text="The headers that matter.")
    body = models.TextField(blank=True, help_text="The body as received (UTF-8, truncated).")
    body_truncated = models.BooleanField(default=False)
    outcome = models.CharField(max_length=20, choices=IntakeOutcome.choices)
    error = models.TextField(blank=True, help_text="What was wrong, as the sender was told.")
    signal_count = models.PositiveIntegerField(default=0)
    remote_addr = models.CharField(max_length=100, blank=True)
    request_id = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [models.Index(fields=["outcome", "-received_at"])]

    def __str__(self) -> str:
        return f"{self.get_format_display()} {self.get_outcome_display()} at {self.received_at}"


class MatchField(models.TextChoices):
    MODEL_FIELD = "model_field", "Model name in the payload"
    ALERT_RULE = "alert_rule", "Alert rule name"
    TAG = "tag", "Tag (key=value)"
    RESOURCE_ID = "resource_id", "Azure resource id"
    BLOB_PREFIX = "blob_prefix", "Blob path prefix (container/path)"
    JOB_ID = "job_id", "Databricks job id"


class MatchRule(models.Model):
    """Which catalog model a signal is about when its payload does not name one the portal
    knows: an alert rule, a tag, a resource, a blob path prefix or a Databricks job."""

    field = models.CharField(max_length=20, choices=MatchField.choices)
    value = models.CharField(
        max_length=1000,
        help_text="Compared case-insensitively; a blob prefix matches the start of "
        "container/path; a tag is key=value.",
    )
    catalog_model = models.ForeignKey(
        "registry.CatalogModel", on_delete=models.CASCADE, related_name="signal_rules"
    )
    kind = models.CharField(
        max_length=20,
        choices=SignalKind.choices,
        blank=True,
        help_text="The kind a matched signal becomes (e.g. a Databricks monitoring job's "
        "failure is drift); blank keeps the kind the payload says.",
    )
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["field", "value"]
        constraints = [
            models.UniqueConstraint(fields=["field", "value"], name="operations_rule_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_field_display()} {self.value!r} → {self.catalog_model}"


class Disposition(models.TextChoices):
    """What the portal did with a signal."""

    PENDING = "", "Not decided yet"
    UNMATCHED = "unmatched", "Unmatched: no model"
    STARTED = "started", "Started an episode"
    PROPOSED = "proposed", "Proposed a run (needs a confirmation)"
    JOINED = "joined", "Joined the open episode"
    SUPPRESSED = "suppressed", "Suppressed by the policy"
    DEFERRED = "deferred", "Deferred to business hours"
    DRY_RUN = "dry_run", "Dry run: recorded only"
    IGNORED = "ignored", "Not a kind the policy acts on"
    RESOLVES = "resolves", "Resolved an alert"


class Signal(models.Model):
    """One normalised monitoring or data-arrival event."""

    raw = models.ForeignKey(RawSignal, on_delete=models.PROTECT, related_name="signals")
    format = models.CharField(max_length=20, choices=SignalFormat.choices)
    kind = models.CharField(max_length=20, choices=SignalKind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    observed_at = models.DateTimeField(help_text="When the sender says it happened.")
    received_at = models.DateTimeField(db_index=True)
    dedupe_key = models.CharField(max_length=500, unique=True)
    title = models.CharField(max_length=500, blank=True)
    source_ref = models.CharField(
        max_length=1000, blank=True, help_text="Alert rule, blob path, job id, report…"
    )
    attributes = models.JSONField(
        default=dict, blank=True, help_text="What the match rules look at (normalised)."
    )
    details = models.JSONField(default=dict, blank=True, help_text="Metric values, tests, ids.")
    catalog_model = models.ForeignKey(
        "registry.CatalogModel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="signals",
    )
    matched_by = models.CharField(max_length=300, blank=True)
    rule = models.ForeignKey(
        MatchRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="signals"
    )
    episode = models.ForeignKey(
        "Episode", null=True, blank=True, on_delete=models.SET_NULL, related_name="signals"
    )
    disposition = models.CharField(
        max_length=20, choices=Disposition.choices, blank=True, default=Disposition.PENDING
    )
    disposition_note = models.TextField(blank=True)
    resolves = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resolved_by",
        help_text="For a Resolved signal: the Fired one it closes.",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        indexes = [
            models.Index(fields=["catalog_model", "-received_at"]),
            models.Index(fields=["disposition", "-received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_format_display()}) {self.title}"


class TriggerMode(models.TextChoices):
    AUTOMATIC = "automatic", "Automatic: start the run"
    CONFIRM = "confirm", "Needs a confirmation"
    DRY_RUN = "dry_run", "Dry run: record what it would do"


def default_trigger_kinds() -> list[str]:
    return [str(k) for k in TRIGGER_KINDS]


def default_business_days() -> list[int]:
    return [0, 1, 2, 3, 4]


class TriggerPolicy(models.Model):
    """What a signal may start for a model. One row per model, or a default for a team and
    kind of model (blank team or kind: any); the most specific applies (docs/operations.md)."""

    catalog_model = models.OneToOneField(
        "registry.CatalogModel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="trigger_policy",
        help_text="Blank: a default for the team and kind below.",
    )
    team = models.CharField(max_length=100, blank=True, help_text="Defaults only; blank: any.")
    model_kind = models.CharField(
        max_length=16,
        blank=True,
        choices=[("ml", "ML model"), ("rule_based", "Rule-based model")],
        help_text="Defaults only; blank: any.",
    )
    enabled = models.BooleanField(default=True)
    mode = models.CharField(max_length=10, choices=TriggerMode.choices, default=TriggerMode.CONFIRM)
    pipeline = models.ForeignKey(
        "pipelines.Pipeline",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Blank: the model's training pipeline (scoring for a rule-based model).",
    )
    signal_kinds = models.JSONField(
        default=default_trigger_kinds, blank=True, help_text="The kinds that start a run."
    )
    min_severity = models.CharField(
        max_length=10, choices=Severity.choices, blank=True, help_text="Blank: any severity."
    )
    cooldown_minutes = models.PositiveIntegerField(
        default=60, help_text="After a run was requested, no other for this long."
    )
    dedupe_window_minutes = models.PositiveIntegerField(
        default=15,
        help_text="Signals this close to the episode's first one join it rather than start "
        "another, even after it closed.",
    )
    max_runs_per_day = models.PositiveIntegerField(default=3)
    business_hours_only = models.BooleanField(
        default=False, help_text="Outside them, a run waits for the next business hour."
    )
    business_hours_start = models.TimeField(default=time(8, 0))
    business_hours_end = models.TimeField(default=time(18, 0))
    business_days = models.JSONField(
        default=default_business_days, blank=True, help_text="0 = Monday … 6 = Sunday."
    )
    timezone = models.CharField(max_length=64, default="UTC")
    proposal_expiry_hours = models.PositiveIntegerField(
        default=24, help_text="A proposal nobody confirmed closes as expired after this."
    )
    release_on_promote = models.BooleanField(
        default=True,
        help_text="When the challenger beats the champion, queue the release pipeline for it "
        "(the QA approval follows).",
    )
    release_pipeline = models.ForeignKey(
        "pipelines.Pipeline",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Blank: the model's release pipeline.",
    )
    release_after_scoring = models.BooleanField(
        default=False,
        help_text="Rule-based models: queue the release after a successful scoring run.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "trigger policies"
        ordering = ["catalog_model__name", "team", "model_kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "model_kind"],
                condition=models.Q(catalog_model__isnull=True),
                name="operations_policy_default_unique",
            )
        ]

    def __str__(self) -> str:
        if self.catalog_model_id:
            return f"Policy for {self.catalog_model}"
        return f"Default policy (team {self.team or 'any'}, kind {self.model_kind or 'any'})"


class EpisodeState(models.TextChoices):
    PROPOSED = "proposed", "Waiting for a confirmation"
    DEFERRED = "deferred", "Waiting for business hours"
    REQUESTED = "requested", "Run requested"
    RUNNING = "running", "Run in progress"
    EVALUATING = "evaluating", "Waiting for the new version"
    RELEASING = "releasing", "Release requested"
    IN_QA = "in_qa", "Waiting for the QA approval"
    IN_PROD = "in_prod", "Waiting for the PROD approval"
    CLOSED = "closed", "Closed"


OPEN_STATES = tuple(s for s in EpisodeState.values if s != EpisodeState.CLOSED)


class EpisodeOutcome(models.TextChoices):
    NONE = "", "—"
    REACHED_PROD = "reached_prod", "Promoted to PROD"
    HELD = "held", "Held: not better than the champion"
    SCORED = "scored", "Scored"
    RUN_FAILED = "run_failed", "Run failed"
    NO_VERSION = "no_version", "No version registered"
    REJECTED = "rejected", "Rejected at an approval"
    DECLINED = "declined", "Proposal declined"
    EXPIRED = "expired", "Proposal expired"
    DRY_RUN = "dry_run", "Dry run"
    REQUEST_FAILED = "request_failed", "ADO did not queue the run"
    CANCELED = "canceled", "Canceled"


class EpisodeKind(models.TextChoices):
    RETRAIN = "retrain", "Retraining"
    RESCORE = "rescore", "Rescoring"


class Episode(models.Model):
    """From the signal(s) to the run, the new version, its evaluation, QA, PROD and the end."""

    catalog_model = models.ForeignKey(
        "registry.CatalogModel", on_delete=models.PROTECT, related_name="episodes"
    )
    kind = models.CharField(max_length=10, choices=EpisodeKind.choices)
    trigger_kind = models.CharField(max_length=20, choices=SignalKind.choices)
    mode = models.CharField(max_length=10, choices=TriggerMode.choices)
    state = models.CharField(max_length=12, choices=EpisodeState.choices)
    outcome = models.CharField(
        max_length=20, choices=EpisodeOutcome.choices, blank=True, default=EpisodeOutcome.NONE
    )
    outcome_note = models.TextField(blank=True)
    policy = models.JSONField(default=dict, blank=True, help_text="The policy as it applied.")
    first_signal = models.ForeignKey(
        Signal, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    pipeline = models.ForeignKey(
        "pipelines.Pipeline", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    parameters = models.JSONField(default=dict, blank=True)

    signal_at = models.DateTimeField(help_text="When the first signal was observed.")
    opened_at = models.DateTimeField(db_index=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="Deferred until then.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True, help_text="Confirmed or declined.")

    run_request = models.ForeignKey(
        "pipelines.RunRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(
        "pipelines.PipelineRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run_requested_at = models.DateTimeField(null=True, blank=True)
    run_started_at = models.DateTimeField(null=True, blank=True)
    run_finished_at = models.DateTimeField(null=True, blank=True)

    challenger = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    champion = models.ForeignKey(
        "registry.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version_registered_at = models.DateTimeField(null=True, blank=True)
    evaluation = models.JSONField(default=dict, blank=True, help_text="The comparison, in numbers.")
    evaluated_at = models.DateTimeField(null=True, blank=True)

    release_request = models.ForeignKey(
        "pipelines.RunRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    release_run = models.ForeignKey(
        "pipelines.PipelineRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    release_requested_at = models.DateTimeField(null=True, blank=True)
    qa_approval = models.ForeignKey(
        "approvals.ApprovalRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    qa_requested_at = models.DateTimeField(null=True, blank=True)
    qa_decided_at = models.DateTimeField(null=True, blank=True)
    prod_approval = models.ForeignKey(
        "approvals.ApprovalRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    prod_requested_at = models.DateTimeField(null=True, blank=True)
    prod_decided_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    stalled_reason = models.CharField(max_length=300, blank=True)
    stalled_since = models.DateTimeField(null=True, blank=True)
    followed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        indexes = [
            models.Index(fields=["catalog_model", "-opened_at"]),
            models.Index(fields=["state", "-opened_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.catalog_model} #{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state != EpisodeState.CLOSED


class EpisodeStep(models.TextChoices):
    SIGNAL = "signal", "Signal"
    PROPOSED = "proposed", "Proposed"
    DEFERRED = "deferred", "Deferred"
    CONFIRMED = "confirmed", "Confirmed"
    DECLINED = "declined", "Declined"
    RUN_REQUESTED = "run_requested", "Run requested"
    RUN_QUEUED = "run_queued", "Run queued in ADO"
    RUN_STARTED = "run_started", "Run started"
    RUN_FINISHED = "run_finished", "Run finished"
    VERSION = "version", "Version registered"
    EVALUATED = "evaluated", "Challenger against champion"
    RELEASE_REQUESTED = "release_requested", "Release requested"
    QA_REQUESTED = "qa_requested", "QA approval requested"
    QA_DECIDED = "qa_decided", "QA decided"
    PROD_REQUESTED = "prod_requested", "PROD approval requested"
    PROD_DECIDED = "prod_decided", "PROD decided"
    STALLED = "stalled", "Stalled"
    CLOSED = "closed", "Closed"


class EpisodeEvent(AppendOnlyModel):
    """The episode's timeline, one row per step, never rewritten."""

    append_only_name = "Episode timelines are"

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(db_index=True)
    step = models.CharField(max_length=20, choices=EpisodeStep.choices)
    message = models.TextField()
    actor_name = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.episode}: {self.get_step_display()}"


class ModelOperations(models.Model):
    """Per model: the row a decision locks (so a burst of signals starts one run), and when
    monitoring was last heard from."""

    catalog_model = models.OneToOneField(
        "registry.CatalogModel",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="operations_state",
    )
    last_signal_at = models.DateTimeField(null=True, blank=True)
    last_monitoring_signal_at = models.DateTimeField(null=True, blank=True)
    last_run_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "model operations state"

    def __str__(self) -> str:
        return f"Operations of {self.catalog_model}"
