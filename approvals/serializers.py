"""DRF serializers of this app's API: approvals (list, detail with evidence, rules and
decisions), a decision and its delivery state, the audit trail, and the query filters."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.urls import reverse
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from pipelines.models import Environment
from pipelines.serializers import RunStageSerializer
from registry.serializers import FiniteJSONField, MetricValueField

from . import selectors
from .models import (
    OPEN_STATUSES,
    ApprovalRequest,
    ApprovalStatus,
    AuditAction,
    AuditEvent,
    Decision,
    DecisionStatus,
    OutboxMessage,
)

# --- Errors and input ----------------------------------------------------------------------


class ApprovalsErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was wrong, in words.")
    code = serializers.CharField(
        required=False,
        help_text="A stable code: comment_required, not_an_approver, requester, "
        "already_decided, expired, reauthentication_required...",
    )
    reauthenticate_url = serializers.CharField(
        required=False,
        help_text="With 401: sign in again here; it brings you back to the approval.",
    )
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per parameter, what was wrong with it.",
    )
    request_id = serializers.CharField()


class ApproveInputSerializer(serializers.Serializer):
    """An approval (documentation only: the service checks it, as for the page)."""

    status = serializers.ChoiceField(choices=[DecisionStatus.APPROVED])
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=settings.APPROVALS_COMMENT_MAX_LENGTH,
        help_text="Optional.",
    )


class RejectInputSerializer(serializers.Serializer):
    """A rejection: it needs a comment saying why (more than spaces)."""

    status = serializers.ChoiceField(choices=[DecisionStatus.REJECTED])
    comment = serializers.CharField(
        max_length=settings.APPROVALS_COMMENT_MAX_LENGTH,
        validators=[RegexValidator(r"\S")],
        help_text="Required: why the deployment is rejected.",
    )


# The body of a decision: approve (comment optional) or reject (comment required), by status.
DecisionInputSerializer = PolymorphicProxySerializer(
    component_name="DecisionInput",
    serializers={
        DecisionStatus.APPROVED.value: ApproveInputSerializer,
        DecisionStatus.REJECTED.value: RejectInputSerializer,
    },
    resource_type_field_name="status",
)


DECIDED_STATUSES = [(v, label) for v, label in ApprovalStatus.choices if v not in OPEN_STATUSES]


class ApprovalFilterSerializer(serializers.Serializer):
    """The inbox filters, from the query string (the same as the inbox page's)."""

    tab = serializers.ChoiceField(choices=selectors.TABS, required=False, default="pending")
    environment = serializers.ChoiceField(
        choices=Environment.choices, required=False, allow_blank=True
    )
    model = serializers.CharField(required=False, allow_blank=True, max_length=255)
    team = serializers.CharField(required=False, allow_blank=True, max_length=100)
    overdue = serializers.BooleanField(required=False, default=False)
    older_than = serializers.ChoiceField(
        choices=list(selectors.AGE_CHOICES), required=False, allow_blank=True
    )
    status = serializers.ChoiceField(choices=DECIDED_STATUSES, required=False, allow_blank=True)
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)
    sort = serializers.ChoiceField(choices=list(selectors.SORTS), required=False, allow_blank=True)

    def filters(self) -> selectors.ApprovalFilters:
        data = self.validated_data
        return selectors.ApprovalFilters(
            tab=data.get("tab") or "pending",
            environment=data.get("environment") or "",
            model=(data.get("model") or "").strip(),
            team=(data.get("team") or "").strip(),
            overdue=bool(data.get("overdue")),
            older_than=data.get("older_than") or "",
            status=data.get("status") or "",
            q=(data.get("q") or "").strip(),
            sort=data.get("sort") or "",
        )


class AuditFilterSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False, allow_blank=True)
    actor = serializers.CharField(required=False, allow_blank=True, max_length=300)
    environment = serializers.ChoiceField(
        choices=Environment.choices, required=False, allow_blank=True
    )
    model = serializers.CharField(required=False, allow_blank=True, max_length=255)
    approval = serializers.IntegerField(required=False, min_value=1)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since >= until:
            raise serializers.ValidationError({"until": ["'until' must be after 'since'."]})
        return attrs

    def filters(self) -> selectors.AuditFilters:
        data = self.validated_data
        return selectors.AuditFilters(
            action=data.get("action") or "",
            actor=(data.get("actor") or "").strip(),
            environment=data.get("environment") or "",
            model=(data.get("model") or "").strip(),
            approval=data.get("approval"),
            since=data.get("since"),
            until=data.get("until"),
        )


# --- Links ---------------------------------------------------------------------------------


def approval_page_url(pk: int) -> str:
    return reverse("approvals:detail", kwargs={"pk": pk})


