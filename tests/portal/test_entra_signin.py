"""Sign-in with Microsoft Entra ID: the real msal library against the local Entra stand-in
over HTTPS, followed step by step with Django's test client (no mocks)."""

from __future__ import annotations

import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from core.roles import Role, user_roles
from core.sessions import AUTHENTICATED_AT_SESSION_KEY, session_authenticated_at
from core.signals import sign_in_denied
from portal import entra as portal_entra
from portal.models import EntraAccount, EntraSession
from tests.entra.standin import ADO_RESOURCE
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

ROLE_VALUES = {
    Role.APPROVER: "Portal.Approver",
    Role.DATA_SCIENTIST: "Portal.DataScientist",
    Role.MANAGER: "Portal.Manager",
    Role.ADMIN: "Portal.Admin",
}
FIRST_CARD = {
    Role.APPROVER: "Waiting for you",
    Role.DATA_SCIENTIST: "Your team's models",
    Role.MANAGER: "Portfolio maturity",
    Role.ADMIN: "Sync health",
}
ANN_OID = "0c3f1a52-5e1c-4f5e-9a38-2b8d1f4c7a10"
BOB_OID = "5d1e7f0a-2b3c-4d5e-8f90-a1b2c3d4e5f6"
OTHER_TENANT = "99999999-9999-9999-9999-999999999999"


def ann(**overrides) -> dict:
    who = {
        "oid": ANN_OID,
        "name": "Ann Approver",
        "preferred_username": "ann@contoso.test",
        "email": "ann.approver@contoso.test",
        "roles": ["Portal.Approver"],
    }
    return {**who, **overrides}


@pytest.fixture
def denied():
    """The sign_in_denied signals sent during the test (reason codes)."""
    seen = []

    def receiver(sender, reason="", **kwargs):
        seen.append(reason)

    sign_in_denied.connect(receiver, weak=False, dispatch_uid="test-entra-denied")
    yield seen
    sign_in_denied.disconnect(dispatch_uid="test-entra-denied")


def start(client, entra, next_url: str | None = None, **query):
    """GET /auth/sign-in/: the portal sends the browser to the stand-in's authorize."""
    params = {**({"next": next_url} if next_url else {}), **query}
    response = client.get(reverse("entra-sign-in"), params)
    assert response.status_code == 302, response.content
    assert response["Location"].startswith(entra.authorization_endpoint + "?")
    return response["Location"]


def sign_in(client, entra, next_url: str | None = None, **who):
    """The whole round trip; returns the callback's response."""
    if who:
        entra.sign_in_as(**who)
    answer = entra.follow(start(client, entra, next_url))
    return client.get(reverse("entra-callback"), answer)


def signed_in_user(client):
    from django.contrib.auth import SESSION_KEY

    pk = client.session.get(SESSION_KEY)
    return get_user_model().objects.get(pk=pk) if pk else None


# HAPPY PATHS --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_each_role_signs_in_through_entra_and_sees_its_home(role, client, entra_on):
    response = sign_in(client, entra_on, **ann(roles=[ROLE_VALUES[role]]))

    assert response.status_code == 302 and response["Location"] == "/"
    user = signed_in_user(client)
    assert user.username == f"entra-{ANN_OID}"
    assert user_roles(user) == {role.value}
    assert not user.has_usable_password()
    home = client.get("/")
    assert home.status_code == 200
    assert escape(FIRST_CARD[role]) in home.content.decode()
    assert client.session[portal_entra.METHOD_SESSION_KEY] == "entra"
    # PKCE, state and nonce went to the authorize endpoint; the ADO resource was asked for
    authorize = entra_on.authorizations[-1]
    assert authorize["nonce"] and authorize["state"]
    assert f"{ADO_RESOURCE}/.default" in authorize["scope"].split()
    assert {"openid", "profile", "offline_access"} <= set(authorize["scope"].split())
    token_request = next(r for r in entra_on.requests if r["path"].endswith("/token"))
    assert token_request["form"]["code_verifier"] == "***"  # sent (masked in the record)


