"""The deployment history of the stages mirrored before the history existed, so an existing
install shows its past (one record per completed, succeeded QA/PROD stage, as the sync writes
them; pipelines/services/deployments.py). Runs without a catalog model are skipped."""

from django.db import migrations
from django.utils import timezone

BATCH = 500


def _target(parameters, stage_target):
    parameters = parameters if isinstance(parameters, dict) else {}
    return (str(parameters.get("deployTarget") or "") or stage_target or "default").lower()


def _label(number, parameters):
    if number is not None:
        return f"v{number}"
    parameters = parameters if isinstance(parameters, dict) else {}
    stated = str(parameters.get("modelVersion") or "").strip()
    return f"v{stated}"[:50] if stated else ""


def backfill(apps, schema_editor):
    RunStage = apps.get_model("pipelines", "RunStage")
    DeploymentRecord = apps.get_model("pipelines", "DeploymentRecord")
    ModelVersion = apps.get_model("registry", "ModelVersion")
    recorded = set(DeploymentRecord.objects.values_list("stage_id", flat=True))
    stages = (
        RunStage.objects.filter(
            environment__in=("QA", "PROD"),
            state="completed",
            result="succeeded",
            run__pipeline__catalog_model__isnull=False,
        )
        .select_related("run__pipeline")
        .order_by("pk")
    )
    numbers = dict(ModelVersion.objects.values_list("pk", "version"))
    now = timezone.now()
    batch = []
    for stage in stages.iterator(chunk_size=BATCH):
        if stage.pk in recorded:
            continue
        run = stage.run
        batch.append(
            DeploymentRecord(
                catalog_model_id=run.pipeline.catalog_model_id,
                environment=stage.environment,
                target=_target(run.parameters, stage.target)[:100],
                run_id=run.pk,
                stage_id=stage.pk,
                model_version_id=run.model_version_id,
                version_label=_label(numbers.get(run.model_version_id), run.parameters),
                approval_ids=list(stage.approval_ids or []),
                requested_by=run.requested_by,
                started_at=stage.finished_at or stage.started_at or now,
                observed_at=now,
            )
        )
        if len(batch) >= BATCH:
            DeploymentRecord.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    DeploymentRecord.objects.bulk_create(batch, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0007_deployments_append_only"),
        ("registry", "0005_history_append_only"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
