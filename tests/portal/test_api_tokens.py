"""Portal API tokens: made on the user's page (shown once, kept hashed), scoped, expiring,
revocable; used as ``Authorization: Bearer``; every make, revoke, use (once a minute) and
refused use in the audit trail; writes rate-limited per user and per token (429)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.models import AuditAction, AuditEvent
from core.roles import Role
from portal import api_tokens
from portal.models import ApiToken
from tests.maturity.factories import set_maturity
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db

REASON = "Retraining on new data runs in Databricks workflows the portal cannot see."


def bearer(raw: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def make_token(user, scope="read", days=None):
    return api_tokens.token_create(user=user, name="report script", scope=scope, days=days)


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("at", "pk"))


@pytest.fixture
def model(db):
    catalog_model = CatalogModelFactory(name="fraud-detector")
    set_maturity(catalog_model, assessed=2)
    return catalog_model


def declare(client, name="fraud-detector"):
    return client.post(
        f"/api/v1/maturity/models/{name}/declaration/",
        {"level": 3, "reason": REASON},
        format="json",
    )


# --- The page --------------------------------------------------------------------------------


def test_the_page_makes_a_token_shows_it_once_and_keeps_only_its_hash(role_client):
    client = role_client(Role.DATA_SCIENTIST)
    page = client.get(reverse("api-tokens"))
    assert page.status_code == 200 and b"No tokens yet" in page.content
    assert b'data-testid="api-tokens-link"' in page.content  # in the user menu

    made = client.post(reverse("api-tokens"), {"name": "nightly", "scope": "read", "days": 7})
    assert made.status_code == 200
    raw = made.context["created"]["raw"]
    assert raw.startswith("mlpt_") and raw.encode() in made.content
    assert "no-store" in made["Cache-Control"] or "no-cache" in made["Cache-Control"]
    token = ApiToken.objects.get()
    assert token.digest == api_tokens.digest_of(raw) and raw not in (token.digest, token.key_id)
    assert token.expires_at - timezone.now() > timedelta(days=6, hours=23)

    again = client.get(reverse("api-tokens"))
    assert raw.encode() not in again.content  # shown once
    assert token.key_id.encode() in again.content and b"nightly" in again.content
    (created,) = events(AuditAction.API_TOKEN_CREATED)
    assert created.detail["token_id"] == token.key_id and raw not in str(created.detail)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "scope": "read", "days": 7}, "name"),
        ({"name": "x", "scope": "admin", "days": 7}, "scope"),
        ({"name": "x", "scope": "read", "days": 0}, "days"),
        ({"name": "x", "scope": "read", "days": 366}, "days"),
        ({"name": "x", "scope": "read", "days": "soon"}, "days"),
    ],
)
def test_a_bad_request_is_a_400_with_the_field_said(role_client, body, field):
    response = role_client(Role.MANAGER).post(reverse("api-tokens"), body)
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert not ApiToken.objects.exists()


def test_the_longest_lifetime_is_a_setting(role_client, settings):
    settings.PORTAL_API_TOKEN_MAX_DAYS = 10
    client = role_client(Role.MANAGER)
    assert (
        client.post(reverse("api-tokens"), {"name": "x", "scope": "read", "days": 11}).status_code
        == 400
    )
    assert (
        client.post(reverse("api-tokens"), {"name": "x", "scope": "read", "days": 10}).status_code
        == 200
    )


def test_the_page_needs_a_role_and_its_forms_the_csrf_token(client, make_user, role_client):
    assert client.get(reverse("api-tokens")).status_code in (302, 403)
    client.force_login(make_user())  # no role
    assert client.get(reverse("api-tokens")).status_code == 403
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user(Role.APPROVER))
    assert (
        strict.post(reverse("api-tokens"), {"name": "x", "scope": "read", "days": 1}).status_code
        == 403
    )


def test_revoking_on_the_page_refuses_the_token_from_then_on(role_client, make_user):
    client = role_client(Role.APPROVER)
    user = client.get(reverse("api-tokens")).context["user"]
    token, raw = make_token(user)
    assert bearer(raw).get("/api/v1/me").status_code == 200

    response = client.post(reverse("api-token-revoke", kwargs={"pk": token.pk}))
    assert response.status_code == 302
    refused = bearer(raw).get("/api/v1/me")
    assert refused.status_code == 401
    body = refused.json()
    assert body["code"] == "revoked" and "revoked" in body["detail"]
    assert set(body) == {"detail", "code", "request_id"}
    assert refused["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    (revoked,) = events(AuditAction.API_TOKEN_REVOKED)
    assert revoked.actor_id == user.pk and revoked.detail["token_id"] == token.key_id
    (refusal,) = events(AuditAction.API_ACCESS_REFUSED)
    assert refusal.detail["reason"] == "revoked" and refusal.detail["token_id"] == token.key_id
    assert refusal.detail["ip"] == "127.0.0.1" and refusal.detail["path"] == "/api/v1/me"


def test_nobody_revokes_someone_elses_token(role_client, make_user):
    token, raw = make_token(make_user(Role.MANAGER))
    response = role_client(Role.ADMIN).post(reverse("api-token-revoke", kwargs={"pk": token.pk}))
    assert response.status_code == 404
    assert bearer(raw).get("/api/v1/me").status_code == 200


# --- Using a token ---------------------------------------------------------------------------


def test_a_token_acts_as_its_owner_with_the_owners_roles(make_user):
    owner = make_user(Role.APPROVER, username="ana")
    _token, raw = make_token(owner)
    me = bearer(raw).get("/api/v1/me")
    assert me.status_code == 200 and me.json()["username"] == "ana"
    assert me.json()["roles"] == ["approver"]
    assert bearer(raw).get("/api/v1/approvals/audit/").status_code == 200
    # what the owner may not read, the token may not either
    data_scientist_token = make_token(make_user(Role.DATA_SCIENTIST))[1]
    assert bearer(data_scientist_token).get("/api/v1/approvals/audit/").status_code == 403


def test_a_use_is_recorded_at_most_once_a_minute(make_user):
    token, raw = make_token(make_user(Role.MANAGER))
    for _ in range(3):
        assert bearer(raw).get("/api/v1/me").status_code == 200
    token.refresh_from_db()
    assert token.last_used_ip == "127.0.0.1" and token.last_used_at is not None
    (used,) = events(AuditAction.API_ACCESS)
    assert used.detail["token_id"] == token.key_id and used.detail["ip"] == "127.0.0.1"
    # a minute later it is recorded again
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(seconds=61))
    bearer(raw).get("/api/v1/me")
    assert len(events(AuditAction.API_ACCESS)) == 2


def test_an_expired_token_is_refused_and_audited(make_user):
    token, raw = make_token(make_user(Role.MANAGER))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(raw).get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "expired" and "expired" in response.json()["detail"]
    (refusal,) = events(AuditAction.API_ACCESS_REFUSED)
    assert refusal.detail["reason"] == "expired"
    bearer(raw).get("/api/v1/me")  # the same refusal again within the minute: one row
    assert len(events(AuditAction.API_ACCESS_REFUSED)) == 1


def test_an_unknown_or_garbled_token_is_a_401_never_a_500(make_user):
    for raw in ("mlpt_not-a-token", "mlpt_", "eyJhbGciOiJub25lIn0.e30.", "justjunk"):
        response = bearer(raw).get("/api/v1/me")
        assert response.status_code == 401, raw
        assert set(response.json()) == {"detail", "code", "request_id"}


def test_an_inactive_owners_token_is_refused(make_user):
    owner = make_user(Role.MANAGER)
    _token, raw = make_token(owner)
    owner.is_active = False
    owner.save()
    response = bearer(raw).get("/api/v1/me")
    assert response.status_code == 401 and response.json()["code"] == "inactive"


def test_no_token_no_session_stays_a_403():
    response = APIClient().get("/api/v1/me")
    assert response.status_code == 403


# --- Scope -----------------------------------------------------------------------------------


def test_a_read_token_cannot_write_a_write_token_writes_what_the_role_allows(make_user, model):
    manager = make_user(Role.MANAGER)
    read = make_token(manager, scope="read")[1]
    response = declare(bearer(read))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    write = make_token(manager, scope="write")[1]
    assert declare(bearer(write)).status_code == 201  # no CSRF token needed with a token
    # a write token of someone whose role does not allow it
    other = make_token(make_user(Role.DATA_SCIENTIST), scope="write")[1]
    assert declare(bearer(other)).json()["code"] == "not_manager"


# --- Rate limits -----------------------------------------------------------------------------


def test_writes_are_limited_per_token_with_429_and_retry_after(make_user, model, settings):
    settings.PORTAL_API_WRITE_RATE_PER_TOKEN = "2/minute"
    settings.PORTAL_API_WRITE_RATE_PER_USER = "100/minute"
    manager = make_user(Role.MANAGER)
    first, second = make_token(manager, scope="write")[1], make_token(manager, scope="write")[1]
    assert [declare(bearer(first)).status_code for _ in range(2)] == [201, 409]
    limited = declare(bearer(first))
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    body = limited.json()
    assert set(body) == {"detail", "code", "request_id"} and body["code"] == "throttled"
    assert "try again in" in body["detail"]
    assert declare(bearer(second)).status_code != 429  # another token of the same owner
    assert bearer(first).get("/api/v1/me").status_code == 200  # reads are not limited


def test_writes_are_limited_per_user_across_tokens_and_the_session(make_user, model, settings):
    settings.PORTAL_API_WRITE_RATE_PER_TOKEN = "100/minute"
    settings.PORTAL_API_WRITE_RATE_PER_USER = "2/minute"
    manager = make_user(Role.MANAGER)
    declare(bearer(make_token(manager, scope="write")[1]))
    declare(bearer(make_token(manager, scope="write")[1]))
    session = APIClient()
    session.force_login(manager)
    assert declare(session).status_code == 429
    other = APIClient()
    other.force_login(make_user(Role.MANAGER))
    assert declare(other).status_code != 429


# --- The admin -------------------------------------------------------------------------------


def test_the_admin_lists_makes_and_revokes_tokens(role_client, make_user):
    owner = make_user(Role.DATA_SCIENTIST, username="dana")
    token, raw = make_token(owner)
    admin = role_client(Role.ADMIN)
    listing = admin.get(reverse("admin:portal_apitoken_changelist"))
    assert listing.status_code == 200 and token.key_id.encode() in listing.content

    made = admin.post(
        reverse("admin:portal_apitoken_add"),
        {"user": owner.pk, "name": "for dana's job", "scope": "write", "days": 3},
    )
    assert made.status_code == 200, made.content[:2000]
    new_raw = made.context["raw"]
    assert new_raw.encode() in made.content and "no-store" in made["Cache-Control"]
    new = ApiToken.objects.get(digest=api_tokens.digest_of(new_raw))
    assert (new.user, new.scope, new.created_by.username) == (
        owner,
        "write",
        admin.get("/api/v1/me").json()["username"],
    )
    assert bearer(new_raw).get("/api/v1/me").json()["username"] == "dana"

    admin.post(
        reverse("admin:portal_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert bearer(raw).get("/api/v1/me").status_code == 401
    assert len(events(AuditAction.API_TOKEN_CREATED)) == 2
    assert events(AuditAction.API_TOKEN_REVOKED)[0].detail["owner"] == "dana"