def test_the_sign_in_comes_back_to_the_page_asked_for(client, entra_on):
    response = sign_in(client, entra_on, next_url="/approvals/?tab=mine", **ann())
    assert response["Location"] == "/approvals/?tab=mine"


def test_an_unsafe_next_is_dropped(client, entra_on):
    response = sign_in(client, entra_on, next_url="https://evil.example/steal", **ann())
    assert response["Location"] == "/"


def test_group_mapping_grants_roles(client, entra_on, settings):
    group = "6f0e3c1d-0000-4000-8000-000000000001"
    settings.ENTRA_GROUP_ROLES = {group: Role.MANAGER.value, "not-mine": Role.ADMIN.value}
    sign_in(client, entra_on, **ann(roles=[], groups=[group, "unrelated-group"]))
    assert user_roles(signed_in_user(client)) == {Role.MANAGER.value}


def test_roles_claim_and_groups_add_up(client, entra_on, settings):
    settings.ENTRA_GROUP_ROLES = {"g-admins": Role.ADMIN.value}
    sign_in(
        client, entra_on, **ann(roles=["Portal.Approver", "Portal.Unknown"], groups=["g-admins"])
    )
    assert user_roles(signed_in_user(client)) == {Role.APPROVER.value, Role.ADMIN.value}


def test_auth_time_of_the_id_token_is_the_sessions_sign_in_time(client, entra_on):
    entra_on.sign_in_as(**ann())
    entra_on.auth_time_ago(300)  # Entra's single sign-on: the password was typed 5 minutes ago
    client.get(reverse("entra-callback"), entra_on.follow(start(client, entra_on)))
    request = type("R", (), {"session": client.session})()
    age = timezone.now() - session_authenticated_at(request)
    assert timedelta(seconds=290) <= age <= timedelta(seconds=320)
    assert client.get("/").status_code == 200  # the session itself is new: not timed out


# REFUSALS -----------------------------------------------------------------------------------


def test_a_wrong_state_signs_nobody_in(client, entra_on, denied):
    entra_on.sign_in_as(**ann())
    answer = entra_on.follow(start(client, entra_on))
    answer["state"] = "forged-" + answer["state"]
    response = client.get(reverse("entra-callback"), answer)

    assert response.status_code == 400
    assert "Sign-in failed:" in response.content.decode()
    assert "try again" in response.content.decode().lower()
    assert signed_in_user(client) is None
    assert denied == ["state_mismatch"]
    assert not [r for r in entra_on.requests if r["path"].endswith("/token")]


def test_a_callback_without_a_sign_in_is_refused(client, entra_on):
    response = client.get(reverse("entra-callback"), {"code": "x", "state": "y"})
    assert response.status_code == 400
    assert signed_in_user(client) is None


def test_a_replayed_answer_is_refused(client, entra_on):
    entra_on.sign_in_as(**ann())
    answer = entra_on.follow(start(client, entra_on))
    assert client.get(reverse("entra-callback"), answer).status_code == 302
    client.logout()

    assert client.get(reverse("entra-callback"), answer).status_code == 400  # flow used up
    assert signed_in_user(client) is None


def test_a_replayed_code_under_a_new_sign_in_is_refused_by_entra(client, entra_on, denied):
    entra_on.sign_in_as(**ann())
    first = entra_on.follow(start(client, entra_on))
    assert client.get(reverse("entra-callback"), first).status_code == 302
    client.logout()
    # an attacker starts their own sign-in and feeds it the stolen, already-used code
    second = entra_on.follow(start(client, entra_on))
    response = client.get(
        reverse("entra-callback"), {"code": first["code"], "state": second["state"]}
    )
    assert response.status_code == 400
    assert "invalid_grant" in response.content.decode()
    assert signed_in_user(client) is None
    assert denied == ["token_error"]


