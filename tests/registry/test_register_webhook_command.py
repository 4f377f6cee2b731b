"""manage.py register_mlflow_webhook: refusals with clear messages, and create/update on MLflow."""

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse

from registry.devserver import free_port
from registry.models import RegistrySource, WebhookDelivery
from registry.webhooks import MODEL_EVENTS

URL = "https://portal.example.com/registry/webhooks/mlflow/{}/"


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory):
    """A real `mlflow server` with a fixed webhook encryption key, stopped by its pid."""
    from cryptography.fernet import Fernet

    from registry.devserver import MlflowServer

    server = MlflowServer(
        tmp_path_factory.mktemp("mlflow-register-webhook"),
        webhook_encryption_key=Fernet.generate_key().decode(),
    ).start()
    yield server
    server.stop()


@pytest.fixture
def secret(settings):
    settings.MLFLOW_WEBHOOK_SECRET = "register-command-secret"
    return settings.MLFLOW_WEBHOOK_SECRET


def register(*args):
    call_command("register_mlflow_webhook", *args)


@pytest.mark.django_db
def test_an_unknown_source_is_refused(secret):
    RegistrySource.objects.create(name="central", tracking_uri="http://mlflow.invalid")
    with pytest.raises(CommandError, match=r"Unknown registry source 'nope' \(known: central\)"):
        register("--source", "nope", "--url", URL.format("nope"))


@pytest.mark.django_db
def test_a_missing_secret_is_refused(settings):
    settings.MLFLOW_WEBHOOK_SECRET = ""
    RegistrySource.objects.create(name="central", tracking_uri="http://mlflow.invalid")
    with pytest.raises(CommandError, match="MLFLOW_WEBHOOK_SECRET is not set"):
        register("--source", "central", "--url", URL.format("central"))


@pytest.mark.django_db
def test_a_unity_catalog_source_is_refused(secret):
    RegistrySource.objects.create(
        name="uc", tracking_uri="databricks", registry_uri="databricks-uc"
    )
    with pytest.raises(CommandError, match="Unity Catalog has no registry webhooks"):
        register("--source", "uc", "--url", URL.format("uc"))


@pytest.mark.django_db
def test_a_databricks_workspace_registry_is_refused(secret):
    RegistrySource.objects.create(name="wmr", tracking_uri="databricks", registry_uri="databricks")
    with pytest.raises(CommandError, match="Databricks workspace registry"):
        register("--source", "wmr", "--url", URL.format("wmr"))


@pytest.mark.django_db
def test_an_unreachable_server_is_refused_quickly(secret):
    closed = free_port()  # bound then released: nothing listens there
    RegistrySource.objects.create(name="gone", tracking_uri=f"http://127.0.0.1:{closed}")
    started = time.monotonic()
    with pytest.raises(
        CommandError, match=rf"MLflow at http://127.0.0.1:{closed} could not be used"
    ):
        register("--source", "gone", "--url", URL.format("gone"))
    assert time.monotonic() - started < 30  # MLflow's own defaults would retry for minutes


@pytest.mark.django_db
def test_a_relative_url_is_refused(secret):
    RegistrySource.objects.create(name="central", tracking_uri="http://mlflow.invalid")
    with pytest.raises(CommandError, match="absolute http"):
        register("--source", "central", "--url", "/registry/webhooks/mlflow/central/")


@pytest.mark.django_db
def test_manage_py_exits_1_with_the_message_and_no_traceback(db):
    test_db = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "TEST_DATABASE_URL": (
            f"postgres://{test_db['USER']}@{test_db['HOST']}:{test_db['PORT']}/"
            f"{connection.settings_dict['NAME']}"
        ),
        "MLFLOW_WEBHOOK_SECRET": "subprocess-secret",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "register_mlflow_webhook", "--source", "nope",
         "--url", URL.format("nope")],
        cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "CommandError: Unknown registry source 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def _webhooks_named(client, name):
    return [w for w in client.list_webhooks(max_results=1000) if w.name == name]


def test_creates_then_updates_the_webhook_on_a_real_server(
    hook_server, live_server, settings, capsys
):
    from mlflow import MlflowClient

    RegistrySource.objects.create(name="cmd", tracking_uri=hook_server.url)
    client = MlflowClient(tracking_uri=hook_server.url)

    settings.MLFLOW_WEBHOOK_SECRET = "first-secret"
    register("--source", "cmd", "--url", "http://127.0.0.1:9/registry/webhooks/mlflow/cmd/")
    out = capsys.readouterr()
    assert "Created webhook 'portal-sync'" in out.out
    assert "plain http" in out.err
    [created] = _webhooks_named(client, "portal-sync")
    assert sorted(str(e) for e in created.events) == sorted(MODEL_EVENTS)
    assert str(created.status) in ("ACTIVE", "WebhookStatus.ACTIVE")

    # Second run: new URL and new secret, and a test delivery that only passes if MLflow now
    # signs with the new secret and posts to the new URL.
    settings.MLFLOW_WEBHOOK_SECRET = "second-secret"
    path = reverse("registry:mlflow-webhook", kwargs={"source": "cmd"})
    register("--source", "cmd", "--url", f"{live_server.url}{path}", "--test")
    out = capsys.readouterr().out
    assert f"Updated webhook 'portal-sync' ({created.webhook_id})" in out
    assert "Test delivery succeeded: HTTP 202" in out
    [updated] = _webhooks_named(client, "portal-sync")
    assert updated.webhook_id == created.webhook_id
    assert updated.url == f"{live_server.url}{path}"
    assert WebhookDelivery.objects.filter(source__name="cmd", model_name="example_model").exists()


def test_a_failing_test_delivery_is_an_error(hook_server, live_server, settings, capsys):
    RegistrySource.objects.create(name="cmd-bad", tracking_uri=hook_server.url)
    settings.MLFLOW_WEBHOOK_SECRET = "registered-secret"
    wrong = reverse("registry:mlflow-webhook", kwargs={"source": "not-a-source"})
    with pytest.raises(CommandError, match="Test delivery failed: HTTP 404"):
        register(
            "--source", "cmd-bad", "--url", f"{live_server.url}{wrong}", "--name", "bad", "--test"
        )
    assert "does not end with /registry/webhooks/mlflow/cmd-bad/" in capsys.readouterr().err


def test_duplicate_names_update_the_first_and_warn(hook_server, secret, transactional_db, capsys):
    from mlflow import MlflowClient

    RegistrySource.objects.create(name="dup", tracking_uri=hook_server.url)
    client = MlflowClient(tracking_uri=hook_server.url)
    # MLflow accepts two webhooks with the same name.
    for _ in range(2):
        client.create_webhook(name="dup-hook", url=URL.format("dup"), events=list(MODEL_EVENTS))
    register("--source", "dup", "--url", URL.format("dup"), "--name", "dup-hook")
    captured = capsys.readouterr()
    assert "Updated webhook 'dup-hook'" in captured.out
    assert "2 webhooks are named 'dup-hook'" in captured.err
    assert len(_webhooks_named(client, "dup-hook")) == 2
