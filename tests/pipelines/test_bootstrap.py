"""The ADO project the environment declares (pipelines.services.ado_project_bootstrap)."""

import io
import json

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from core.environment import EnvironmentInvalid
from pipelines import services
from pipelines.models import AdoProject

pytestmark = pytest.mark.django_db

PAT_VALUE = "pat-that-must-stay-out-of-the-database-5b1e"
ENTRA_SECRET = "entra-secret-that-must-stay-out-of-the-database-9d2a"


@pytest.fixture
def environment(settings):
    settings.AZURE_DEVOPS_ORG_URL = ""
    settings.AZURE_DEVOPS_PROJECT = ""
    settings.AZURE_DEVOPS_PAT = PAT_VALUE
    return settings


def schedules():
    return sorted(
        (task.name, task.kwargs)
        for task in PeriodicTask.objects.filter(task="pipelines.sync_project")
    )


def declare(environment, org="https://dev.azure.com/contoso/", project="MLOps Platform"):
    environment.AZURE_DEVOPS_ORG_URL = org
    environment.AZURE_DEVOPS_PROJECT = project
    return services.ado_project_bootstrap()


def test_the_project_is_created_with_its_schedule(environment):
    (outcome,) = declare(environment)
    project = AdoProject.objects.get()
    assert outcome.action == "created"
    assert (project.name, project.organization_url, project.project) == (
        "mlops-platform",
        "https://dev.azure.com/contoso",
        "MLOps Platform",
    )
    assert project.declared_by == {
        "organization_url": "AZURE_DEVOPS_ORG_URL",
        "project": "AZURE_DEVOPS_PROJECT",
    }
    assert schedules() == [
        ("pipelines sync: mlops-platform", json.dumps({"project_id": project.pk}))
    ]


@pytest.mark.sqlite
def test_twice_gives_the_same_row_and_no_duplicate_schedule(environment):
    declare(environment)
    row, before = AdoProject.objects.values().get(), schedules()
    (outcome,) = declare(environment)
    assert outcome.action == "unchanged"
    assert AdoProject.objects.values().get() == row and schedules() == before


def test_a_moved_organisation_updates_the_row_in_place(environment):
    declare(environment, org="https://contoso.visualstudio.com")
    AdoProject.objects.update(sync_interval_seconds=900, enabled=False)
    (outcome,) = declare(environment)
    project = AdoProject.objects.get()
    assert (
        outcome.action == "updated" and project.organization_url == "https://dev.azure.com/contoso"
    )
    assert project.sync_interval_seconds == 900 and project.enabled is False  # the admin's
    assert (
        len(schedules()) == 1
        and not PeriodicTask.objects.get(task="pipelines.sync_project").enabled
    )


def test_an_admin_project_of_the_same_project_or_name_is_left_as_it_is(environment):
    by_hand = AdoProject.objects.create(
        name="by-hand", organization_url="https://dev.azure.com/contoso", project="MLOps Platform"
    )
    before = AdoProject.objects.values().get()
    (outcome,) = declare(environment)
    assert outcome.action == "left alone" and "'by-hand'" in outcome.detail
    assert "AZURE_DEVOPS_ORG_URL" in outcome.detail
    assert AdoProject.objects.values().get() == before
    by_hand.delete()
    AdoProject.objects.create(
        name="mlops-platform", organization_url="https://dev.azure.com/other", project="X"
    )
    (outcome,) = declare(environment)
    assert outcome.action == "left alone" and "has the name" in outcome.detail
    assert AdoProject.objects.get().organization_url == "https://dev.azure.com/other"


@pytest.mark.sqlite
def test_unset_variables_hand_the_project_to_the_admin(environment):
    declare(environment)
    (outcome,) = declare(environment, org="", project="")
    assert outcome.action == "released" and AdoProject.objects.get().declared_by == {}


@pytest.mark.parametrize(
    ("org", "project", "named"),
    [
        ("ftp://dev.azure.com/contoso", "MLOps", "AZURE_DEVOPS_ORG_URL"),
        ("dev.azure.com/contoso", "MLOps", "AZURE_DEVOPS_ORG_URL"),
        ("https://dev.azure.com/contoso?x=1", "MLOps", "AZURE_DEVOPS_ORG_URL"),
        ("https://dev.azure.com/contoso", "   ", "AZURE_DEVOPS_PROJECT"),
        ("https://dev.azure.com/contoso", "", "AZURE_DEVOPS_PROJECT"),
        ("", "MLOps", "AZURE_DEVOPS_ORG_URL"),
        ("https://dev.azure.com/contoso", "ML/Ops", "AZURE_DEVOPS_PROJECT"),
        ("https://dev.azure.com/contoso", "_hidden", "AZURE_DEVOPS_PROJECT"),
        ("https://dev.azure.com/contoso", "p" * 65, "AZURE_DEVOPS_PROJECT"),
    ],
)
def test_an_invalid_variable_is_named_and_nothing_is_written(environment, org, project, named):
    with pytest.raises(EnvironmentInvalid) as raised:
        declare(environment, org=org, project=project)
    assert raised.value.problems and all(p.startswith(named) for p in raised.value.problems)
    assert not AdoProject.objects.exists() and not schedules()


def test_no_credential_reaches_the_database(environment):
    environment.ENTRA_TENANT_ID = "tenant"
    environment.ENTRA_CLIENT_ID = "client"
    environment.ENTRA_CLIENT_SECRET = ENTRA_SECRET
    declare(environment)
    environment.AZURE_DEVOPS_PAT = ""
    declare(environment)  # the service principal's turn
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert AdoProject.objects.exists()
    assert PAT_VALUE not in dump.getvalue() and ENTRA_SECRET not in dump.getvalue()


def test_missing_credentials_are_a_warning_not_a_refusal(environment):
    environment.AZURE_DEVOPS_PAT = ""
    environment.ENTRA_TENANT_ID = environment.ENTRA_CLIENT_ID = ""
    environment.ENTRA_CLIENT_SECRET = ""
    created, warning = declare(environment)
    assert created.action == "created" and "AZURE_DEVOPS_PAT" in warning.detail


# --- The admin ---------------------------------------------------------------------------


def test_the_admin_shows_the_environment_fields_read_only_with_their_variable(
    environment, admin_client
):
    declare(environment)
    project = AdoProject.objects.get()
    url = f"/admin/pipelines/adoproject/{project.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="organization_url"' not in page and 'name="project"' not in page
    assert 'name="name"' not in page and 'name="sync_interval_seconds"' in page
    assert "<code>AZURE_DEVOPS_ORG_URL</code>" in page
    assert "<code>AZURE_DEVOPS_PROJECT</code>" in page
    response = admin_client.post(
        url,
        {
            "organization_url": "https://evil.example.com",
            "project": "X",
            "sync_interval_seconds": 300,
        },
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.organization_url == "https://dev.azure.com/contoso"
    assert project.sync_interval_seconds == 300 and project.enabled is False


def test_a_project_made_in_the_admin_stays_editable(admin_client):
    project = AdoProject.objects.create(
        name="by-hand", organization_url="https://dev.azure.com/c", project="P"
    )
    page = admin_client.get(f"/admin/pipelines/adoproject/{project.pk}/change/").content
    assert b'name="organization_url"' in page and b'name="project"' in page
