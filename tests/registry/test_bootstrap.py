"""The registry sources the environment declares (registry.services.registry_sources_bootstrap)."""

import json

import pytest
from django_celery_beat.models import PeriodicTask

from core.environment import EnvironmentInvalid
from registry import services
from registry.models import RegistrySource

pytestmark = pytest.mark.django_db

CENTRAL_VARIABLES = {
    "tracking_uri": "MLFLOW_TRACKING_URI",
    "registry_uri": "MLFLOW_REGISTRY_URI",
    "is_central": "MLFLOW_TRACKING_URI",
}


@pytest.fixture
def environment(settings):
    """No registry variable set unless a test sets it."""
    for name in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
        "DATA_DISCOVERY_MLFLOW_TRACKING_URI",
        "DATA_DISCOVERY_MLFLOW_REGISTRY_URI",
    ):
        setattr(settings, name, "")
    return settings


def schedules():
    return sorted(
        (task.name, task.kwargs, task.interval.every)
        for task in PeriodicTask.objects.filter(task="registry.sync_source")
    )


def test_the_central_source_is_created_with_its_schedules(environment):
    environment.MLFLOW_TRACKING_URI = "http://mlflow:5000"
    outcomes = services.registry_sources_bootstrap()
    source = RegistrySource.objects.get()
    assert (source.name, source.tracking_uri, source.registry_uri, source.is_central) == (
        "central",
        "http://mlflow:5000",
        "",
        True,
    )
    assert source.declared_by == CENTRAL_VARIABLES and source.from_environment
    assert [o.action for o in outcomes] == ["created", "not declared"]
    assert [name for name, _, _ in schedules()] == [
        "registry full sweep: central",
        "registry sync: central",
    ]


def test_twice_gives_the_same_rows_and_no_duplicate_schedule(environment):
    environment.MLFLOW_TRACKING_URI = "databricks"
    environment.MLFLOW_REGISTRY_URI = "databricks-uc"
    environment.DATA_DISCOVERY_MLFLOW_TRACKING_URI = "https://dd.example.com/mlflow"
    services.registry_sources_bootstrap()
    rows = list(RegistrySource.objects.values().order_by("name"))
    before = schedules()
    outcomes = services.registry_sources_bootstrap()
    assert [o.action for o in outcomes] == ["unchanged", "unchanged"]
    assert list(RegistrySource.objects.values().order_by("name")) == rows
    assert schedules() == before and len(before) == 4
    names = {row["name"]: row for row in rows}
    assert names["data-discovery"]["is_central"] is False
    assert names["data-discovery"]["declared_by"]["tracking_uri"] == (
        "DATA_DISCOVERY_MLFLOW_TRACKING_URI"
    )


def test_a_changed_uri_updates_the_row_and_restarts_from_a_full_sync(environment):
    environment.MLFLOW_TRACKING_URI = "http://old-mlflow:5000"
    services.registry_sources_bootstrap()
    RegistrySource.objects.update(cursor_ms=123, sync_interval_seconds=600, ui_url="https://ui")
    environment.MLFLOW_TRACKING_URI = "http://new-mlflow:5000"
    (central, _) = services.registry_sources_bootstrap()
    source = RegistrySource.objects.get()
    assert central.action == "updated" and source.tracking_uri == "http://new-mlflow:5000"
    assert source.cursor_ms is None
    # What the admin owns on the same row stays the admin's.
    assert source.sync_interval_seconds == 600 and source.ui_url == "https://ui"
    assert ("registry sync: central", json.dumps({"source_id": source.pk, "full": False}), 600) in (
        schedules()
    )


def test_an_admin_source_of_the_same_name_is_left_as_it_is(environment):
    admin_row = RegistrySource.objects.create(name="central", tracking_uri="http://by-hand:5000")
    before = RegistrySource.objects.values().get()
    environment.MLFLOW_TRACKING_URI = "http://mlflow:5000"
    (central, _) = services.registry_sources_bootstrap()
    assert central.action == "left alone"
    assert "made in the admin" in central.detail and "MLFLOW_TRACKING_URI" in central.detail
    assert RegistrySource.objects.values().get() == before
    assert RegistrySource.objects.get(pk=admin_row.pk).declared_by == {}


