"""Approval requests mirrored from ADO, the portal's decisions on them, the outbox that
delivers those decisions to ADO, and the append-only audit trail.

A decision, its outbox message and its audit row are written in one transaction; delivery
happens afterwards (docs/approvals.md). Nothing here is ever deleted by a sync.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.append_only import AppendOnlyModel
from core.models import SyncBookkeepingMixin, SyncFields
from pipelines.models import Environment

from .marks import ApprovalMarks


class ApprovalStatus(models.TextChoices):
    # ADO's ApprovalStatus values (approvals API 7.1), as they are sent.
    PENDING = "pending", "Pending"
    UNINITIATED = "uninitiated", "Not yet actionable"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    CANCELED = "canceled", "Canceled"
    TIMED_OUT = "timedOut", "Timed out"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
    COMPLETED = "completed", "Completed"
    DEFERRED = "deferred", "Deferred"  # api-version 7.2: postponed by an approver
    UNDEFINED = "undefined", "Unknown or gone from ADO"


OPEN_STATUSES = (ApprovalStatus.PENDING, ApprovalStatus.UNINITIATED, ApprovalStatus.DEFERRED)


class DecidedIn(models.TextChoices):
    NOWHERE = "", "—"
    PORTAL = "portal", "The portal"
    ADO = "ado", "Azure DevOps"


class ApprovalRequest(ApprovalMarks, models.Model):
    """One ADO approval (a check on the QA or PROD environment of a release run).

    ``status`` is what the portal shows: ADO's status, except that a decision made here closes
    the request at once, before it is delivered (``ado_status`` keeps what ADO last said).
    """

    project = models.ForeignKey(
        "pipelines.AdoProject", on_delete=models.PROTECT, related_name="approval_requests"
    )
    ado_id = models.CharField(max_length=64, help_text="The approval's id (a GUID) in ADO.")
    run = models.ForeignKey(
        "pipelines.PipelineRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approval_requests",
    )
    stage = models.ForeignKey(
        "pipelines.RunStage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approval_requests",
    )
    build_id = models.PositiveIntegerField(
        null=True, blank=True, help_text="approval.pipeline.owner.id: the run it gates."
    )
    pipeline_name = models.CharField(max_length=300, blank=True)
    run_name = models.CharField(max_length=300, blank=True)
    stage_name = models.CharField(max_length=300, blank=True)
    environment = models.CharField(max_length=10, choices=Environment.choices, blank=True)
    catalog_model = models.ForeignKey(
        "registry.CatalogModel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approval_requests",
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="approval_requests",
    )

    status = models.CharField(
        max_length=20, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    ado_status = models.CharField(
        max_length=20, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    instructions = models.TextField(blank=True)
    min_required_approvers = models.PositiveSmallIntegerField(default=1)
    execution_order = models.CharField(max_length=20, blank=True)
    assigned_approvers = models.JSONField(
        default=list, blank=True, help_text="[{id, name, unique_name, is_group}] from the steps."
    )
    blocked_approvers = models.JSONField(default=list, blank=True)
    steps = models.JSONField(default=list, blank=True, help_text="The steps as ADO last said.")
    requested_by = models.CharField(max_length=300, blank=True)
    requested_by_id = models.CharField(max_length=300, blank=True)
    created_on = models.DateTimeField(help_text="When ADO opened the approval.")
    last_modified_on = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="created_on + the check's timeout."
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=300, blank=True)
    decided_in = models.CharField(max_length=10, choices=DecidedIn.choices, blank=True)

    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_on", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["project", "ado_id"], name="approvals_request_unique")
        ]
        indexes = [
            models.Index(fields=["status", "created_on"]),
            models.Index(fields=["environment", "status"]),
            models.Index(fields=["-decided_at"]),
        ]

    def __str__(self) -> str:
        what = self.catalog_model.name if self.catalog_model_id else self.pipeline_name
        return f"{self.environment or '?'} approval of {what or self.ado_id}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_prod(self) -> bool:
        return self.environment == Environment.PROD

    @property
    def approvals_counted(self) -> int:
        """Approvals so far, as the pages count them against ``min_required_approvers``.

        Closed by ADO itself (decided there, or imported from ADO's history): the approved
        steps ADO recorded, since the portal holds no decision of its own for them. Otherwise
        the portal's approve decisions (``approvals_so_far``, annotated by the selectors)."""
        if self.decided_in == DecidedIn.ADO:
            return sum(
                1
                for step in self.steps or []
                if isinstance(step, dict) and step.get("status") == ApprovalStatus.APPROVED
            )
        counted = getattr(self, "approvals_so_far", None)
        if counted is None:
            counted = self.decisions.filter(status=DecisionStatus.APPROVED).count()
        return counted

    @property
    def version_label(self) -> str:
        """The version it deploys: the mirrored model version, else (a rule-based model that
        is not registered) the release run's ``modelVersion`` parameter."""
        if self.model_version_id:
            return f"v{self.model_version.version}"
        named = self.run.stated_version if self.run_id else ""
        return f"v{named}" if named else ""


class DecisionStatus(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class Decision(models.Model):
    """A person's approve / reject, made in the portal. One per person per approval."""

    approval = models.ForeignKey(
        ApprovalRequest, on_delete=models.PROTECT, related_name="decisions"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    user_name = models.CharField(max_length=300, help_text="Who decided, as shown in ADO.")
    status = models.CharField(max_length=10, choices=DecisionStatus.choices)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    request_id = models.CharField(max_length=100, blank=True)
    via = models.CharField(max_length=10, default="web", help_text="web or api")

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["approval", "user"], name="approvals_one_per_person")
        ]

    def __str__(self) -> str:
        return f"{self.get_status_display()} by {self.user_name} ({self.approval})"


class OutboxState(models.TextChoices):
    QUEUED = "queued", "Waiting to be delivered"
    DELIVERED = "delivered", "Delivered to ADO"
    ALREADY_DECIDED = "already_decided", "Already decided in ADO"
    FAILED = "failed", "Failed"
    # The approver's delegated ADO token cannot be had (their sign-in lapsed or was revoked):
    # the decision waits, unswept, until they sign in again (docs/approvals.md).
    NEEDS_SIGNIN = "needs_signin", "Needs your sign-in"
    # A high-risk model's PROD approval short of the portal's number of approvers: recorded,
    # not sent (one ADO approval would pass ADO's gate); released by the closing approval,
    # never swept (docs/approvals.md, "High-risk models").
    HELD = "held", "Held until a second approver"
    # Held, then the request was rejected: the approval is never sent.
    WITHDRAWN = "withdrawn", "Not sent: the request was rejected"


OUTBOX_FINAL_STATES = (OutboxState.DELIVERED, OutboxState.ALREADY_DECIDED)


class OutboxMessage(models.Model):
    """One decision to PATCH to ADO. Delivered at least once, applied once: the deliverer
    reads the approval first and sends nothing if ADO already has this decision."""

    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="outbox")
    approval = models.ForeignKey(
        ApprovalRequest, on_delete=models.PROTECT, related_name="outbox_messages"
    )
    payload = models.JSONField(help_text="The PATCH body: [{approvalId, status, comment}].")
    state = models.CharField(max_length=20, choices=OutboxState.choices, default=OutboxState.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(help_text="Not before this; the sweep uses it.")
    claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A deliverer holds it until then (a crash lets go)."
    )
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    ado_outcome = models.JSONField(
        default=dict, blank=True, help_text="What ADO said: status, approver, when."
    )

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"outbox #{self.pk} ({self.state}) for {self.decision}"

    @property
    def is_final(self) -> bool:
        return self.state in OUTBOX_FINAL_STATES


