"""``manage.py bootstrap_from_env``: a fresh production start mirrors the registry and the ADO
project from environment variables alone (issue 14's "done when"), idempotently, and refuses a
bad variable by name with exit code 1."""

import io
import json
import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import PeriodicTask

from pipelines import tasks as pipelines_tasks
from pipelines.models import AdoProject, PipelineRun
from registry import tasks as registry_tasks
from registry.models import ModelVersion, RegisteredModel, RegistrySource
from tests.ado_simulator import conftest as ado_fixtures
from tests.ado_simulator.conftest import PAT
from tests.registry.upstream import add_version

pytestmark = pytest.mark.django_db

# The fixtures of a real `mlflow server` and of the ADO simulator, as the other apps use them.
sim = ado_fixtures.sim
# What a worker runs for each beat entry, by the task name the entry names.
SYNC_TASKS = {
    "registry.sync_source": registry_tasks.sync_source,
    "pipelines.sync_project": pipelines_tasks.sync_project,
}


@pytest.fixture
def environment(settings):
    """The settings the environment feeds, all unset unless a test sets them."""
    for name in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "DATA_DISCOVERY_MLFLOW_TRACKING_URI",
        "DATA_DISCOVERY_MLFLOW_REGISTRY_URI",
        "AZURE_DEVOPS_ORG_URL",
        "AZURE_DEVOPS_PROJECT",
    ):
        setattr(settings, name, "")
    settings.AZURE_DEVOPS_PAT = PAT
    return settings


def bootstrap() -> list[str]:
    out = io.StringIO()
    call_command("bootstrap_from_env", stdout=out)
    return out.getvalue().splitlines()


def beat_entries():
    return sorted(
        (t.name, t.task, t.kwargs) for t in PeriodicTask.objects.filter(task__in=SYNC_TASKS)
    )


def test_a_fresh_start_from_the_environment_mirrors_the_registry_and_the_ado_project(
    environment, mlflow_server, sim
):
    """The done-when: a real `mlflow server` and the ADO simulator, production-like settings
    (the env-derived ones overridden), the bootstrap, then each sync its beat entry asks
    for, run as the worker would run it: the models, versions and runs are in the mirror."""
    from mlflow import MlflowClient

    mlflow = MlflowClient(tracking_uri=mlflow_server.url)
    model = f"fresh-start-{uuid.uuid4().hex[:8]}"
    mlflow.create_registered_model(model, tags={"team": "risk"})
    add_version(mlflow, model, metrics={"auc": 0.9})
    add_version(mlflow, model, metrics={"auc": 0.93})
    pipeline = sim.create_pipeline(
        f"risk-{model}-train", "training", folder=f"\\risk\\{model}", model=model
    )
    run = sim.queue_run(pipeline)
    sim.advance(3600)

    environment.MLFLOW_TRACKING_URI = mlflow_server.url
    environment.AZURE_DEVOPS_ORG_URL = sim.org_url
    environment.AZURE_DEVOPS_PROJECT = "MLOps"
    lines = bootstrap()
    assert "bootstrap_from_env: registry source 'central': created" in lines[0]
    assert any("ADO project 'MLOps': created" in line for line in lines)

    # The registry's incremental sync and full sweep, then the project's (whose pipelines
    # link to the catalog entries the registry's sync made).
    entries = PeriodicTask.objects.filter(task__in=SYNC_TASKS).order_by("-task", "name")
    assert [e.task for e in entries] == [*["registry.sync_source"] * 2, "pipelines.sync_project"]
    for entry in entries:
        result = SYNC_TASKS[entry.task].apply(kwargs=json.loads(entry.kwargs)).get()
        assert not result.get("error") and not result.get("skipped"), result

    source = RegistrySource.objects.get(name="central")
    mirrored = RegisteredModel.objects.get(source=source, name=model)
    assert sorted(
        ModelVersion.objects.filter(registered_model=mirrored).values_list("version", flat=True)
    ) == [1, 2]
    project = AdoProject.objects.get()
    assert project.from_environment and project.last_sync_succeeded_at is not None
    mirrored_run = PipelineRun.objects.get(pipeline__project=project, ado_id=run.id)
    assert mirrored_run.pipeline.catalog_model == mirrored.catalog_model
    assert mirrored_run.state == "completed"


