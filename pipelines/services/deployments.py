"""The deployment history's writer: one DeploymentRecord per deploying stage, written when
the sync first sees the stage completed and succeeded (models/deployments.py is the rule)."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import timezone

from registry.models import ModelVersion

from ..models import DeploymentRecord, Environment, PipelineRun, RunResult, RunStage, RunState
from ..selectors import run_deploy_target

DEPLOYING_ENVIRONMENTS = (Environment.QA.value, Environment.PROD.value)


def is_deploying(stage: RunStage) -> bool:
    """A QA or PROD stage that put its version into service."""
    return (
        stage.environment in DEPLOYING_ENVIRONMENTS
        and stage.state == RunState.COMPLETED
        and stage.result == RunResult.SUCCEEDED
    )


def version_label(run: PipelineRun, number: int | None) -> str:
    """As the approval pages name it (ApprovalRequest.version_label): the mirrored version,
    else the run's ``modelVersion`` parameter."""
    if number is not None:
        return f"v{number}"
    stated = run.stated_version
    return f"v{stated}"[:50] if stated else ""


def deployments_record(run: PipelineRun, stages: Iterable[RunStage]) -> int:
    """Write the records of the run's deploying stages that have none yet; the count written.

    Idempotent: a resync finds the records (unique stage) and writes nothing. A run whose
    pipeline has no catalog model has no history to join.
    """
    deploying = [s for s in stages if s.pk is not None and is_deploying(s)]
    if not deploying:
        return 0
    catalog_id = run.pipeline.catalog_model_id
    if catalog_id is None:
        return 0
    known = set(
        DeploymentRecord.objects.filter(stage_id__in=[s.pk for s in deploying]).values_list(
            "stage_id", flat=True
        )
    )
    todo = [s for s in deploying if s.pk not in known]
    if not todo:
        return 0
    number = None
    if run.model_version_id:
        number = (
            ModelVersion.objects.filter(pk=run.model_version_id)
            .values_list("version", flat=True)
            .first()
        )
    now = timezone.now()
    records = [
        DeploymentRecord(
            catalog_model_id=catalog_id,
            environment=stage.environment,
            target=run_deploy_target(run, stage)[:100],
            run=run,
            stage=stage,
            model_version_id=run.model_version_id,
            version_label=version_label(run, number),
            approval_ids=list(stage.approval_ids or []),
            requested_by=run.requested_by,
            started_at=stage.finished_at or stage.started_at or now,
            observed_at=now,
        )
        for stage in todo
    ]
    # A concurrent refresh of the same run may have written them: the unique stage decides.
    DeploymentRecord.objects.bulk_create(records, ignore_conflicts=True)
    return len(records)
