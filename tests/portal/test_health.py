import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from core.sync import SyncStatus

pytestmark = pytest.mark.django_db


def fake_sync_statuses():
    now = timezone.now()  # at call time: a slow suite must not age these
    return [
        SyncStatus("registry:central", now - timedelta(minutes=5)),
        SyncStatus(
            "ado:risk-project",
            now - timedelta(hours=3),
            last_error_at=now - timedelta(minutes=1),
            last_error="HTTP 503 from dev.azure.com",
        ),
        SyncStatus("registry:data-discovery", None),
    ]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_round_trips_the_database_and_the_real_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["detail"] == "postgresql"
    assert body["checks"]["broker"] == {
        "ok": True,
        "latency_ms": body["checks"]["broker"]["latency_ms"],
        "detail": "redis",
    }


def test_readyz_is_503_and_names_the_broker_when_redis_is_unreachable(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["broker"]["ok"] is False
    assert "Connection" in body["checks"]["broker"]["detail"]
    assert body["checks"]["database"]["ok"] is True


def test_readyz_leaves_no_probe_queue_behind(client, settings):
    import redis

    before = set(redis.Redis.from_url(settings.CELERY_BROKER_URL).keys("portal.readyz.*"))
    client.get("/readyz")
    after = set(redis.Redis.from_url(settings.CELERY_BROKER_URL).keys("portal.readyz.*"))
    assert after <= before


def test_readyz_reports_the_age_of_each_sync(client, settings):
    settings.PORTAL_SYNC_STATUS_PROVIDERS = ["tests.portal.test_health.fake_sync_statuses"]
    settings.PORTAL_SYNC_STALE_AFTER_SECONDS = 3600
    response = client.get("/readyz")
    assert response.status_code == 200  # stale syncs are reported, not a reason to drop traffic
    syncs = {s["name"]: s for s in response.json()["syncs"]}
    assert 290 < syncs["registry:central"]["age_seconds"] < 400
    assert syncs["registry:central"]["stale"] is False
    assert syncs["ado:risk-project"]["stale"] is True
    assert syncs["ado:risk-project"]["failing"] is True
    assert syncs["ado:risk-project"]["last_error"] == "HTTP 503 from dev.azure.com"
    assert syncs["registry:data-discovery"]["age_seconds"] is None
    assert syncs["registry:data-discovery"]["stale"] is True


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_whatever_the_host_header(client, path):
    """Kubernetes and Docker probe by IP address, which is not an allowed host."""
    response = client.get(path, HTTP_HOST="10.0.3.7:8000")
    assert response.status_code == 200
    assert response["X-Request-ID"]


def test_other_pages_still_validate_the_host(client):
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400


def test_probes_are_counted_in_metrics(client, settings):
    client.get("/healthz", HTTP_HOST="10.0.3.7:8000")
    body = client.get(
        "/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"}
    ).content.decode()
    assert 'portal_http_requests_total{method="GET",status="200",view="healthz"}' in body
