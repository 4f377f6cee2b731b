"""The registry source admin: it refuses URIs MLflow cannot use, and lets an operator sync a
source now or test its connection (against the real `mlflow server` of the session)."""

import socket
import time
import uuid

import pytest
from bs4 import BeautifulSoup
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.roles import Role
from registry import services
from registry.models import RegisteredModel, RegistrySource
from tests.registry.factories import RegistrySourceFactory

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


# --- "Sync now" and "Test connection" --------------------------------------------------------


def _act(client, action, *sources):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [s.pk for s in sources]},
        follow=True,
    )


def _messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_test_connection_says_the_source_answers(admin_client, mlflow_server):
    source = RegistrySourceFactory(name="central", tracking_uri=mlflow_server.url)
    response = _act(admin_client, "test_connection", source)
    assert response.status_code == 200
    [message] = _messages(response)
    assert message.startswith(f"central: connected ({mlflow_server.url} answered in ")


def test_test_connection_gives_the_short_reason_never_a_500(admin_client, mlflow_server):
    down = RegistrySourceFactory(name="down", tracking_uri=f"http://127.0.0.1:{_closed_port()}")
    up = RegistrySourceFactory(name="up", tracking_uri=mlflow_server.url)
    response = _act(admin_client, "test_connection", down, up)
    assert response.status_code == 200
    messages = dict(m.split(": ", 1) for m in _messages(response))
    assert messages["down"] == (
        "cannot connect: the connection was refused (is the server running on that port?)"
    )
    assert messages["up"].startswith("connected")


def test_the_connection_check_gives_up_after_its_short_timeout():
    with socket.socket() as silent:  # listens, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        source = RegistrySourceFactory(tracking_uri=f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        result = services.registry_connection_check(source=source, timeout=0.5)
    assert time.monotonic() - started < 5
    assert (result.ok, result.detail) == (False, "no answer in time")


def test_sync_now_on_a_disabled_source_says_why_not(admin_client):
    source = RegistrySourceFactory(name="off", enabled=False)
    [message] = _messages(_act(admin_client, "sync_now", source))
    assert message == "off is disabled: enable it to sync it."


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_sync_now_queues_the_sync_and_a_worker_runs_it(
    celery_worker_process, mlflow_server, mlflow_client, client, make_user
):
    name = f"admin-{uuid.uuid4().hex[:8]}"
    mlflow_client.create_registered_model(name)
    source = RegistrySource.objects.create(
        name=f"a{uuid.uuid4().hex[:6]}", tracking_uri=mlflow_server.url
    )
    client.force_login(make_user(Role.ADMIN, is_staff=True, is_superuser=True))
    [message] = _messages(_act(client, "sync_now", source))
    assert message.startswith(f"Sync queued for registry source {source.name}: a worker runs it")
    deadline = time.monotonic() + 90
    while not RegisteredModel.objects.filter(source=source, name=name).exists():
        assert time.monotonic() < deadline, "the queued sync never ran"
        time.sleep(0.5)
    source.refresh_from_db()
    assert source.last_sync_succeeded_at is not None
