"""DRF serializers of this app's API (read-only: the mirror is written by the sync)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import selectors
from .models import Pipeline, PipelineRun, RunStage
from .templatetags.pipelines_ui import run_status, stage_status


class PipelinesErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was wrong, in words.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per parameter, what was wrong with it.",
    )
    request_id = serializers.CharField()


class DeployedVersionSerializer(serializers.Serializer):
    source = serializers.CharField()
    model = serializers.CharField(help_text="The registered model's name in that source.")
    version = serializers.IntegerField()
    url = serializers.CharField(help_text="The version's page in the portal.")


def _version_link(version) -> dict | None:
    if version is None:
        return None
    rm = version.registered_model
    return {
        "source": rm.source.name,
        "model": rm.name,
        "version": version.version,
        "url": reverse(
            "registry:version-detail",
            kwargs={"source": rm.source.name, "name": rm.name, "version": version.version},
        ),
    }


class RunLinkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="Run number.")
    pipeline = serializers.CharField()
    url = serializers.CharField(help_text="The run's page in the portal.")
    web_url = serializers.CharField(help_text="The run in Azure DevOps.")


class PipelineSerializer(serializers.ModelSerializer):
    project = serializers.CharField(source="project.name")
    catalog_model = serializers.CharField(
        source="catalog_model.name", allow_null=True, default=None, help_text="The model served."
    )

    class Meta:
        model = Pipeline
        fields = [
            "id",
            "project",
            "ado_id",
            "name",
            "folder",
            "kind",
            "catalog_model",
            "kind_set_by_hand",
            "web_url",
            "last_synced_at",
        ]


class RunStageSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(
        help_text="running, waiting (for an approval), succeeded, failed, canceled, skipped, "
        "notstarted…"
    )

    class Meta:
        model = RunStage
        fields = [
            "name",
            "identifier",
            "order",
            "environment",
            "target",
            "state",
            "result",
            "status",
            "waiting_for_approval",
            "started_at",
            "finished_at",
        ]

    def get_status(self, stage: RunStage) -> str:
        return stage_status(stage)[0]


class PipelineRunSerializer(serializers.ModelSerializer):
    pipeline = serializers.CharField(source="pipeline.name")
    pipeline_id = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(source="pipeline.kind")
    project = serializers.CharField(source="pipeline.project.name")
    catalog_model = serializers.CharField(
        source="pipeline.catalog_model.name", allow_null=True, default=None
    )
    status = serializers.SerializerMethodField(
        help_text="One word for state and result: running, waiting (a stage waits for an "
        "approval), succeeded, failed, canceled, pending (partially succeeded), unknown."
    )
    trigger = serializers.SerializerMethodField(
        help_text="Why it ran, in the workflow's words (manual, schedule, new data, drift…)."
    )
    model_version = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="The run's page in the portal.")

    class Meta:
        model = PipelineRun
        fields = [
            "id",
            "ado_id",
            "name",
            "pipeline",
            "pipeline_id",
            "kind",
            "project",
            "catalog_model",
            "state",
            "result",
            "status",
            "reason",
            "trigger",
            "requested_by",
            "queued_at",
            "started_at",
            "finished_at",
            "source_branch",
            "source_version",
            "web_url",
            "model_version",
            "url",
        ]

    def get_status(self, run: PipelineRun) -> str:
        return run_status(run)[0]

    def get_trigger(self, run: PipelineRun) -> str:
        return selectors.trigger_label(run.trigger or run.reason)

    @extend_schema_field(DeployedVersionSerializer(allow_null=True))
    def get_model_version(self, run: PipelineRun):
        return _version_link(run.model_version)

    def get_url(self, run: PipelineRun) -> str:
        return reverse("pipelines:run-detail", kwargs={"pk": run.pk})


class PipelineRunListSerializer(PipelineRunSerializer):
    stages = RunStageSerializer(many=True, read_only=True)

    class Meta(PipelineRunSerializer.Meta):
        fields = [*PipelineRunSerializer.Meta.fields, "stages"]


class PipelineRunDetailSerializer(PipelineRunListSerializer):
    parameters = serializers.JSONField(help_text="The run's template parameters.")

    class Meta(PipelineRunListSerializer.Meta):
        fields = [*PipelineRunListSerializer.Meta.fields, "parameters"]


class DeploymentSerializer(serializers.Serializer):
    environment = serializers.CharField()
    target = serializers.CharField(help_text="aks, databricks-job… or default.")
    model_version = serializers.SerializerMethodField(
        help_text="Null when the deploying run names no version the mirror knows."
    )
    deployed_at = serializers.DateTimeField(allow_null=True)
    run = serializers.SerializerMethodField()
    stage = serializers.CharField(source="stage.name")

    @extend_schema_field(DeployedVersionSerializer(allow_null=True))
    def get_model_version(self, deployment):
        return _version_link(deployment.version)

    @extend_schema_field(RunLinkSerializer)
    def get_run(self, deployment) -> dict:
        run = deployment.run
        return {
            "id": run.pk,
            "name": run.name,
            "pipeline": run.pipeline.name,
            "url": reverse("pipelines:run-detail", kwargs={"pk": run.pk}),
            "web_url": run.web_url,
        }


class ModelDeploymentsSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The catalog model.")
    QA = DeploymentSerializer(many=True, help_text="Every version deployed to QA, by target.")
    PROD = DeploymentSerializer(many=True, help_text="Every version deployed to PROD, by target.")


class RollbackInputSerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, help_text="The ModelVersion id (as the history lists it) to put back."
    )
    reason = serializers.CharField(max_length=2000, help_text="Why it goes back (required).")
    environment = serializers.ChoiceField(
        choices=["PROD", "QA"], default="PROD", help_text="Whose serving version it replaces."
    )


class RollbackRequestSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The run request's id.")
    status = serializers.CharField(help_text="queued, sent or failed.")
    pipeline = serializers.CharField(source="pipeline.name")
    reason = serializers.CharField()
    note = serializers.CharField(help_text="The rollback's reason, as given.")
    rollback_to = serializers.IntegerField(
        source="rollback_to.version", help_text="The version number put back."
    )
    rollback_of = serializers.IntegerField(
        source="rollback_of.version",
        allow_null=True,
        default=None,
        help_text="The version number it replaces (null: nothing recorded serving).",
    )