def test_an_error_from_entra_is_shown(client, entra_on):
    start_url = start(client, entra_on)
    state = parse_qs(urlsplit(start_url).query)["state"][0]
    response = client.get(
        reverse("entra-callback"),
        {
            "error": "access_denied",
            "error_description": "AADSTS65004: User declined.",
            "state": state,
        },
    )
    assert response.status_code == 400
    assert "AADSTS65004: User declined." in response.content.decode()


def test_an_expired_id_token_is_refused(client, entra_on, monkeypatch, denied):
    monkeypatch.setattr("tests.entra.standin.ID_TOKEN_LIFETIME", -3600)
    response = sign_in(client, entra_on, **ann())
    assert response.status_code == 400
    assert "expired" in response.content.decode()
    assert signed_in_user(client) is None
    assert denied == ["expired_token"]


def test_an_account_of_another_tenant_is_refused(client, entra_on, denied):
    response = sign_in(client, entra_on, **ann(tid=OTHER_TENANT))
    assert response.status_code == 400
    assert "another organization" in response.content.decode()
    assert not EntraAccount.objects.exists()
    assert denied == ["wrong_tenant"]


def test_a_disabled_portal_account_is_refused(client, entra_on, denied):
    sign_in(client, entra_on, **ann())
    user = signed_in_user(client)
    client.logout()
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    response = sign_in(client, entra_on, **ann())
    assert response.status_code == 400
    assert signed_in_user(client) is None
    assert denied == ["inactive"]


def test_entra_unreachable_is_a_clear_503(client, entra_on, settings):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.ENTRA_AUTHORITY = f"https://127.0.0.1:{port}/{entra_on.tenant_id}"
    settings.ENTRA_TIMEOUT_SECONDS = 2
    response = client.get(reverse("entra-sign-in"))
    assert response.status_code == 503
    assert "could not be reached" in response.content.decode()


def test_sign_in_is_404_while_entra_is_not_configured(client):
    assert client.get(reverse("entra-sign-in")).status_code == 404
    assert client.get(reverse("entra-callback")).status_code == 404


# ROLES --------------------------------------------------------------------------------------


def test_no_mapped_role_gets_the_no_role_page_and_nothing_else(client, entra_on, denied, settings):
    settings.PORTAL_ROLE_CONTACT = "the MLOps platform team"
    response = sign_in(client, entra_on, next_url="/approvals/", **ann(roles=["Something.Else"]))

    assert response["Location"] == reverse("home")
    page = client.get("/")
    assert page.status_code == 403
    text = page.content.decode()
    assert "have no role yet" in text
    assert "the MLOps platform team" in text and "Portal.Approver" in text
    assert client.get("/approvals/").status_code == 403
    assert client.get(reverse("registry:model-list")).status_code == 403
    assert client.get("/api/v1/me").status_code == 403
    assert denied == ["no_role"]


def test_a_role_removed_in_entra_is_gone_at_the_next_sign_in(client, entra_on):
    sign_in(client, entra_on, **ann(roles=["Portal.Approver", "Portal.Manager"]))
    user = signed_in_user(client)
    assert user_roles(user) == {Role.APPROVER.value, Role.MANAGER.value}
    user.groups.create(name="some-other-group")  # not a role: left alone
    client.post(reverse("logout"))

    sign_in(client, entra_on, **ann(roles=["Portal.Manager"]))
    again = signed_in_user(client)
    assert again.pk == user.pk
    assert user_roles(get_user_model().objects.get(pk=user.pk)) == {Role.MANAGER.value}
    assert again.groups.filter(name="some-other-group").exists()
    assert client.get("/approvals/audit/").status_code == 200  # managers read the audit
    assert EntraAccount.objects.get(user=user).roles_from_entra == [Role.MANAGER.value]

    client.post(reverse("logout"))
    sign_in(client, entra_on, **ann(roles=[]))
    assert user_roles(get_user_model().objects.get(pk=user.pk)) == frozenset()
    assert client.get("/approvals/audit/").status_code == 403


# MATCHING -----------------------------------------------------------------------------------


