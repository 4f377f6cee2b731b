"""Approval policies per environment (what ADO's YAML environments lost from classic releases)
and the post-deployment sign-offs they ask for.

A policy row has a scope: global, a team (the catalog model's team) or one model. A blank field
inherits from the broader scope: model over team over global over the built-in defaults
(``services.policies.approval_policy_for`` resolves it and says where each value came from).
"""

from __future__ import annotations

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from pipelines.models import Environment


def validate_finite(value) -> None:
    if value is not None and not math.isfinite(value):
        raise ValidationError("A number of hours, not NaN or infinity.")


class PolicyScope(models.TextChoices):
    GLOBAL = "global", "Every model"
    TEAM = "team", "A team's models"
    MODEL = "model", "One model"


class ExecutionOrder(models.TextChoices):
    # ADO's Approval check settings.executionOrder values.
    ANY_ORDER = "anyOrder", "Any order"
    IN_SEQUENCE = "inSequence", "In sequence"


class SoakMode(models.TextChoices):
    WARN = "warn", "Warn"
    BLOCK = "block", "Block"


# What an edit may set (the API's body, the admin and the audited service name the same).
POLICY_EDITABLE_FIELDS = (
    "environment",
    "scope",
    "team",
    "catalog_model",
    "prod_approver_not_qa_approver",
    "execution_order",
    "sequence_approvers",
    "soak_hours",
    "soak_mode",
    "signoff_required",
    "min_maturity_level",
    "note",
    "high_risk_min_approvers",
)
# A high-risk model's PROD approval needs this many distinct approvals when no scope says.
HIGH_RISK_MIN_APPROVERS_DEFAULT = 2


