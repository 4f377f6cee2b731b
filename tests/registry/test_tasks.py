"""The registry tasks on a real Celery worker process (Redis broker, the test database)."""

import uuid

import pytest

from core.leases import lease_acquire, lease_release
from registry.models import RegisteredModel, RegistrySource
from registry.tasks import sync_model, sync_source
from tests.registry.upstream import add_version

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_worker_syncs_a_source(celery_worker_process, mlflow_server, mlflow_client):
    name = f"worker-{uuid.uuid4().hex[:8]}"
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name)
    source = RegistrySource.objects.create(
        name=f"w{uuid.uuid4().hex[:6]}", tracking_uri=mlflow_server.url
    )

    summary = sync_source.delay(source.pk, full=True).get(timeout=120)

    assert summary["mode"] == "full" and summary["error"] == ""
    assert RegisteredModel.objects.get(source=source, name=name).versions.count() == 1


def test_the_worker_refreshes_one_model_for_a_webhook(
    celery_worker_process, mlflow_server, mlflow_client
):
    name = f"hooked-{uuid.uuid4().hex[:8]}"
    mlflow_client.create_registered_model(name)
    source = RegistrySource.objects.create(
        name=f"w{uuid.uuid4().hex[:6]}", tracking_uri=mlflow_server.url
    )
    summary = sync_model.delay(source.pk, name).get(timeout=120)
    assert summary["mode"] == "model" and summary["models"]["created"] == 1


def test_a_disabled_source_is_skipped(celery_worker_process, mlflow_server):
    source = RegistrySource.objects.create(
        name=f"w{uuid.uuid4().hex[:6]}", tracking_uri=mlflow_server.url, enabled=False
    )
    assert sync_source.delay(source.pk).get(timeout=60) == {"skipped": "source missing or disabled"}


def test_a_webhook_refresh_waits_while_the_source_is_busy(mlflow_server):
    """Called in-process, so the retry is seen at once instead of 15 s later on a worker."""
    from celery.exceptions import Retry

    source = RegistrySource.objects.create(
        name=f"w{uuid.uuid4().hex[:6]}", tracking_uri=mlflow_server.url
    )
    token = lease_acquire(RegistrySource, source.pk, ttl_seconds=60)
    try:
        with pytest.raises(Retry):
            sync_model(source.pk, "anything")
    finally:
        lease_release(RegistrySource, source.pk, token)
