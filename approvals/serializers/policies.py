"""The approval policies API's shapes: a policy (read), the body that creates or changes one,
the effective policy of a model with where each value comes from, and sign-offs."""

from __future__ import annotations

from rest_framework import serializers

from pipelines.models import Environment
from registry.models import CatalogModel

from ..models import (
    POLICY_EDITABLE_FIELDS,
    ApprovalPolicy,
    ExecutionOrder,
    PolicyScope,
    SignOff,
    SignOffStatus,
    SoakMode,
)


class NamedModelField(serializers.SlugRelatedField):
    """A catalog model by name; a name PostgreSQL cannot hold (a NUL) is a 400, not a 500."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data.replace("\x00", ""))
        return super().to_internal_value(data)


class ApprovalPolicySerializer(serializers.ModelSerializer):
    catalog_model = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    updated_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = ApprovalPolicy
        fields = ["id", *POLICY_EDITABLE_FIELDS, "updated_at", "updated_by"]
        read_only_fields = fields


def _blank_choice(choices):
    return serializers.ChoiceField(
        choices=[("", "inherit"), *choices], required=False, allow_null=True
    )


class ApprovalPolicyInputSerializer(serializers.Serializer):
    """A new policy (POST) or the fields to change (PATCH). A null or "" field inherits."""

    environment = serializers.ChoiceField(choices=Environment.choices)
    scope = serializers.ChoiceField(choices=PolicyScope.choices)
    team = serializers.CharField(required=False, allow_blank=True, max_length=100)
    catalog_model = NamedModelField(
        slug_field="name",
        queryset=CatalogModel.objects.all(),
        required=False,
        allow_null=True,
        help_text="Scope model: the catalog model's name.",
    )
    prod_approver_not_qa_approver = serializers.BooleanField(required=False, allow_null=True)
    execution_order = _blank_choice(ExecutionOrder.choices)
    sequence_approvers = serializers.ListField(
        child=serializers.CharField(max_length=300), required=False, max_length=50
    )
    soak_hours = serializers.FloatField(
        required=False, allow_null=True, min_value=0, max_value=24 * 365
    )
    soak_mode = _blank_choice(SoakMode.choices)
    signoff_required = serializers.BooleanField(required=False, allow_null=True)
    min_maturity_level = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=5
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    high_risk_min_approvers = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=10
    )


class PolicyValueSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    value = serializers.JSONField()
    shown = serializers.CharField(help_text="The value in words, as the decision box shows it.")
    source = serializers.CharField(
        help_text="Where it comes from: model <name>, team <team>, every model, built-in default."
    )


class EffectivePolicySerializer(serializers.Serializer):
    environment = serializers.CharField()
    model = serializers.CharField(allow_null=True)
    sequence_approvers = serializers.ListField(child=serializers.CharField())
    values = PolicyValueSerializer(many=True)


class SignOffSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="catalog_model.name", default=None, allow_null=True)
    version = serializers.CharField(source="model_version.version", default=None, allow_null=True)
    run = serializers.CharField(source="run.name")
    closed_by = serializers.CharField(source="closed_by_name")

    class Meta:
        model = SignOff
        fields = [
            "id",
            "environment",
            "model",
            "version",
            "run",
            "approval",
            "status",
            "deployed_at",
            "deployed_by",
            "opened_at",
            "closed_at",
            "closed_by",
            "comment",
        ]
        read_only_fields = fields


class SignOffCloseInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[SignOffStatus.SIGNED_OFF, SignOffStatus.FLAGGED],
        help_text="signed_off (it went well) or flagged (a comment says what is wrong).",
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)
