"""The registry source admin: it refuses URIs MLflow cannot use, and lets an operator sync a
source now or test its connection (against the real `mlflow server` of the session)."""

import pytest
from bs4 import BeautifulSoup
from django.core.exceptions import ValidationError
from django.urls import reverse

from portal.roles import Role
from registry.models import RegistrySource

pytestmark = pytest.mark.django_db

ADD = reverse("admin:registry_registrysource_add")
CHANGELIST = reverse("admin:registry_registrysource_changelist")


def _source(tracking_uri, registry_uri=""):
    return RegistrySource(name="s", tracking_uri=tracking_uri, registry_uri=registry_uri)


@pytest.mark.parametrize(
    ("tracking_uri", "registry_uri"),
    [
        ("http://127.0.0.1:5000", ""),
        ("https://adb-1234.5.azuredatabricks.net", ""),
        ("http://mlflow:5000", ""),  # a compose service name, no dot
        ("databricks", ""),
        ("databricks://prod-profile", ""),
        ("databricks", "databricks-uc"),
        ("databricks://prod", "databricks-uc://prod"),
        ("http://127.0.0.1:5000", "uc:http://127.0.0.1:8080"),
    ],
)
def test_uris_mlflow_accepts_are_valid(tracking_uri, registry_uri):
    _source(tracking_uri, registry_uri).full_clean()


@pytest.mark.parametrize(
    ("tracking_uri", "registry_uri", "field", "message"),
    [
        ("not a url", "", "tracking_uri", "not an MLflow tracking URI"),
        ("http://", "", "tracking_uri", "needs a host"),
        ("http://exa mple.com", "", "tracking_uri", "needs a host"),
        ("ftp://example.com", "", "tracking_uri", "not an MLflow tracking URI"),
        ("/var/mlruns", "", "tracking_uri", "not an MLflow tracking URI"),
        ("file:///var/mlruns", "", "tracking_uri", "not an MLflow tracking URI"),
        ("databricks-uc", "", "tracking_uri", "put 'databricks' here and 'databricks-uc'"),
        ("databricks:prod", "", "tracking_uri", "databricks://profile"),
        ("databricks://", "", "tracking_uri", "databricks://profile"),
        ("databricks", "unity", "registry_uri", "not an MLflow registry URI"),
    ],
)
def test_other_uris_are_refused_with_a_clear_message(tracking_uri, registry_uri, field, message):
    with pytest.raises(ValidationError) as refused:
        _source(tracking_uri, registry_uri).full_clean()
    assert message in " ".join(refused.value.message_dict[field])


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user(Role.ADMIN, is_staff=True, is_superuser=True))
    return client


def _form(**fields):
    return {
        "name": "central",
        "tracking_uri": "http://127.0.0.1:5000",
        "registry_uri": "",
        "ui_url": "",
        "enabled": "on",
        "sync_interval_seconds": "300",
        "full_sync_interval_seconds": "3600",
        **fields,
    }


def test_the_admin_refuses_a_tracking_uri_that_is_not_one(admin_client):
    response = admin_client.post(ADD, _form(tracking_uri="not a url"))
    assert response.status_code == 200
    errors = BeautifulSoup(response.content, "html.parser").select_one(
        ".field-tracking_uri .errorlist"
    )
    assert "not an MLflow tracking URI" in errors.get_text()
    assert not RegistrySource.objects.exists()
    response = admin_client.post(ADD, _form())
    assert response.status_code == 302 and RegistrySource.objects.get().name == "central"
