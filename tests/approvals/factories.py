"""factory_boy factories of approval requests (decisions go through approvals.services)."""

import datetime as dt
import uuid

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from approvals.models import ApprovalRequest, ApprovalStatus
from pipelines.models import PipelineKind
from tests.pipelines.factories import PipelineFactory, PipelineRunFactory, RunStageFactory
from tests.registry.factories import ModelVersionFactory

GROUP_QA = {
    "id": "qa-approvers-group",
    "name": "[MLOps]\\QA Approvers",
    "unique_name": "[MLOps]\\QA Approvers",
    "is_group": True,
}


class ApprovalRequestFactory(DjangoModelFactory):
    """A pending QA approval of a release run that deploys a registered version, assigned to
    an approver group, opened an hour ago. ``environment="PROD"`` for a PROD one."""

    class Meta:
        model = ApprovalRequest

    class Params:
        environment_name = "QA"

    model_version = factory.SubFactory(ModelVersionFactory)
    catalog_model = factory.LazyAttribute(lambda a: a.model_version.registered_model.catalog_model)
    run = factory.LazyAttribute(
        lambda a: PipelineRunFactory(
            pipeline=PipelineFactory(catalog_model=a.catalog_model, kind=PipelineKind.RELEASE),
            model_version=a.model_version,
            state="inProgress",
            result="",
            finished_at=None,
            requested_by="Release Bot",
            requested_by_id="release-bot@example.com",
        )
    )
    environment = factory.SelfAttribute("environment_name")
    stage = factory.LazyAttribute(
        lambda a: RunStageFactory(
            run=a.run, environment=a.environment, waiting=True, name=a.environment
        )
    )
    project = factory.LazyAttribute(lambda a: a.run.pipeline.project)
    ado_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    build_id = factory.LazyAttribute(lambda a: a.run.ado_id)
    pipeline_name = factory.LazyAttribute(lambda a: a.run.pipeline.name)
    run_name = factory.LazyAttribute(lambda a: a.run.name)
    stage_name = factory.LazyAttribute(lambda a: a.stage.name)
    status = ApprovalStatus.PENDING
    ado_status = ApprovalStatus.PENDING
    instructions = "Check the evidence before deploying."
    min_required_approvers = 1
    execution_order = "anyOrder"
    assigned_approvers = factory.LazyFunction(lambda: [dict(GROUP_QA)])
    steps = factory.LazyAttribute(
        lambda a: [
            {"assigned": x, "actual": None, "status": "pending", "comment": "", "order": i + 1}
            for i, x in enumerate(a.assigned_approvers)
        ]
    )
    requested_by = factory.LazyAttribute(lambda a: a.run.requested_by)
    requested_by_id = factory.LazyAttribute(lambda a: a.run.requested_by_id)
    created_on = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))
    expires_at = factory.LazyAttribute(lambda a: a.created_on + dt.timedelta(days=30))
    last_synced_at = factory.LazyFunction(timezone.now)