class AuditAction(models.TextChoices):
    APPROVAL_REQUESTED = "approval.requested", "Approval requested in ADO"
    APPROVAL_CHANGED_IN_ADO = "approval.changed_in_ado", "Changed in ADO"
    APPROVAL_CONFIRMED = "approval.confirmed", "ADO confirmed the portal's decision"
    DECISION_MADE = "decision.made", "Decision made"
    DECISION_REFUSED = "decision.refused", "Decision refused"
    DELIVERY_ATTEMPT = "delivery.attempt", "Delivery attempt"
    DELIVERY_DELIVERED = "delivery.delivered", "Delivered to ADO"
    DELIVERY_ALREADY_DECIDED = "delivery.already_decided", "ADO had already decided"
    DELIVERY_FAILED = "delivery.failed", "Delivery failed"
    DELIVERY_RETRY_REQUESTED = "delivery.retry_requested", "Retry requested"
    DELIVERY_FALLBACK = "delivery.fallback", "Delivered with the portal's identity instead"
    DELIVERY_NEEDS_SIGNIN = "delivery.needs_signin", "Waiting for the approver's sign-in"
    NOTIFICATION_SENT = "notification.sent", "Notification sent"
    SIGN_IN = "auth.sign_in", "Signed in"
    SIGN_OUT = "auth.sign_out", "Signed out"
    SIGN_IN_DENIED = "auth.denied", "Sign-in denied"
    API_TOKEN_CREATED = "api.token_created", "API token created"
    API_TOKEN_REVOKED = "api.token_revoked", "API token revoked"
    API_ACCESS = "api.access", "API called with a token"
    API_ACCESS_REFUSED = "api.refused", "API token refused"
    CHECK_RECEIVED = "check.received", "Automated check called by ADO"
    CHECK_PASSED = "check.passed", "Automated check passed"
    CHECK_FAILED = "check.failed", "Automated check failed"
    CHECK_CALLBACK_SENT = "check.callback_sent", "Check result sent to ADO"
    CHECK_CALLBACK_FAILED = "check.callback_failed", "Check result could not be sent"
    POLICY_CHANGED = "policy.changed", "Approval policy changed"
    SIGNOFF_OPENED = "signoff.opened", "Post-deployment sign-off opened"
    SIGNOFF_CLOSED = "signoff.closed", "Post-deployment sign-off closed"
    SIGNOFF_REFUSED = "signoff.refused", "Sign-off refused"
    FREEZE_CREATED = "freeze.created", "Freeze window created"
    FREEZE_CHANGED = "freeze.changed", "Freeze window changed"
    FREEZE_DELETED = "freeze.deleted", "Freeze window deleted"
    DELIVERY_HELD = "delivery.held", "Held until the approvals a high-risk model needs"
    DELIVERY_RELEASED = "delivery.released", "Held approval released for delivery"
    DELIVERY_WITHDRAWN = "delivery.withdrawn", "Held approval not sent (request rejected)"


