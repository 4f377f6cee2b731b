"""The operations chain against the real parts: a signal POSTed over HTTP to the live portal,
then the portal's own tasks and services driven the way the worker and beat run them (send
the run request, sync the pipelines, re-read the model in the registry, follow the episodes,
poll the approvals) against the ADO simulator over HTTP and a real `mlflow server`.

Nothing here decides what the portal does; it only plays the parts around it: the simulator's
clock (ADO's runs move when it advances) and the calls beat and the worker would make.
"""

from __future__ import annotations

import time
import uuid
import warnings
from dataclasses import dataclass

from mlflow import MlflowClient

from ado_simulator import AdoSimulator, RemoteSimulator
from approvals import services as approvals_services
from approvals.models import PromotionPolicy
from operations.models import Episode, MatchRule, TriggerMode, TriggerPolicy
from operations.services.following import episodes_follow
from pipelines import services as pipelines_services
from pipelines import tasks as pipelines_tasks
from pipelines.client import AdoClient, AdoCredentials
from pipelines.models import AdoProject, Pipeline, PipelineKind, RunRequest
from registry import services as registry_services
from registry.models import CatalogModel, RegistrySource
from tests.registry.upstream import log_run

# The test settings' default PAT (portal/settings/test.py): a session worker an earlier test
# started (tests/conftest.py celery_worker_process) has it too, and may send a run request first.
PAT = "simulator-pat"
PAT_USER = "portal-service@example.com"
STAGE_SECONDS = 30  # every simulated stage: a training run ends a minute after it starts


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class ModelSetup:
    catalog: CatalogModel
    train: object  # the simulator's pipelines
    release: object
    champion_version: int
    latest_version: int


