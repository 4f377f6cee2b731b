"""What the approvals API reads: a decision's body, the list and audit filters, and the
error body every refusal answers (``core.api_support``)."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from pipelines.models import Environment

from .. import selectors
from ..models import (
    OPEN_STATUSES,
    ApprovalStatus,
    AuditAction,
    DecisionStatus,
)


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