class ApprovalVersionLinkSerializer(serializers.Serializer):
    source = serializers.CharField()
    model = serializers.CharField(help_text="The registered model's name in that source.")
    version = serializers.IntegerField()
    url = serializers.CharField(help_text="The version's page in the portal.")


def version_link(version) -> dict | None:
    if version is None:
        return None
    registered = version.registered_model
    return {
        "source": registered.source.name,
        "model": registered.name,
        "version": version.version,
        "url": reverse(
            "registry:version-detail",
            kwargs={
                "source": registered.source.name,
                "name": registered.name,
                "version": version.version,
            },
        ),
    }


class ApprovalRunLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="Run number.")
    pipeline = serializers.CharField()
    state = serializers.CharField()
    result = serializers.CharField()
    finished_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField(help_text="The run's page in the portal.")
    web_url = serializers.CharField(help_text="The run in Azure DevOps.")


def run_link(run) -> dict | None:
    if run is None:
        return None
    return {
        "id": run.pk,
        "name": run.name,
        "pipeline": run.pipeline.name,
        "state": run.state,
        "result": run.result,
        "finished_at": run.finished_at,
        "url": reverse("pipelines:run-detail", kwargs={"pk": run.pk}),
        "web_url": run.web_url,
    }


# --- Approvals -----------------------------------------------------------------------------


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


class RuleSerializer(serializers.Serializer):
    code = serializers.CharField()
    ok = serializers.BooleanField(help_text="False: this rule stops you from deciding.")
    message = serializers.CharField()


class MetricDeltaSerializer(serializers.Serializer):
    name = serializers.CharField()
    challenger = FiniteJSONField(help_text="This version's value.")
    champion = FiniteJSONField(help_text="The value of the version now in the environment.")
    delta = MetricValueField(allow_null=True, help_text="challenger - champion.")
    lower_is_better = serializers.BooleanField()
    verdict = serializers.CharField(help_text="better, worse, same, or empty (not comparable).")


class QaStageSerializer(serializers.Serializer):
    name = serializers.CharField()
    state = serializers.CharField()
    result = serializers.CharField()
    finished_at = serializers.DateTimeField(allow_null=True)
    run = ApprovalRunLinkSerializer()


class QaApprovalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    decided_by = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()


class QaOutcomeSerializer(serializers.Serializer):
    succeeded = serializers.BooleanField(help_text="QA succeeded for the same version.")
    stage = QaStageSerializer(allow_null=True)
    approval = QaApprovalSerializer(allow_null=True)


class EvidenceSerializer(serializers.Serializer):
    challenger = ApprovalVersionLinkSerializer(
        allow_null=True, help_text="The version asking to go."
    )
    champion = ApprovalVersionLinkSerializer(allow_null=True, help_text="The version there now.")
    champion_target = serializers.CharField()
    metrics = MetricDeltaSerializer(many=True)
    qa_outcome = QaOutcomeSerializer(allow_null=True, help_text="PROD only.")
    training_run = ApprovalRunLinkSerializer(allow_null=True)
    lineage_tags = serializers.DictField(child=serializers.CharField())
    scoring_runs = ApprovalRunLinkSerializer(
        many=True, help_text="For a model with no registered version: its scoring results."
    )


def evidence_data(approval: ApprovalRequest, evidence: selectors.Evidence, qa_ok: bool) -> dict:
    qa_outcome = None
    if approval.environment == Environment.PROD:
        stage, qa_approval = evidence.qa_stage, evidence.qa_approval
        qa_outcome = {
            "succeeded": qa_ok,
            "stage": None
            if stage is None
            else {
                "name": stage.name,
                "state": stage.state,
                "result": stage.result,
                "finished_at": stage.finished_at,
                "run": run_link(stage.run),
            },
            "approval": None
            if qa_approval is None
            else {
                "id": qa_approval.pk,
                "status": qa_approval.status,
                "decided_by": qa_approval.decided_by,
                "decided_at": qa_approval.decided_at,
                "url": approval_page_url(qa_approval.pk),
            },
        }
    return {
        "challenger": version_link(evidence.challenger),
        "champion": version_link(evidence.champion),
        "champion_target": evidence.champion_target,
        "metrics": [vars(m) for m in evidence.metrics],
        "qa_outcome": qa_outcome,
        "training_run": run_link(evidence.training_run),
        "lineage_tags": {k: str(v) for k, v in evidence.lineage_tags.items()},
        "scoring_runs": [run_link(r) for r in evidence.scoring_runs],
    }


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

    @extend_schema_field(AuditEventSerializer(many=True))
    def get_audit(self, approval: ApprovalRequest):
        return AuditEventSerializer(self.context["audit"], many=True).data
