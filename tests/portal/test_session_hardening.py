"""Session hardening: the idle (30 min) and absolute (8 h) limits of a signed-in session, what
an expired session answers (a redirect with next=, 401 JSON for the API, HX-Redirect for htmx),
the paths that are not user activity, secure cookies in production, and the audit rows of
sign-ins, sign-outs and refused attempts. Real sign-ins through the sign-in page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.utils import timezone

from approvals.models import AuditAction, AuditEvent
from core.sessions import AUTHENTICATED_AT_SESSION_KEY
from core.signals import sign_in_denied
from portal.middleware import SessionTimeoutMiddleware
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

IDLE = SessionTimeoutMiddleware.LAST_ACTIVITY_KEY
STARTED = SessionTimeoutMiddleware.STARTED_KEY


@pytest.fixture
def alice(make_user):
    return make_user("approver", username="alice", first_name="Alice", last_name="Approver")


@pytest.fixture
def signed_in(client, alice):
    """Alice signed in through the sign-in page, as a browser does."""
    response = client.post("/accounts/login/", {"username": "alice", "password": TEST_PASSWORD})
    assert response.status_code == 302, response.content
    assert client.get("/").status_code == 200
    return client


def set_session(client, **values) -> None:
    session = client.session
    for key, value in values.items():
        session[key] = value
    session.save()


def is_signed_in(client) -> bool:
    return SESSION_KEY in client.session


def sign_outs(user) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.SIGN_OUT, actor_id=user.pk))


# Idle and absolute limits ---------------------------------------------------------------------


def test_the_defaults_are_30_minutes_idle_and_8_hours_absolute():
    assert django_settings.SESSION_IDLE_TIMEOUT_SECONDS == 1800
    assert django_settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS == 8 * 3600
    assert "portal.middleware.SessionTimeoutMiddleware" in django_settings.MIDDLEWARE
    order = django_settings.MIDDLEWARE
    assert order.index("portal.middleware.SessionTimeoutMiddleware") > order.index(
        "django.contrib.auth.middleware.AuthenticationMiddleware"
    )


def test_a_session_idle_for_over_30_minutes_is_signed_out_and_sent_to_sign_in(signed_in, alice):
    set_session(signed_in, **{IDLE: int(time.time()) - 1801})
    response = signed_in.get("/approvals/?environment=QA")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/approvals/%3Fenvironment%3DQA"
    assert not is_signed_in(signed_in)
    [row] = sign_outs(alice)
    assert row.detail["reason"] == "idle_timeout" and row.detail["method"] == "local"
    assert row.actor_name == "Alice Approver" and row.request_id == response["X-Request-ID"]
    page = signed_in.get(response["Location"])
    assert "signed out after 30 minutes without activity" in page.content.decode()


def test_activity_within_30_minutes_keeps_the_session_and_is_recorded(signed_in, alice):
    set_session(signed_in, **{IDLE: int(time.time()) - 1790})
    assert signed_in.get("/approvals/").status_code == 200
    assert is_signed_in(signed_in)
    assert time.time() - signed_in.session[IDLE] < 5  # the request counted as activity
    assert sign_outs(alice) == []


def test_activity_is_written_at_most_once_a_minute(signed_in):
    recent = int(time.time()) - 20
    set_session(signed_in, **{IDLE: recent})
    signed_in.get("/approvals/")
    assert signed_in.session[IDLE] == recent


def test_a_session_older_than_8_hours_ends_however_active(signed_in, alice):
    nine_hours_ago = timezone.now() - timedelta(hours=8, seconds=5)
    set_session(
        signed_in,
        **{IDLE: int(time.time()) - 10, AUTHENTICATED_AT_SESSION_KEY: nine_hours_ago.isoformat()},
    )
    response = signed_in.get("/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/"
    assert not is_signed_in(signed_in)
    [row] = sign_outs(alice)
    assert row.detail["reason"] == "absolute_timeout"
    assert "maximum length" in row.message


def test_just_under_8_hours_is_still_fine(signed_in):
    started = timezone.now() - timedelta(hours=7, minutes=59)
    set_session(signed_in, **{AUTHENTICATED_AT_SESSION_KEY: started.isoformat()})
    assert signed_in.get("/").status_code == 200 and is_signed_in(signed_in)


def test_an_old_single_sign_on_time_does_not_end_a_session_that_just_began(signed_in):
    """Entra may report an auth_time hours old (single sign-on); the session's own start,
    which the Entra sign-in records, is the later one and counts."""
    set_session(
        signed_in,
        **{
            AUTHENTICATED_AT_SESSION_KEY: (timezone.now() - timedelta(hours=20)).isoformat(),
            STARTED: int(time.time()) - 60,
        },
    )
    assert signed_in.get("/").status_code == 200 and is_signed_in(signed_in)
    set_session(signed_in, **{STARTED: int(time.time()) - 8 * 3600 - 5})
    assert signed_in.get("/").status_code == 302 and not is_signed_in(signed_in)


def test_a_session_with_no_recorded_sign_in_time_counts_from_its_first_request(client, alice):
    client.force_login(alice)
    set_session(client, **{AUTHENTICATED_AT_SESSION_KEY: None})
    assert client.get("/").status_code == 200
    assert abs(client.session[STARTED] - time.time()) < 5


def test_the_api_answers_401_json_when_the_session_has_expired(signed_in, alice):
    assert signed_in.get("/api/v1/me").status_code == 200
    set_session(signed_in, **{IDLE: int(time.time()) - 3600})
    response = signed_in.get("/api/v1/me")
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "session_expired" and body["reason"] == "idle_timeout"
    assert body["request_id"] == response["X-Request-ID"]
    assert not is_signed_in(signed_in)
    assert signed_in.get("/api/v1/me").status_code in (401, 403)  # plainly signed out now


def test_htmx_is_told_to_load_the_sign_in_page_coming_back_to_the_page_it_was_on(signed_in):
    set_session(signed_in, **{IDLE: int(time.time()) - 3600})
    response = signed_in.post(
        "/approvals/1/decide/",
        {"status": "approved"},
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "http://testserver/approvals/1/?tab=evidence",
        },
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/approvals/1/%3Ftab%3Devidence"
    assert not is_signed_in(signed_in)


def test_a_form_posted_after_expiry_comes_back_to_the_page_it_was_posted_from(signed_in):
    set_session(signed_in, **{IDLE: int(time.time()) - 3600})
    response = signed_in.post(
        "/approvals/7/decide/", {"status": "approved"}, headers={"Referer": "https://evil.test/x"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/approvals/7/decide/"


def test_the_sign_in_page_with_an_expired_session_shows_the_form(signed_in, alice):
    set_session(signed_in, **{IDLE: int(time.time()) - 3600})
    response = signed_in.get("/accounts/login/")
    assert response.status_code == 200 and b'name="password"' in response.content
    assert not is_signed_in(signed_in)
    assert len(sign_outs(alice)) == 1


# Paths that are not user activity -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_neither_end_nor_refresh_a_session(signed_in, path):
    stale = int(time.time()) - 3600
    set_session(signed_in, **{IDLE: stale})
    assert signed_in.get(path).status_code in (200, 503)
    assert is_signed_in(signed_in) and signed_in.session[IDLE] == stale


def test_metrics_neither_end_nor_refresh_a_session(client, make_user):
    oscar = make_user("admin", username="oscar")
    response = client.post("/accounts/login/", {"username": "oscar", "password": TEST_PASSWORD})
    assert response.status_code == 302
    stale = int(time.time()) - 3600
    set_session(client, **{IDLE: stale})
    assert client.get("/metrics").status_code == 200
    assert is_signed_in(client) and client.session[IDLE] == stale
    assert sign_outs(oscar) == []


@pytest.mark.parametrize(
    "path", ["/pipelines/hooks/ado/mlops/", "/registry/webhooks/mlflow/default/"]
)
def test_hook_endpoints_neither_end_nor_refresh_a_session(signed_in, path):
    stale = int(time.time()) - 3600
    set_session(signed_in, **{IDLE: stale})
    signed_in.post(path, data="{}", content_type="application/json")
    assert is_signed_in(signed_in) and signed_in.session[IDLE] == stale


def test_anonymous_requests_are_left_alone(client):
    assert client.get("/").status_code == 302
    assert IDLE not in client.session


# Production cookies -------------------------------------------------------------------------


def test_production_cookies_are_secure_http_only_and_host_bound():
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "TEST_", "SESSION_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings.production",
        DJANGO_SECRET_KEY="a-production-like-secret-key-that-is-long-and-random-4f9e2c1b7a",
        DJANGO_ALLOWED_HOSTS="portal.example.com",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ('SESSION_COOKIE_SECURE', "
        "'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_NAME', "
        "'CSRF_COOKIE_NAME', 'SESSION_ENGINE', 'SESSION_IDLE_TIMEOUT_SECONDS', "
        "'SESSION_ABSOLUTE_TIMEOUT_SECONDS', 'SESSION_COOKIE_AGE', 'SESSION_COOKIE_SAMESITE')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["SESSION_COOKIE_SECURE"] is True and shown["CSRF_COOKIE_SECURE"] is True
    assert shown["SESSION_COOKIE_HTTPONLY"] is True and shown["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert shown["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert shown["CSRF_COOKIE_NAME"].startswith("__Host-")
    # Server-side sessions: the MSAL token cache never travels in a cookie.
    assert shown["SESSION_ENGINE"] == "django.contrib.sessions.backends.db"
    assert shown["SESSION_IDLE_TIMEOUT_SECONDS"] == 1800
    assert shown["SESSION_ABSOLUTE_TIMEOUT_SECONDS"] == shown["SESSION_COOKIE_AGE"] == 28800


# Audit of sign-in, sign-out and refused attempts ----------------------------------------------


def test_a_local_sign_in_is_audited_with_its_request_id(client, alice):
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": TEST_PASSWORD},
        headers={"X-Request-ID": "signin-req-1"},
    )
    assert response.status_code == 302
    [row] = AuditEvent.objects.filter(action=AuditAction.SIGN_IN)
    assert row.actor_id == alice.pk and row.actor_name == "Alice Approver"
    assert row.request_id == "signin-req-1"
    assert row.detail["method"] == "local" and row.detail["reason"] == "sign_in"
    assert row.detail["ip"] == "127.0.0.1" and row.approval_id is None


def test_a_sign_out_is_audited(signed_in, alice):
    response = signed_in.post("/accounts/logout/", headers={"X-Request-ID": "signout-req"})
    assert response.status_code == 302 and not is_signed_in(signed_in)
    [row] = sign_outs(alice)
    assert row.detail["reason"] == "signed_out" and row.request_id == "signout-req"
    assert row.message == "Signed out"


def test_confirming_the_password_is_audited_as_a_reauthentication(signed_in, alice):
    response = signed_in.post("/accounts/reauthenticate/?next=/", {"password": TEST_PASSWORD})
    assert response.status_code == 302
    rows = list(AuditEvent.objects.filter(action=AuditAction.SIGN_IN).order_by("pk"))
    assert [r.detail["reason"] for r in rows] == ["sign_in", "reauthenticate"]


def test_a_wrong_password_is_audited_without_the_password(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "not-it-at-all"})
    assert response.status_code == 200 and not is_signed_in(client)
    [row] = AuditEvent.objects.filter(action=AuditAction.SIGN_IN_DENIED)
    assert row.actor_id == alice.pk
    assert row.detail["method"] == "local" and row.detail["reason"] == "bad_credentials"
    assert row.detail["known_user"] is True and row.detail["username"] == "alice"
    assert "not-it-at-all" not in json.dumps(row.detail) + row.message


def test_an_unknown_user_name_is_audited_too(client):
    client.post("/accounts/login/", {"username": "mallory", "password": "guess"})
    [row] = AuditEvent.objects.filter(action=AuditAction.SIGN_IN_DENIED)
    assert row.actor_id is None and row.actor_name == "mallory"
    assert row.detail["known_user"] is False


def test_a_wrong_password_when_confirming_is_audited(signed_in, alice):
    signed_in.post("/accounts/reauthenticate/?next=/", {"password": "wrong"})
    [row] = AuditEvent.objects.filter(action=AuditAction.SIGN_IN_DENIED)
    assert row.actor_id == alice.pk


def test_a_refused_entra_sign_in_is_audited_with_safe_claims_only(rf, alice):
    request = rf.get("/auth/callback/", REMOTE_ADDR="10.1.2.3")
    sign_in_denied.send(
        sender=None,
        request=request,
        user=None,
        reason="no_role",
        claims={
            "oid": "0c3f",
            "tid": "1111",
            "name": "Eve Outsider",
            "preferred_username": "eve@contoso.test",
            "nonce": "n-123",
            "access_token": "secret-token",
        },
        method="entra",
    )
    [row] = AuditEvent.objects.filter(action=AuditAction.SIGN_IN_DENIED)
    assert row.actor_id is None and row.actor_name == "Eve Outsider"
    assert row.detail["method"] == "entra" and row.detail["reason"] == "no_role"
    assert row.detail["claims"] == {
        "oid": "0c3f",
        "tid": "1111",
        "name": "Eve Outsider",
        "preferred_username": "eve@contoso.test",
    }
    assert row.detail["ip"] == "10.1.2.3"
    assert "no_role" in row.message


def test_a_refused_entra_sign_in_of_a_known_user_names_them(alice):
    sign_in_denied.send(sender=None, request=None, user=alice, reason="inactive", claims={})
    [row] = AuditEvent.objects.filter(action=AuditAction.SIGN_IN_DENIED)
    assert row.actor_id == alice.pk and row.detail["method"] == "entra"


def test_test_shortcuts_that_sign_in_without_a_request_are_not_audited(client, alice):
    client.force_login(alice)
    client.logout()
    assert not AuditEvent.objects.filter(
        action__in=[AuditAction.SIGN_IN, AuditAction.SIGN_OUT]
    ).exists()