def test_an_admin_source_of_the_same_registry_is_not_mirrored_twice(environment):
    RegistrySource.objects.create(name="by-hand", tracking_uri="http://mlflow:5000")
    environment.MLFLOW_TRACKING_URI = "http://mlflow:5000"
    (central, _) = services.registry_sources_bootstrap()
    assert central.action == "left alone" and "'by-hand'" in central.detail
    assert list(RegistrySource.objects.values_list("name", flat=True)) == ["by-hand"]


@pytest.mark.sqlite
def test_an_unset_variable_hands_its_source_to_the_admin(environment):
    environment.MLFLOW_TRACKING_URI = "http://mlflow:5000"
    services.registry_sources_bootstrap()
    environment.MLFLOW_TRACKING_URI = ""
    (central, _) = services.registry_sources_bootstrap()
    source = RegistrySource.objects.get()
    assert central.action == "released" and source.declared_by == {}
    assert source.tracking_uri == "http://mlflow:5000"


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"MLFLOW_TRACKING_URI": "ftp://mlflow:5000"}, "MLFLOW_TRACKING_URI"),
        ({"MLFLOW_TRACKING_URI": "/var/mlruns"}, "MLFLOW_TRACKING_URI"),
        ({"MLFLOW_TRACKING_URI": "http://"}, "MLFLOW_TRACKING_URI"),
        ({"MLFLOW_TRACKING_URI": "databricks-uc"}, "MLFLOW_TRACKING_URI"),
        ({"MLFLOW_TRACKING_URI": "   "}, "MLFLOW_TRACKING_URI"),
        ({"MLFLOW_TRACKING_URI": "http://x/" + "a" * 600}, "MLFLOW_TRACKING_URI"),
        (
            {"MLFLOW_TRACKING_URI": "databricks", "MLFLOW_REGISTRY_URI": "s3://x"},
            "MLFLOW_REGISTRY_URI",
        ),
        ({"MLFLOW_REGISTRY_URI": "databricks-uc"}, "MLFLOW_REGISTRY_URI"),
        (
            {"MLFLOW_TRACKING_URI": "http://ok:5000", "DATA_DISCOVERY_MLFLOW_TRACKING_URI": "dd"},
            "DATA_DISCOVERY_MLFLOW_TRACKING_URI",
        ),
    ],
)
def test_an_invalid_variable_is_named_and_nothing_is_written(environment, variables, named):
    for name, value in variables.items():
        setattr(environment, name, value)
    with pytest.raises(EnvironmentInvalid) as raised:
        services.registry_sources_bootstrap()
    assert raised.value.problems and all(p.startswith(named) for p in raised.value.problems)
    assert not RegistrySource.objects.exists() and not schedules()


# --- The admin ---------------------------------------------------------------------------


def test_the_admin_shows_the_environment_fields_read_only_with_their_variable(
    environment, admin_client
):
    environment.MLFLOW_TRACKING_URI = "http://mlflow:5000"
    services.registry_sources_bootstrap()
    source = RegistrySource.objects.get()
    url = f"/admin/registry/registrysource/{source.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert 'name="tracking_uri"' not in page and 'name="registry_uri"' not in page
    assert 'name="is_central"' not in page and 'name="name"' not in page
    assert 'name="sync_interval_seconds"' in page and 'name="enabled"' in page
    assert "<code>MLFLOW_TRACKING_URI</code>" in page and "bootstrap_from_env" in page
    # A crafted POST cannot change them either.
    response = admin_client.post(
        url,
        {
            "name": "renamed",
            "tracking_uri": "http://elsewhere:5000",
            "ui_url": "",
            "enabled": "on",
            "sync_interval_seconds": 900,
            "full_sync_interval_seconds": 3600,
        },
    )
    assert response.status_code == 302
    source.refresh_from_db()
    assert (source.name, source.tracking_uri, source.sync_interval_seconds) == (
        "central",
        "http://mlflow:5000",
        900,
    )
    listing = admin_client.get("/admin/registry/registrysource/").content.decode()
    assert "from environment" in listing.lower()


def test_a_source_made_in_the_admin_stays_editable(admin_client):
    source = RegistrySource.objects.create(name="by-hand", tracking_uri="http://mlflow:5000")
    page = admin_client.get(f"/admin/registry/registrysource/{source.pk}/change/").content
    assert b'name="tracking_uri"' in page and b"declared by the environment" not in page.lower()