def test_users_are_matched_by_object_id_never_by_email(client, entra_on):
    sign_in(client, entra_on, **ann())
    first = signed_in_user(client)
    client.post(reverse("logout"))

    # someone else with the same e-mail address: another person, another portal user
    sign_in(client, entra_on, **ann(oid=BOB_OID, name="Bob Impostor"))
    second = signed_in_user(client)
    assert second.pk != first.pk
    assert second.username == f"entra-{BOB_OID}"
    client.post(reverse("logout"))

    # Ann's e-mail, name and user name change in Entra: still Ann, updated
    sign_in(
        client,
        entra_on,
        **ann(
            name="Ann Married-Name",
            email="ann.mn@contoso.test",
            preferred_username="ann.mn@contoso.test",
        ),
    )
    third = signed_in_user(client)
    assert third.pk == first.pk
    assert (third.first_name, third.last_name, third.email) == (
        "Ann",
        "Married-Name",
        "ann.mn@contoso.test",
    )
    account = EntraAccount.objects.get(user=third)
    assert (account.tenant_id, account.object_id) == (entra_on.tenant_id, ANN_OID)
    assert account.preferred_username == "ann.mn@contoso.test"
    assert EntraAccount.objects.count() == 2


def test_a_local_user_with_the_same_email_is_not_taken_over(client, entra_on, make_user):
    local = make_user(Role.ADMIN, username="ann", email="ann.approver@contoso.test")
    sign_in(client, entra_on, **ann())
    user = signed_in_user(client)
    assert user.pk != local.pk
    assert user_roles(user) == {Role.APPROVER.value}


def test_same_object_id_in_another_tenant_is_another_user(client, entra_on, settings):
    settings.ENTRA_TENANT_ID = "organizations"  # a multi-tenant registration
    sign_in(client, entra_on, **ann())
    first = signed_in_user(client)
    client.post(reverse("logout"))
    sign_in(client, entra_on, **ann(tid=OTHER_TENANT))
    second = signed_in_user(client)
    assert second.pk != first.pk
    assert second.username == f"entra-{OTHER_TENANT}-{ANN_OID}"


# DELEGATED AZURE DEVOPS TOKEN ---------------------------------------------------------------


def test_the_token_cache_is_kept_encrypted_for_the_worker(client, entra_on):
    sign_in(client, entra_on, **ann())
    account = EntraAccount.objects.get(user=signed_in_user(client))
    assert account.token_cache and account.home_account_id
    assert "rt." not in account.token_cache and "RefreshToken" not in account.token_cache
    session = dict(client.session.items())
    assert "portal_entra_flows" not in session  # the used flow is gone
    assert not any("token" in key for key in session)  # tokens live server-side, encrypted


def test_delegated_ado_token_from_the_cache_then_refreshed_silently(client, entra_on):
    sign_in(client, entra_on, **ann())
    user = signed_in_user(client)
    issued_at_sign_in = entra_on.issued[-1]["access_token"]

    token = portal_entra.delegated_ado_token(user)
    assert token == issued_at_sign_in  # straight from the cache, no new request
    claims = entra_on.decode(token, audience=ADO_RESOURCE)
    assert (claims["oid"], claims["upn"]) == (ANN_OID, "ann@contoso.test")
    grants = [i["grant_type"] for i in entra_on.issued]
    assert grants == ["authorization_code"]

    # the cached access token expires: the refresh token gets a new one, saved for next time
    client.post(reverse("logout"))
    entra_on.expire_access_tokens()
    sign_in(client, entra_on, **ann())
    entra_on.access_token_lifetime = 3600
    before = EntraAccount.objects.get(user=user).token_cache
    refreshed = portal_entra.delegated_ado_token(user.pk)
    assert refreshed and refreshed != entra_on.issued[-2]["access_token"]
    assert entra_on.issued[-1]["grant_type"] == "refresh_token"
    assert entra_on.decode(refreshed, audience=ADO_RESOURCE)["oid"] == ANN_OID
    assert EntraAccount.objects.get(user=user).token_cache != before
    assert portal_entra.delegated_ado_token(user) == refreshed  # cached now