@pytest.mark.sqlite
def test_twice_gives_the_same_rows_and_no_duplicate_schedule(environment):
    environment.MLFLOW_TRACKING_URI = "http://mlflow:5000"
    environment.DATA_DISCOVERY_MLFLOW_TRACKING_URI = "databricks"
    environment.DATA_DISCOVERY_MLFLOW_REGISTRY_URI = "databricks-uc"
    environment.AZURE_DEVOPS_ORG_URL = "https://dev.azure.com/contoso"
    environment.AZURE_DEVOPS_PROJECT = "MLOps"
    bootstrap()
    rows = (
        list(RegistrySource.objects.values().order_by("pk")),
        list(AdoProject.objects.values().order_by("pk")),
    )
    entries = beat_entries()
    second = bootstrap()
    assert all(": unchanged" in line for line in second), second
    assert beat_entries() == entries and len(entries) == 5
    assert rows == (
        list(RegistrySource.objects.values().order_by("pk")),
        list(AdoProject.objects.values().order_by("pk")),
    )


def test_rows_made_in_the_admin_are_left_alone_with_a_clear_message(environment):
    RegistrySource.objects.create(name="central", tracking_uri="http://by-hand:5000")
    AdoProject.objects.create(
        name="by-hand", organization_url="https://dev.azure.com/contoso", project="MLOps"
    )
    before = (list(RegistrySource.objects.values()), list(AdoProject.objects.values()))
    environment.MLFLOW_TRACKING_URI = "http://mlflow:5000"
    environment.AZURE_DEVOPS_ORG_URL = "https://dev.azure.com/contoso"
    environment.AZURE_DEVOPS_PROJECT = "MLOps"
    lines = bootstrap()
    assert any(
        "'central': left alone (a source of that name was made in the admin" in ln for ln in lines
    )
    assert any("left alone (the ADO project 'by-hand', made in the admin" in ln for ln in lines)
    assert (list(RegistrySource.objects.values()), list(AdoProject.objects.values())) == before


@pytest.mark.sqlite
def test_bad_variables_of_both_apps_are_all_named_and_nothing_is_written(environment):
    environment.MLFLOW_TRACKING_URI = "http://mlflow:5000"  # valid: still not written
    environment.DATA_DISCOVERY_MLFLOW_TRACKING_URI = "mlflow.example.com"
    environment.AZURE_DEVOPS_ORG_URL = "dev.azure.com/contoso"
    environment.AZURE_DEVOPS_PROJECT = "MLOps"
    with pytest.raises(CommandError) as raised:
        bootstrap()
    message = str(raised.value)
    assert "DATA_DISCOVERY_MLFLOW_TRACKING_URI" in message and "AZURE_DEVOPS_ORG_URL" in message
    assert "nothing was changed" in message and raised.value.returncode == 1
    assert not RegistrySource.objects.exists() and not AdoProject.objects.exists()
    assert not beat_entries()


def test_the_command_exits_1_naming_the_variable_with_no_traceback():
    db = settings.DATABASES["default"]
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    url = (
        f"postgres://{db.get('USER') or 'postgres'}{password}@{db.get('HOST') or '127.0.0.1'}"
        f":{db.get('PORT') or 5432}/{db['NAME']}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TEST_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.test",
        TEST_DATABASE_URL=url,
        MLFLOW_TRACKING_URI="ftp://mlflow:5000",
        AZURE_DEVOPS_ORG_URL="https://dev.azure.com/contoso",
        AZURE_DEVOPS_PROJECT="   ",
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "bootstrap_from_env"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "MLFLOW_TRACKING_URI" in done.stderr and "AZURE_DEVOPS_PROJECT" in done.stderr
    assert "Traceback" not in done.stderr
