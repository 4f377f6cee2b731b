"""Approvals (list and detail), decisions with their delivery state, outbox messages and
the audit trail, as the API returns them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from pipelines.serializers import RunStageSerializer

from .. import selectors
from ..evidence_sections import card_summary, rollback_summary
from ..models import (
    ApprovalRequest,
    AuditEvent,
    Decision,
    OutboxMessage,
)
from .evidence import EvidenceSerializer, RuleSerializer
from .links import (
    ApprovalRunLinkSerializer,
    ApprovalVersionLinkSerializer,
    approval_page_url,
    run_link,
    version_link,
)


class ApprovalListSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.name")
    status_label = serializers.CharField(source="get_status_display")
    catalog_model = serializers.CharField(
        source="catalog_model.name", allow_null=True, default=None, help_text="The model."
    )
    team = serializers.CharField(
        source="catalog_model.effective_team", allow_null=True, default=None
    )
    model_version = serializers.SerializerMethodField(
        help_text="The version this deploys (null for an unregistered model)."
    )
    approvals_so_far = serializers.SerializerMethodField(
        help_text="Approvals so far: the portal's approve decisions, or, for a request Azure "
        "DevOps decided itself (or imported from its history), the steps ADO recorded approved."
    )
    is_prod = serializers.BooleanField(read_only=True)
    overdue = serializers.SerializerMethodField(
        help_text="Open for longer than APPROVALS_OVERDUE_HOURS."
    )
    url = serializers.SerializerMethodField(help_text="The approval's page in the portal.")

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "ado_id",
            "project",
            "environment",
            "is_prod",
            "status",
            "status_label",
            "ado_status",
            "catalog_model",
            "team",
            "model_version",
            "pipeline_name",
            "run_name",
            "stage_name",
            "instructions",
            "requested_by",
            "min_required_approvers",
            "approvals_so_far",
            "created_on",
            "expires_at",
            "overdue",
            "decided_at",
            "decided_by",
            "decided_in",
            "last_synced_at",
            "url",
        ]

    @extend_schema_field(ApprovalVersionLinkSerializer(allow_null=True))
    def get_model_version(self, approval: ApprovalRequest):
        return version_link(approval.model_version)

    def get_approvals_so_far(self, approval: ApprovalRequest) -> int:
        return approval.approvals_counted

    def get_overdue(self, approval: ApprovalRequest) -> bool:
        return selectors.is_overdue(approval)

    def get_url(self, approval: ApprovalRequest) -> str:
        return approval_page_url(approval.pk)


class DeliverySerializer(serializers.ModelSerializer):
    """Where the decision is on its way to ADO (the outbox message)."""

    outbox_id = serializers.IntegerField(source="pk")
    state_label = serializers.CharField(source="get_state_display")

    class Meta:
        model = OutboxMessage
        fields = [
            "outbox_id",
            "state",
            "state_label",
            "attempts",
            "last_error",
            "last_attempt_at",
            "next_attempt_at",
            "delivered_at",
            "ado_outcome",
        ]


class DecisionSummarySerializer(serializers.ModelSerializer):
    approval = serializers.IntegerField(source="approval_id")
    user = serializers.CharField(source="user.get_username")
    status_label = serializers.CharField(source="get_status_display")

    class Meta:
        model = Decision
        fields = [
            "id",
            "approval",
            "user",
            "user_name",
            "status",
            "status_label",
            "comment",
            "created_at",
            "via",
            "request_id",
        ]


class DecisionSerializer(DecisionSummarySerializer):
    """A decision with its delivery state to ADO."""

    delivery = serializers.SerializerMethodField(help_text="Null if it has no outbox message.")

    class Meta(DecisionSummarySerializer.Meta):
        fields = [*DecisionSummarySerializer.Meta.fields, "delivery"]

    @extend_schema_field(DeliverySerializer(allow_null=True))
    def get_delivery(self, decision: Decision):
        try:
            message = decision.outbox
        except OutboxMessage.DoesNotExist:
            return None
        return DeliverySerializer(message).data


class OutboxMessageSerializer(DeliverySerializer):
    approval = serializers.IntegerField(source="approval_id")
    decision = DecisionSummarySerializer(read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "approval", "decision"]


class AuditEventSerializer(serializers.ModelSerializer):
    action_label = serializers.CharField(source="get_action_display")
    approval = serializers.IntegerField(source="approval_id", allow_null=True)
    decision = serializers.IntegerField(source="decision_id", allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "action",
            "action_label",
            "actor_name",
            "approval",
            "decision",
            "environment",
            "model_name",
            "message",
            "detail",
            "request_id",
        ]


class RollbackSummarySerializer(serializers.Serializer):
    replaces = serializers.IntegerField(allow_null=True, help_text="The version it replaces.")
    restores = serializers.IntegerField(help_text="The version it deploys again.")
    reason = serializers.CharField()
    requested_by = serializers.CharField()
    requested_at = serializers.DateTimeField()


class CardSummarySerializer(serializers.Serializer):
    risk_rating = serializers.CharField(help_text="low, medium, high, or blank: not rated.")
    review_status = serializers.CharField(help_text="draft, in_review, approved or archived.")
    reviewed_by = serializers.CharField()
    reviewed_at = serializers.DateTimeField(allow_null=True)
    intended_use = serializers.CharField()
    limitations = serializers.CharField()


class ApprovalDetailSerializer(ApprovalListSerializer):
    """One approval with what the detail page shows. The view passes, in the context, the
    evidence, the rules for the caller, the decisions, the stages and the audit trail."""

    run = serializers.SerializerMethodField()
    steps = serializers.JSONField(help_text="ADO's approval steps, as last synced.")
    assigned_approvers = serializers.JSONField()
    blocked_approvers = serializers.JSONField()
    evidence = serializers.SerializerMethodField()
    stages = serializers.SerializerMethodField(help_text="The run's stage timeline.")
    decisions = serializers.SerializerMethodField(
        help_text="Decisions made in the portal, each with its delivery state to ADO."
    )
    rules = serializers.SerializerMethodField(
        help_text="The rules that apply to you deciding this approval, in the order checked."
    )
    can_decide = serializers.SerializerMethodField(help_text="Every rule lets you decide.")
    audit = serializers.SerializerMethodField(help_text="The approval's audit trail, oldest first.")
    rollback = serializers.SerializerMethodField(
        help_text="Null, or the run was requested as a rollback: the version it replaces and "
        "restores, the reason, who asked and when."
    )
    model_card = serializers.SerializerMethodField(
        help_text="Null (no card), or the model card's risk, review status and text."
    )
    required_approvers = serializers.IntegerField(
        read_only=True,
        help_text="Distinct approvals the portal needs: ADO's minimum, or the high-risk "
        "policy's number for a high-risk model in PROD.",
    )

    class Meta(ApprovalListSerializer.Meta):
        fields = [
            *ApprovalListSerializer.Meta.fields,
            "run",
            "execution_order",
            "assigned_approvers",
            "blocked_approvers",
            "steps",
            "evidence",
            "stages",
            "decisions",
            "rules",
            "can_decide",
            "audit",
            "rollback",
            "model_card",
            "required_approvers",
        ]

    @extend_schema_field(ApprovalRunLinkSerializer(allow_null=True))
    def get_run(self, approval: ApprovalRequest):
        return run_link(approval.run)

    @extend_schema_field(EvidenceSerializer)
    def get_evidence(self, approval: ApprovalRequest):
        return EvidenceSerializer(self.context["evidence"]).data

    @extend_schema_field(RunStageSerializer(many=True))
    def get_stages(self, approval: ApprovalRequest):
        return RunStageSerializer(self.context["stages"], many=True).data

    @extend_schema_field(DecisionSerializer(many=True))
    def get_decisions(self, approval: ApprovalRequest):
        return DecisionSerializer(self.context["decisions"], many=True).data

    @extend_schema_field(RuleSerializer(many=True))
    def get_rules(self, approval: ApprovalRequest):
        return RuleSerializer(self.context["rules"], many=True).data

    def get_can_decide(self, approval: ApprovalRequest) -> bool:
        rules = self.context["rules"]
        return bool(rules) and all(rule.ok for rule in rules)

    @extend_schema_field(RollbackSummarySerializer(allow_null=True))
    def get_rollback(self, approval: ApprovalRequest):
        summary = rollback_summary(approval)
        return RollbackSummarySerializer(summary).data if summary else None

    @extend_schema_field(CardSummarySerializer(allow_null=True))
    def get_model_card(self, approval: ApprovalRequest):
        summary = card_summary(approval)
        return CardSummarySerializer(summary).data if summary else None

    @extend_schema_field(AuditEventSerializer(many=True))
    def get_audit(self, approval: ApprovalRequest):
        return AuditEventSerializer(self.context["audit"], many=True).data
