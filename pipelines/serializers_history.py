"""Serializers of the deployment history API (api_history.py)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .selectors_history import version_link
from .serializers import DeployedVersionSerializer, RunLinkSerializer


def _run_link(record) -> dict | None:
    """The deploying run, from the annotations of selectors_history.deployment_records
    (None once the mirror no longer has it)."""
    if record.pipeline_name is None:
        return None
    return {
        "id": record.run_id,
        "name": record.run_name,
        "pipeline": record.pipeline_name,
        "url": reverse("pipelines:run-detail", kwargs={"pk": record.run_id}),
        "web_url": record.run_web_url or "",
    }


class _RecordFields(serializers.Serializer):
    environment = serializers.CharField()
    target = serializers.CharField(help_text="aks, databricks-job… or default.")
    lane = serializers.CharField(help_text='"PROD · AKS": the environment and target.')
    version = serializers.CharField(help_text="v3, or the run's modelVersion if unregistered.")
    model_version = serializers.SerializerMethodField(
        help_text="Null when the deploying run names no version the mirror knows."
    )
    run = serializers.SerializerMethodField()
    approved_by = serializers.ListField(child=serializers.CharField())
    approval_url = serializers.CharField(help_text="The approval's page, if the portal has it.")

    @extend_schema_field(DeployedVersionSerializer(allow_null=True))
    def get_model_version(self, item):
        return version_link(item["record"])

    @extend_schema_field(RunLinkSerializer(allow_null=True))
    def get_run(self, item):
        return _run_link(item["record"])


class DeploymentRecordSerializer(_RecordFields):
    id = serializers.IntegerField()
    started_at = serializers.DateTimeField(help_text="When it started serving (exact).")
    ended_at = serializers.DateTimeField(
        allow_null=True, help_text="When the next deployment of the lane replaced it."
    )
    current = serializers.BooleanField(help_text="It serves its lane now.")
    approval_ids = serializers.ListField(child=serializers.CharField())
    requested_by = serializers.CharField()
    observed_at = serializers.DateTimeField(help_text="When the pipelines sync recorded it.")


class ServingSerializer(_RecordFields):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField(allow_null=True)


class ServingAnswerSerializer(serializers.Serializer):
    model = serializers.CharField()
    environment = serializers.CharField()
    at = serializers.DateTimeField()
    serving = ServingSerializer(many=True, help_text="Per target, what served then.")


def record_item(item) -> dict:
    """A placed record (selectors_history.LaneRecord) as the serializer reads it."""
    record = item.record
    return {
        "record": record,
        "id": record.pk,
        "environment": record.environment,
        "target": record.target,
        "lane": item.lane_title,
        "version": record.version_label,
        "approved_by": item.approved_by,
        "approval_url": item.annotation.get("approval_url") or "",
        "started_at": record.started_at,
        "ended_at": item.until,
        "current": item.is_current,
        "approval_ids": [str(i) for i in record.approval_ids or []],
        "requested_by": record.requested_by,
        "observed_at": record.observed_at,
    }


def serving_item(serving) -> dict:
    return {
        "record": serving.record,
        "environment": serving.environment,
        "target": serving.target,
        "lane": serving.lane_title,
        "version": serving.record.version_label,
        "approved_by": serving.approved_by,
        "approval_url": serving.approval_url,
        "since": serving.since,
        "until": serving.until,
    }
