"""factory_boy factories of the pipelines tables (ADO projects, pipelines, runs, stages)."""

import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from pipelines.models import (
    AdoProject,
    DeploymentRecord,
    Pipeline,
    PipelineKind,
    PipelineRun,
    RunRequest,
    RunResult,
    RunStage,
    RunState,
)
from tests.registry.factories import CatalogModelFactory


class AdoProjectFactory(DjangoModelFactory):
    class Meta:
        model = AdoProject
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"ado-{n}")
    organization_url = "https://dev.azure.com/contoso"
    project = factory.LazyAttribute(lambda p: f"MLOps-{p.name}")
    enabled = True
    last_sync_succeeded_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=2))


class PipelineFactory(DjangoModelFactory):
    class Meta:
        model = Pipeline

    project = factory.SubFactory(AdoProjectFactory, name="mlops")
    ado_id = factory.Sequence(lambda n: n + 1)
    catalog_model = factory.SubFactory(CatalogModelFactory)
    kind = PipelineKind.TRAINING
    name = factory.LazyAttribute(
        lambda p: f"risk-{p.catalog_model.name if p.catalog_model else 'x'}-{p.kind}"
    )
    folder = factory.LazyAttribute(
        lambda p: f"\\risk\\{p.catalog_model.name}" if p.catalog_model else ""
    )
    web_url = factory.LazyAttribute(
        lambda p: f"https://dev.azure.com/contoso/MLOps/_build?definitionId={p.ado_id}"
    )
    last_synced_at = factory.LazyFunction(timezone.now)


class PipelineRunFactory(DjangoModelFactory):
    """A completed, succeeded run queued an hour ago, unless told otherwise."""

    class Meta:
        model = PipelineRun

    pipeline = factory.SubFactory(PipelineFactory)
    ado_id = factory.Sequence(lambda n: 1000 + n)
    name = factory.LazyAttribute(lambda r: f"20250301.{r.ado_id}")
    state = RunState.COMPLETED
    result = RunResult.SUCCEEDED
    reason = "manual"
    trigger = ""
    requested_by = "Dana Scientist"
    queued_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))
    started_at = factory.LazyAttribute(
        lambda r: r.queued_at + dt.timedelta(minutes=1) if r.queued_at else None
    )
    finished_at = factory.LazyAttribute(
        lambda r: (
            r.started_at + dt.timedelta(minutes=20)
            if r.started_at and r.state == RunState.COMPLETED
            else None
        )
    )
    source_branch = "refs/heads/main"
    source_version = "0123456789abcdef0123456789abcdef01234567"
    web_url = factory.LazyAttribute(
        lambda r: f"https://dev.azure.com/contoso/MLOps/_build/results?buildId={r.ado_id}"
    )
    parameters = factory.Dict({})
    last_synced_at = factory.LazyFunction(timezone.now)

    class Params:
        running = factory.Trait(state=RunState.IN_PROGRESS, result=RunResult.NONE, finished_at=None)


class RunStageFactory(DjangoModelFactory):
    """A completed, succeeded stage; ``environment`` QA / PROD makes it a deployment stage."""

    class Meta:
        model = RunStage

    run = factory.SubFactory(PipelineRunFactory)
    record_id = factory.Faker("uuid4")
    name = factory.LazyAttribute(lambda s: f"Deploy_{s.environment}" if s.environment else "Build")
    identifier = factory.SelfAttribute("name")
    order = factory.Sequence(lambda n: n)
    environment = ""
    target = ""
    state = "completed"
    result = "succeeded"
    started_at = factory.LazyAttribute(
        lambda s: (s.run.started_at or timezone.now()) + dt.timedelta(minutes=1)
    )
    finished_at = factory.LazyAttribute(
        lambda s: s.started_at + dt.timedelta(minutes=5) if s.state == "completed" else None
    )

    class Params:
        waiting = factory.Trait(
            state="inProgress", result="", waiting_for_approval=True, finished_at=None
        )
        running = factory.Trait(state="inProgress", result="", finished_at=None)
        not_started = factory.Trait(state="pending", result="", started_at=None, finished_at=None)


class RunRequestFactory(DjangoModelFactory):
    class Meta:
        model = RunRequest

    pipeline = factory.SubFactory(PipelineFactory)
    parameters = factory.Dict({"trigger": "manual"})
    reason = "manual"
    note = ""
    status = RunRequest.Status.QUEUED


class DeploymentRecordFactory(DjangoModelFactory):
    """A PROD deployment of a registered version on the default target, from its own run's
    stage; pass ``started_at``, ``target``, ``environment`` and ``model_version``."""

    class Meta:
        model = DeploymentRecord

    catalog_model = factory.SubFactory(CatalogModelFactory)
    environment = "PROD"
    target = "default"
    run = factory.LazyAttribute(
        lambda r: PipelineRunFactory(
            pipeline=PipelineFactory(catalog_model=r.catalog_model, kind=PipelineKind.RELEASE),
            model_version=r.model_version,
        )
    )
    stage = factory.LazyAttribute(lambda r: RunStageFactory(run=r.run, environment=r.environment))
    model_version = None
    version_label = factory.LazyAttribute(
        lambda r: f"v{r.model_version.version}" if r.model_version else "v1"
    )
    approval_ids = factory.List([])
    requested_by = "Release Bot"
    started_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    observed_at = factory.LazyFunction(timezone.now)
