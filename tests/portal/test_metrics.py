import pytest

from core.roles import Role

pytestmark = pytest.mark.django_db


def test_the_scraper_reads_metrics_with_its_bearer_token(client, settings):
    client.get("/healthz")
    response = client.get("/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert 'portal_http_requests_total{method="GET",status="200",view="healthz"}' in body
    assert "portal_http_request_duration_seconds_bucket" in body


@pytest.mark.parametrize("header", ["Bearer wrong", "Basic dGVzdDp0ZXN0", "Bearer "])
def test_a_wrong_token_is_refused(client, header):
    response = client.get("/metrics", headers={"Authorization": header})
    assert response.status_code == 302  # to sign-in: no token, no session
    assert "/accounts/login/" in response["Location"]


def test_no_token_configured_means_only_operators(client, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 302


def test_operators_read_metrics_signed_in(role_client):
    assert role_client(Role.ADMIN).get("/metrics").status_code == 200


def test_sync_ages_are_exported(role_client, settings):
    settings.PORTAL_SYNC_STATUS_PROVIDERS = ["tests.portal.test_health.fake_sync_statuses"]
    body = role_client(Role.ADMIN).get("/metrics").content.decode()
    age_line = next(
        line
        for line in body.splitlines()
        if line.startswith('portal_sync_age_seconds{sync="registry:central"}')
    )
    assert 290 < float(age_line.split()[-1]) < 400
    assert 'portal_sync_failing{sync="ado:risk-project"} 1.0' in body
    assert 'portal_sync_failing{sync="registry:central"} 0.0' in body
    # a source that never succeeded has no age, rather than a made-up one
    assert 'portal_sync_age_seconds{sync="registry:data-discovery"}' not in body


def test_task_outcomes_are_counted_from_celery_signals(role_client):
    """Run a task in-process through Celery's tracer, so the worker-side signals fire."""
    from portal.tasks import ping

    ping.apply()
    body = role_client(Role.ADMIN).get("/metrics").content.decode()
    assert 'portal_celery_tasks_total{outcome="success",task="portal.ping"}' in body
    assert 'portal_celery_task_duration_seconds_count{task="portal.ping"}' in body
