"""The bulk decision's body and answer (POST /api/v1/approvals/bulk-decisions)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from ..models import DecisionStatus
from .links import approval_page_url


class BulkDecisionInputSerializer(serializers.Serializer):
    """Documentation only: the service checks the body, as for the page."""

    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=1,
        max_length=settings.APPROVALS_BULK_MAX,
        help_text="The approval requests' ids (duplicates are ignored), all of one environment; "
        f"at most APPROVALS_BULK_MAX ({settings.APPROVALS_BULK_MAX}).",
    )
    status = serializers.ChoiceField(choices=DecisionStatus.choices)
    comment = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=settings.APPROVALS_COMMENT_MAX_LENGTH,
        help_text="Added to every decision; required to reject.",
    )


class BulkOutcomeSerializer(serializers.Serializer):
    """What happened to one request: decided, or refused by the rule named."""

    id = serializers.IntegerField(source="approval_id")
    outcome = serializers.CharField(help_text="decided or refused.")
    code = serializers.CharField(
        help_text="decided, or the refusal's code (requester, qa_first, already_decided, "
        "not_found...): the codes a single decision answers."
    )
    detail = serializers.CharField(source="message", help_text="What happened, in words.")
    http_status = serializers.IntegerField(
        help_text="What deciding this request alone would have answered (201, 403, 404, 409)."
    )
    decision_id = serializers.IntegerField(allow_null=True)
    approval_status = serializers.CharField(
        source="status", help_text="The request's status now ('' when it does not exist)."
    )
    url = serializers.SerializerMethodField(help_text="The request's page in the portal.")

    def get_url(self, outcome) -> str:
        return approval_page_url(outcome.approval_id)


class BulkDecisionResultSerializer(serializers.Serializer):
    """Per request what happened (a 207-like body in a 200: some may be refused)."""

    status = serializers.CharField()
    decided = serializers.IntegerField(help_text="How many were decided.")
    refused = serializers.IntegerField(help_text="How many a rule refused (left as they were).")
    results = BulkOutcomeSerializer(many=True)
