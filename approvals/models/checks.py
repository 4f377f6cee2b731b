"""The automated ADO check ("Invoke REST API", callback mode): what ADO asked, each evaluation
of the promotion rules, and the TaskCompleted callback that answers it through an outbox.

ADO calls once per (plan, job, task instance); the request is kept with its headers (the job's
AuthToken encrypted at rest), evaluated once by a worker, and the callback row is written in
the same transaction as the evaluation, so the answer is sent exactly once (docs/approvals.md,
"The automated check").
"""

from __future__ import annotations

from django.db import models


class CheckRequest(models.Model):
    """One call of ADO's Invoke REST API check: the headers it sent and the body we asked for."""

    plan_url = models.URLField(max_length=500, help_text="PlanUrl: the organization's URL.")
    project_id = models.CharField(max_length=64, help_text="ProjectId (a GUID).")
    hub_name = models.CharField(max_length=64, help_text="HubName: 'checks' for a check.")
    plan_id = models.CharField(max_length=64)
    job_id = models.CharField(max_length=64)
    task_instance_id = models.CharField(max_length=64)
    timeline_id = models.CharField(max_length=64, blank=True)
    build_id = models.CharField(max_length=64, blank=True)
    auth_token = models.TextField(help_text="The job's AuthToken, Fernet-encrypted.")
    body = models.JSONField(default=dict, blank=True, help_text="The check's body, as sent.")
    model_name = models.CharField(max_length=255)
    version = models.CharField(max_length=64, blank=True)
    environment = models.CharField(max_length=10)
    ado_run_id = models.CharField(max_length=64, blank=True, help_text="runId of the body.")
    catalog_model = models.ForeignKey(
        "registry.CatalogModel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="check_requests",
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="check_requests",
    )
    run = models.ForeignKey(
        "pipelines.PipelineRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="check_requests",
    )
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["plan_id", "job_id", "task_instance_id"], name="approvals_check_once"
            )
        ]
        indexes = [models.Index(fields=["catalog_model", "environment", "-received_at"])]

    def __str__(self) -> str:
        return f"check of {self.model_name} v{self.version or '?'} for {self.environment}"


class CheckResult(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"


class CheckEvaluation(models.Model):
    """One evaluation of a check's rules: the result and each rule (code, ok, message,
    values), kept so a person can see why the check failed."""

    request = models.ForeignKey(CheckRequest, on_delete=models.PROTECT, related_name="evaluations")
    result = models.CharField(max_length=10, choices=CheckResult.choices)
    rules = models.JSONField(default=list, help_text="[{code, ok, message, warning, values}]")
    evaluated_at = models.DateTimeField()

    class Meta:
        ordering = ["-evaluated_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_result_display()} ({self.request})"

    @property
    def passed(self) -> bool:
        return self.result == CheckResult.PASSED

    @property
    def failed_rules(self) -> list[dict]:
        return [r for r in self.rules if not r.get("ok")]


class CallbackState(models.TextChoices):
    QUEUED = "queued", "Waiting to be sent"
    DELIVERED = "delivered", "Sent to ADO"
    FAILED = "failed", "Failed"


class CheckCallback(models.Model):
    """The TaskCompleted event (and the log lines before it) for one evaluation: an outbox
    row, claimed and delivered like a decision's (``services.leases``)."""

    evaluation = models.OneToOneField(
        CheckEvaluation, on_delete=models.PROTECT, related_name="callback"
    )
    request = models.ForeignKey(CheckRequest, on_delete=models.PROTECT, related_name="callbacks")
    result = models.CharField(max_length=10, help_text="succeeded or failed, as ADO takes it.")
    log_lines = models.JSONField(default=list, blank=True)
    state = models.CharField(
        max_length=20, choices=CallbackState.choices, default=CallbackState.QUEUED
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(help_text="Not before this; the sweep uses it.")
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    log_sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"check callback #{self.pk} ({self.state})"