class ApprovalPolicy(models.Model):
    """The rules an environment's approvals follow, for every model, a team or one model."""

    environment = models.CharField(max_length=10, choices=Environment.choices)
    scope = models.CharField(max_length=10, choices=PolicyScope.choices)
    team = models.CharField(max_length=100, blank=True, help_text="Scope team: the team.")
    catalog_model = models.ForeignKey(
        "registry.CatalogModel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="approval_policies",
        help_text="Scope model: the model.",
    )
    prod_approver_not_qa_approver = models.BooleanField(
        null=True,
        blank=True,
        help_text="PROD: whoever approved QA of the same version may not approve PROD. "
        "Blank: inherit.",
    )
    execution_order = models.CharField(
        max_length=20,
        choices=ExecutionOrder.choices,
        blank=True,
        help_text="In sequence: only the next named approver may decide. Blank: inherit.",
    )
    sequence_approvers = models.JSONField(
        default=list,
        blank=True,
        help_text="In sequence: the approvers' user names or e-mails, in order (they go with "
        "the execution order of the same scope).",
    )
    soak_hours = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), validate_finite],
        help_text="PROD: hours between the QA deployment and a PROD approval (0: none). "
        "Blank: inherit.",
    )
    soak_mode = models.CharField(
        max_length=10, choices=SoakMode.choices, blank=True, help_text="Blank: inherit."
    )
    signoff_required = models.BooleanField(
        null=True,
        blank=True,
        help_text="PROD: a post-deployment sign-off after each PROD deployment. Blank: inherit.",
    )
    min_maturity_level = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(5)],
        help_text="The model's maturity level must be at least this (1-5; 0: no minimum). "
        "Blank: inherit.",
    )
    note = models.TextField(blank=True, help_text="Why this policy (shown to approvers).")
    high_risk_min_approvers = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="PROD: distinct approvals a model whose card says high risk needs before the "
        "portal closes the request (at least ADO's own minimum). Blank: inherit (default 2).",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "approval policies"
        ordering = ["environment", "scope", "team", "catalog_model__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["environment"],
                condition=models.Q(scope="global"),
                name="approvals_policy_global_unique",
            ),
            models.UniqueConstraint(
                fields=["environment", "team"],
                condition=models.Q(scope="team"),
                name="approvals_policy_team_unique",
            ),
            models.UniqueConstraint(
                fields=["environment", "catalog_model"],
                condition=models.Q(scope="model"),
                name="approvals_policy_model_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.environment} policy for {self.scope_label}"

    @property
    def scope_label(self) -> str:
        if self.scope == PolicyScope.MODEL:
            return f"model {self.catalog_model.name if self.catalog_model_id else '?'}"
        if self.scope == PolicyScope.TEAM:
            return f"team {self.team}"
        return "every model"

    def clean(self) -> None:
        errors = {}
        if self.scope == PolicyScope.MODEL and not self.catalog_model_id:
            errors["catalog_model"] = "A model policy names its model."
        if self.scope != PolicyScope.MODEL and self.catalog_model_id:
            errors["catalog_model"] = "Only a model policy names a model."
        if self.scope == PolicyScope.TEAM and not self.team.strip():
            errors["team"] = "A team policy names its team."
        if self.scope != PolicyScope.TEAM and self.team:
            errors["team"] = "Only a team policy names a team."
        approvers = self.sequence_approvers
        if not isinstance(approvers, list) or not all(
            isinstance(a, str) and a.strip() for a in approvers
        ):
            errors["sequence_approvers"] = "A list of user names or e-mails."
        elif self.execution_order == ExecutionOrder.IN_SEQUENCE and not approvers:
            errors["sequence_approvers"] = "In sequence needs the approvers, in order."
        elif approvers and self.execution_order != ExecutionOrder.IN_SEQUENCE:
            errors["sequence_approvers"] = "Approvers in order go with execution order in sequence."
        if errors:
            raise ValidationError(errors)


class SignOffStatus(models.TextChoices):
    OPEN = "open", "Waiting for sign-off"
    SIGNED_OFF = "signed_off", "Signed off"
    FLAGGED = "flagged", "Flagged"


class SignOff(models.Model):
    """A post-deployment sign-off: after a PROD deployment that its policy says needs one, an
    approver (not the deployer) confirms it went well, or flags it with a comment."""

    stage = models.OneToOneField(
        "pipelines.RunStage", on_delete=models.PROTECT, related_name="signoff"
    )
    run = models.ForeignKey(
        "pipelines.PipelineRun", on_delete=models.PROTECT, related_name="signoffs"
    )
    approval = models.ForeignKey(
        "approvals.ApprovalRequest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="signoffs",
        help_text="The PROD approval of the same run, when the portal has it.",
    )
    catalog_model = models.ForeignKey(
        "registry.CatalogModel", null=True, on_delete=models.SET_NULL, related_name="signoffs"
    )
    model_version = models.ForeignKey(
        "registry.ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="signoffs",
    )
    environment = models.CharField(max_length=10, choices=Environment.choices)
    deployed_at = models.DateTimeField(null=True, blank=True)
    deployed_by = models.CharField(
        max_length=300, blank=True, help_text="Who queued the run (may not sign off)."
    )
    status = models.CharField(
        max_length=20, choices=SignOffStatus.choices, default=SignOffStatus.OPEN
    )
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    closed_by_name = models.CharField(max_length=300, blank=True)
    comment = models.TextField(blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    notify_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-opened_at", "-pk"]
        indexes = [models.Index(fields=["status", "opened_at"])]

    def __str__(self) -> str:
        what = self.catalog_model.name if self.catalog_model_id else str(self.run)
        return f"{self.environment} sign-off of {what} ({self.get_status_display().lower()})"

    @property
    def is_open(self) -> bool:
        return self.status == SignOffStatus.OPEN

    @property
    def version_label(self) -> str:
        return f"v{self.model_version.version}" if self.model_version_id else ""


def high_risk_min_approvers_for(*, catalog_model, environment: str) -> int:
    """The ``high_risk_min_approvers`` that applies: model over team over global over the
    default (what ``services.policies.approval_policy_for`` resolves, for this one field)."""
    if catalog_model is None:
        return HIGH_RISK_MIN_APPROVERS_DEFAULT
    team = catalog_model.effective_team
    scoped = models.Q(scope=PolicyScope.GLOBAL) | models.Q(
        scope=PolicyScope.MODEL, catalog_model=catalog_model
    )
    if team:
        scoped |= models.Q(scope=PolicyScope.TEAM, team=team)
    rank = {PolicyScope.MODEL: 0, PolicyScope.TEAM: 1, PolicyScope.GLOBAL: 2}
    found = sorted(
        ApprovalPolicy.objects.filter(scoped, environment=environment)
        .exclude(high_risk_min_approvers__isnull=True)
        .values_list("scope", "high_risk_min_approvers"),
        key=lambda row: rank[row[0]],
    )
    return found[0][1] if found else HIGH_RISK_MIN_APPROVERS_DEFAULT