class AuditEvent(AppendOnlyModel):
    """Append-only: the app has no path that updates or deletes a row, and on PostgreSQL a
    trigger refuses UPDATE and DELETE outright (migration 0002)."""

    at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=40, choices=AuditAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_name = models.CharField(max_length=300, blank=True, help_text="Who, or which process.")
    approval = models.ForeignKey(
        ApprovalRequest,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    decision = models.ForeignKey(
        Decision,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_events",
    )
    environment = models.CharField(max_length=10, blank=True)
    model_name = models.CharField(max_length=255, blank=True)
    message = models.TextField()
    detail = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=100, blank=True)

    append_only_name = "The audit trail is"

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["action", "-at"]), models.Index(fields=["approval", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.actor_name}"


class NotificationKind(models.TextChoices):
    ARRIVED = "arrived", "New request"
    EXPIRING = "expiring", "About to expire"


class Notification(models.Model):
    """A message sent about an approval, so each kind goes out once per channel."""

    approval = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=10, choices=NotificationKind.choices)
    channel = models.CharField(max_length=10, help_text="email or teams")
    recipients = models.JSONField(default=list, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["approval", "kind", "channel"], name="approvals_notification_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} for {self.approval}"


class ApprovalSync(SyncBookkeepingMixin, models.Model):
    """Bookkeeping of the approvals poll of one ADO project (for /readyz and the banner).
    Its columns predate ``core.models.SyncBookkeeping`` (and have no lease: the poll of a
    project is idempotent), so it takes the kernel's bookkeeping with its own names."""

    SYNC_FIELDS = SyncFields(
        started="last_started_at",
        succeeded="last_succeeded_at",
        error_at="last_error_at",
        error="last_error",
        stats="last_stats",
    )

    project = models.OneToOneField(
        "pipelines.AdoProject", on_delete=models.CASCADE, related_name="approval_sync"
    )
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_succeeded_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_stats = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"approvals sync of {self.project}"


class PromotionPolicy(models.Model):
    """When a challenger is better than the champion: one metric, its direction, and the
    smallest change that counts, as MLflow's ``MetricThreshold`` has them (threshold,
    min_absolute_change, min_relative_change, greater_is_better). One row per model, or a
    team's default (blank team: every model without its own)."""

    catalog_model = models.OneToOneField(
        "registry.CatalogModel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="promotion_policy",
        help_text="Blank: the default for the team below (blank team: for every model).",
    )
    team = models.CharField(max_length=100, blank=True)
    metric = models.CharField(max_length=255, help_text="A metric of the training run, e.g. auc.")
    greater_is_better = models.BooleanField(
        null=True,
        blank=True,
        help_text="Blank: guessed from the name (REGISTRY_LOWER_IS_BETTER: rmse, loss… are "
        "lower-is-better).",
    )
    threshold = models.FloatField(
        null=True, blank=True, help_text="The challenger must reach at least (at most) this."
    )
    min_absolute_change = models.FloatField(
        default=0, help_text="Better than the champion by at least this much."
    )
    min_relative_change = models.FloatField(
        default=0, help_text="…and by at least this fraction of the champion's value (0.01 = 1%)."
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "promotion policies"
        ordering = ["catalog_model__name", "team"]
        constraints = [
            models.UniqueConstraint(
                fields=["team"],
                condition=models.Q(catalog_model__isnull=True),
                name="approvals_promotion_default_unique",
            )
        ]

    def __str__(self) -> str:
        who = self.catalog_model or f"team {self.team or 'any'}"
        return f"Promotion on {self.metric} for {who}"