def test_delegated_ado_token_is_none_once_the_refresh_token_is_revoked(client, entra_on):
    entra_on.expire_access_tokens()
    sign_in(client, entra_on, **ann())
    user = signed_in_user(client)
    entra_on.revoke_refresh_tokens()
    assert portal_entra.delegated_ado_token(user) is None


def test_delegated_ado_token_is_none_when_entra_is_unreachable(client, entra_on):
    entra_on.expire_access_tokens()
    sign_in(client, entra_on, **ann())
    user = signed_in_user(client)
    entra_on.stop()
    assert portal_entra.delegated_ado_token(user) is None


def test_delegated_ado_token_is_none_without_an_entra_sign_in(entra_on, make_user):
    assert portal_entra.delegated_ado_token(make_user(Role.APPROVER)) is None
    assert portal_entra.delegated_ado_token(None) is None


# FRESH SIGN-IN FOR PROD ---------------------------------------------------------------------


def _make_stale(client):
    session = client.session
    session[AUTHENTICATED_AT_SESSION_KEY] = (timezone.now() - timedelta(minutes=20)).isoformat()
    session.save()


def test_a_prod_decision_sends_the_user_through_entra_again_and_back(client, entra_on):
    from tests.approvals.factories import ApprovalRequestFactory
    from tests.pipelines.factories import RunStageFactory

    approval = ApprovalRequestFactory(environment_name="PROD")
    RunStageFactory(run=approval.run, environment="QA", name="QA", order=0)  # QA went first
    detail = reverse("approvals:detail", kwargs={"pk": approval.pk})
    sign_in(client, entra_on, **ann())
    user = signed_in_user(client)
    _make_stale(client)
    assert 'data-testid="reauth-needed"' in client.get(detail).content.decode()

    decide = client.post(
        reverse("approvals:decide", kwargs={"pk": approval.pk}), {"status": "approved"}
    )
    assert decide.status_code == 302 and decide["Location"].startswith(reverse("reauthenticate"))
    to_entra = client.get(decide["Location"])
    assert to_entra.status_code == 302
    assert to_entra["Location"].startswith(reverse("entra-sign-in"))
    authorize = client.get(to_entra["Location"])
    query = parse_qs(urlsplit(authorize["Location"]).query)
    assert query["max_age"] == ["0"] and query["prompt"] == ["login"]
    assert query["login_hint"] == ["ann@contoso.test"]

    back = client.get(reverse("entra-callback"), entra_on.follow(authorize["Location"]))
    assert back.status_code == 302 and back["Location"] == detail
    assert entra_on.authorizations[-1]["fresh_sign_in"] is True
    assert signed_in_user(client).pk == user.pk
    request = type("R", (), {"session": client.session})()
    assert timezone.now() - session_authenticated_at(request) < timedelta(minutes=1)
    assert 'data-testid="reauth-needed"' not in client.get(detail).content.decode()


def test_a_stale_auth_time_fails_the_fresh_sign_in(client, entra_on, denied):
    sign_in(client, entra_on, **ann())
    user = signed_in_user(client)
    _make_stale(client)
    to_entra = client.get(reverse("reauthenticate"), {"next": "/approvals/"})
    authorize = client.get(to_entra["Location"])
    entra_on.auth_time_ago(3600)  # Entra answers with an old sign-in despite max_age=0
    response = client.get(reverse("entra-callback"), entra_on.follow(authorize["Location"]))

    assert response.status_code == 400
    assert "fresh sign-in" in response.content.decode()
    assert denied == ["stale_sign_in"]
    assert signed_in_user(client).pk == user.pk  # still signed in, still not fresh
    request = type("R", (), {"session": client.session})()
    assert timezone.now() - session_authenticated_at(request) > timedelta(minutes=15)


