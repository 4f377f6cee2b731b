"""Links the API gives with an approval: its page, its model version, its pipeline run."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers


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