class Chain:
    """One test's model in the shared simulator and MLflow, and the steps that move it."""

    def __init__(self, sim: AdoSimulator, mlflow_url: str, settings):
        settings.AZURE_DEVOPS_PAT = PAT
        self.sim = sim
        self.remote = RemoteSimulator(sim.url)
        self.mlflow = MlflowClient(tracking_uri=mlflow_url)
        self.project = AdoProject.objects.create(
            name="mlops", organization_url=sim.org_url, project="MLOps"
        )
        self.source = RegistrySource.objects.create(
            name="central", tracking_uri=mlflow_url, is_central=True
        )
        self.client = AdoClient(sim.org_url, "MLOps", AdoCredentials(pat=PAT), sleep=lambda s: 0)
        self.name = ""

    # --- set up ----------------------------------------------------------------------------

    def model(
        self,
        *,
        champion_auc: float,
        latest_auc: float,
        prefix: str = "fraud",
        min_absolute_change: float = 0.05,
        **policy,
    ) -> ModelSetup:
        """A model in MLflow with two versions (v1 the ``champion`` alias, v2 the latest, whose
        run the simulator's next training metrics stay within 0.03 of), its catalog entry, its
        training and release pipelines in the simulator (mirrored), an automatic trigger
        policy and a promotion policy on auc."""
        self.name = name = unique(prefix)
        catalog = CatalogModel.objects.create(name=name, kind="ml", team="risk")
        self.mlflow.create_registered_model(name)
        champion = self._version(name, champion_auc)
        latest = self._version(name, latest_auc)
        self.mlflow.set_registered_model_alias(name, "champion", str(champion))
        train = self.sim.create_pipeline(
            f"risk-{name}-train", "training", model=name, stage_seconds=STAGE_SECONDS
        )
        release = self.sim.create_pipeline(
            f"risk-{name}-release", "release", model=name, stage_seconds=STAGE_SECONDS
        )
        self.registry_sync()
        self.pipelines_sync()
        policy.setdefault("mode", TriggerMode.AUTOMATIC)
        TriggerPolicy.objects.create(catalog_model=catalog, **policy)
        PromotionPolicy.objects.create(
            catalog_model=catalog, metric="auc", min_absolute_change=min_absolute_change
        )
        return ModelSetup(catalog, train, release, champion, latest)

    def _version(self, name: str, auc: float) -> int:
        run_id = log_run(self.mlflow, f"/Shared/{name}-history", {"auc": auc}, {"depth": "6"})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            version = self.mlflow.create_model_version(
                name, source=f"runs:/{run_id}/model", run_id=run_id
            )
        return int(version.version)

    def rule(self, field: str, value: str, **kwargs) -> MatchRule:
        return MatchRule.objects.create(
            field=field,
            value=value,
            catalog_model=CatalogModel.objects.get(name=self.name),
            **kwargs,
        )

    # --- the worker's and beat's calls -------------------------------------------------------

    def send_run_requests(self) -> int:
        """What the worker does with ``pipelines.send_run_request`` for each due request (the
        intake queued them after its commit; the sweep would re-queue any lost one)."""
        due = list(
            RunRequest.objects.filter(status=RunRequest.Status.QUEUED).values_list("pk", flat=True)
        )
        for pk in due:
            answer = pipelines_tasks.send_run_request(pk)
            if answer["status"] == RunRequest.Status.QUEUED:
                # Claimed by a real worker: the session's celery_worker_process (tests/conftest.py),
                # when an earlier test started it, takes the task the intake queued.
                answer["status"] = _sent_by_another(pk)
            assert answer["status"] == RunRequest.Status.SENT, answer
        return len(due)

    def pipelines_sync(self) -> None:
        self.project.refresh_from_db()
        result = pipelines_services.project_sync(project=self.project, client=self.client)
        assert result.ok, result.as_dict()

    def registry_sync(self) -> None:
        self.source.refresh_from_db()
        result = registry_services.registered_model_sync(source=self.source, name=self.name)
        assert result.ok, result.as_dict()

    def approvals_sync(self) -> None:
        self.project.refresh_from_db()
        result = approvals_services.project_approvals_sync(project=self.project, client=self.client)
        assert result.ok, result.as_dict()

    def mirror(self) -> None:
        """Beat's syncs after ADO moved: runs, versions (then runs again, so a run links to the
        version it registered), approvals."""
        self.pipelines_sync()
        self.registry_sync()
        self.pipelines_sync()
        self.approvals_sync()

    def play(self, seconds: float) -> None:
        """ADO's time passes; wait for the simulator's MLflow registrations it started."""
        self.remote.advance(seconds)
        assert self.remote.wait_for_mlflow(30), "the simulator's MLflow registration hung"

    def follow(self) -> int:
        return episodes_follow()

    def drive(self, episode: Episode, until, *, rounds: int = 12, step_seconds: float = 60):
        """Send, play ADO's clock, mirror and follow, round after round, until ``until(episode)``
        holds (the episode refreshed); the episode."""
        for _ in range(rounds):
            self.send_run_requests()
            self.play(step_seconds)
            self.mirror()
            self.follow()
            episode.refresh_from_db()
            if until(episode):
                return episode
        raise AssertionError(
            f"episode #{episode.pk} stopped at {episode.state} ({episode.outcome}): "
            f"{list(episode.events.values_list('step', 'message'))}"
        )

    # --- reading the simulator --------------------------------------------------------------

    def ado_runs(self, pipeline) -> list[dict]:
        return list(self.client.list_builds(definitions=[pipeline.id], top=100))

    def portal_pipeline(self, kind: str) -> Pipeline:
        return Pipeline.objects.get(catalog_model__name=self.name, kind=kind)

    def training(self) -> Pipeline:
        return self.portal_pipeline(PipelineKind.TRAINING)


def _sent_by_another(pk: int, timeout: float = 30) -> str:
    """The request's status once the worker holding its claim is done with it."""
    deadline = time.monotonic() + timeout
    while True:
        status = RunRequest.objects.values_list("status", flat=True).get(pk=pk)
        if status != RunRequest.Status.QUEUED or time.monotonic() > deadline:
            return status
        time.sleep(0.1)