def test_confirming_as_someone_else_is_refused(client, entra_on, denied):
    sign_in(client, entra_on, **ann())
    user = signed_in_user(client)
    to_entra = client.get(reverse("reauthenticate"), {"next": "/approvals/"})
    authorize = client.get(to_entra["Location"])
    entra_on.sign_in_as(**ann(oid=BOB_OID, name="Bob Other", preferred_username="bob@contoso.test"))
    response = client.get(reverse("entra-callback"), entra_on.follow(authorize["Location"]))
    assert response.status_code == 400
    assert signed_in_user(client).pk == user.pk
    assert denied == ["different_account"]


def test_local_users_still_confirm_with_their_password(client, entra_on, make_user):
    user = make_user(Role.APPROVER)
    client.force_login(user)
    page = client.get(reverse("reauthenticate"), {"next": "/approvals/"})
    assert page.status_code == 200 and b'name="password"' in page.content
    done = client.post(
        reverse("reauthenticate"), {"password": TEST_PASSWORD, "next": "/approvals/"}
    )
    assert done.status_code == 302 and done["Location"] == "/approvals/"


# SIGN-OUT -----------------------------------------------------------------------------------


def test_sign_out_ends_the_session_and_goes_to_the_end_session_endpoint(client, entra_on):
    sign_in(client, entra_on, **ann())
    response = client.post(reverse("logout"))

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert response["Location"].startswith(entra_on.end_session_endpoint + "?")
    assert parse_qs(location.query)["post_logout_redirect_uri"] == [
        "http://testserver" + reverse("login")
    ]
    assert signed_in_user(client) is None
    assert client.get("/").status_code == 302  # to the sign-in page
    with entra_on.http_session() as http:
        assert http.get(response["Location"], timeout=10).status_code == 200
    assert entra_on.logouts[-1]["post_logout_redirect_uri"] == "http://testserver/accounts/login/"
    assert not EntraSession.objects.exists()


def test_local_sign_out_stays_local(client, entra_on, make_user):
    client.force_login(make_user(Role.APPROVER))
    response = client.post(reverse("logout"))
    assert response["Location"] == reverse("login")


def test_front_channel_logout_ends_the_sessions_of_that_entra_session(client, entra_on):
    from django.test import Client

    sign_in(client, entra_on, **ann())
    sid = EntraSession.objects.get().sid
    response = Client().get(reverse("entra-front-channel-logout"), {"sid": sid})
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    assert signed_in_user(client) is None
    assert client.get("/").status_code == 302


# THE SIGN-IN PAGE AND LOCAL ACCOUNTS --------------------------------------------------------


def test_login_page_offers_microsoft_and_passwords(client, entra_on):
    page = client.get(reverse("login") + "?next=/approvals/").content.decode()
    assert "Sign in with Microsoft" in page
    assert reverse("entra-sign-in") + "?next=%2Fapprovals%2F" in page
    assert 'name="password"' in page


def test_login_page_without_entra_is_the_local_form_only(client):
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with Microsoft" not in page
    assert 'name="password"' in page


def test_local_accounts_switched_off(client, entra_on, settings, make_user):
    settings.LOCAL_ACCOUNTS_ENABLED = False
    make_user(Role.ADMIN, username="oscar")
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with Microsoft" in page and 'name="password"' not in page

    refused = client.post(reverse("login"), {"username": "oscar", "password": TEST_PASSWORD})
    assert refused.status_code == 403
    assert signed_in_user(client) is None
    assert "switched off" in refused.content.decode()

    # Entra sign-in still works, and confirming goes through Entra even for a local session
    sign_in(client, entra_on, **ann())
    assert signed_in_user(client).username == f"entra-{ANN_OID}"
    client.force_login(get_user_model().objects.get(username="oscar"))
    to_entra = client.get(reverse("reauthenticate"), {"next": "/"})
    assert to_entra["Location"].startswith(reverse("entra-sign-in"))


def test_local_accounts_stay_when_entra_is_unset(client, settings, make_user):
    settings.LOCAL_ACCOUNTS_ENABLED = False  # ignored: nobody could sign in otherwise
    make_user(Role.ADMIN, username="oscar")
    response = client.post(reverse("login"), {"username": "oscar", "password": TEST_PASSWORD})
    assert response.status_code == 302
