"""The Entra stand-in, driven by the real msal library over HTTPS (no mocks)."""

from __future__ import annotations

import warnings
from urllib.parse import parse_qsl, urlsplit

import jwt
import msal
import pytest
import requests

from tests.entra.standin import ADO_RESOURCE, EntraStandIn

ADO_SCOPES = [f"{ADO_RESOURCE}/.default"]
REDIRECT_URI = "https://portal.test/auth/callback"
ANN = {
    "oid": "0c3f1a52-5e1c-4f5e-9a38-2b8d1f4c7a10",
    "name": "Ann Approver",
    "preferred_username": "ann@contoso.test",
    "email": "ann.approver@contoso.test",
    "roles": ["Portal.Approver"],
    "groups": ["6f0e3c1d-0000-4000-8000-000000000001"],
}


@pytest.fixture(autouse=True)
def _quiet_form_post_advice():
    # msal advises response_mode=form_post on every query-mode flow; that is a portal choice.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="response_mode='form_post'")
        yield


def make_app(entra: EntraStandIn, **kwargs) -> msal.ConfidentialClientApplication:
    options = {
        "client_credential": entra.client_secret,
        "authority": entra.authority,
        "http_client": entra.http_session(),
        "instance_discovery": False,
        "token_cache": msal.SerializableTokenCache(),
        **kwargs,
    }
    return msal.ConfidentialClientApplication(options.pop("client_id", entra.client_id), **options)


def sign_in(entra, app, *, scopes=ADO_SCOPES, **flow_kwargs):
    flow = app.initiate_auth_code_flow(scopes=scopes, redirect_uri=REDIRECT_URI, **flow_kwargs)
    answer = entra.http_session().get(flow["auth_uri"], allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return flow, dict(parse_qsl(urlsplit(location).query))


def token_grants(entra) -> list[str]:
    return [
        r["form"].get("grant_type")
        for r in entra.requests
        if r["method"] == "POST" and r["path"].endswith("/oauth2/v2.0/token")
    ]


def verify(entra, token: str, audience: str) -> dict:
    """Check a token against the published JWKS, as a resource server would."""
    session = entra.http_session()
    config = session.get(
        f"{entra.authority}/v2.0/.well-known/openid-configuration", timeout=10
    ).json()
    keys = jwt.PyJWKSet.from_dict(session.get(config["jwks_uri"], timeout=10).json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience)


# -- discovery -----------------------------------------------------------------------------


def test_msal_discovers_the_tenant_at_the_v2_metadata_address(entra):
    make_app(entra)
    assert [(r["method"], r["path"]) for r in entra.requests] == [
        ("GET", f"/{entra.tenant_id}/v2.0/.well-known/openid-configuration")
    ]
    config = entra.http_session().get(
        f"{entra.authority}/v2.0/.well-known/openid-configuration", timeout=10
    )
    metadata = config.json()
    assert metadata["issuer"] == f"{entra.authority}/v2.0"
    assert metadata["authorization_endpoint"] == f"{entra.authority}/oauth2/v2.0/authorize"
    assert metadata["token_endpoint"] == f"{entra.authority}/oauth2/v2.0/token"
    assert metadata["end_session_endpoint"] == f"{entra.authority}/oauth2/v2.0/logout"
    assert metadata["jwks_uri"] == f"{entra.authority}/discovery/v2.0/keys"


def test_an_unknown_tenant_fails_discovery(entra, tmp_path):
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        make_app(entra, authority=f"{entra.base_url}/33333333-3333-3333-3333-333333333333")


def test_the_certificate_is_not_trusted_without_the_stand_in_ca(entra):
    session = requests.Session()
    session.trust_env = False  # the system bundle, not the stand-in's CA
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{entra.authority}/v2.0/.well-known/openid-configuration", timeout=10)


# -- happy path ----------------------------------------------------------------------------


def test_sign_in_gets_id_token_claims_and_an_ado_token_then_silent_uses_the_cache(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    flow, query = sign_in(entra, app, max_age=900)
    assert set(query) >= {"code", "state", "session_state", "client_info"}

    result = app.acquire_token_by_auth_code_flow(flow, query)

    assert "error" not in result, result
    claims = result["id_token_claims"]
    assert claims["oid"] == ANN["oid"]
    assert claims["tid"] == entra.tenant_id
    assert claims["name"] == ANN["name"]
    assert claims["preferred_username"] == ANN["preferred_username"]
    assert claims["email"] == ANN["email"]
    assert claims["roles"] == ANN["roles"]
    assert claims["groups"] == ANN["groups"]
    assert claims["aud"] == entra.client_id
    assert claims["iss"] == entra.issuer
    id_claims = verify(entra, result["id_token"], audience=entra.client_id)
    assert id_claims["nonce"] == claims["nonce"]
    assert id_claims["auth_time"] <= id_claims["iat"]

    access = verify(entra, result["access_token"], audience=ADO_RESOURCE)
    assert access["aud"] == ADO_RESOURCE
    assert access["oid"] == ANN["oid"]
    assert access["tid"] == entra.tenant_id
    assert access["upn"] == ANN["preferred_username"]
    assert access["name"] == ANN["name"]
    assert access["scp"] == "user_impersonation"
    assert access["exp"] > access["iat"]
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] > 300

    [account] = app.get_accounts()
    assert account["home_account_id"] == f"{ANN['oid']}.{entra.tenant_id}"
    assert account["username"] == ANN["preferred_username"]
    grants_before = token_grants(entra)
    silent = app.acquire_token_silent(ADO_SCOPES, account=account)
    assert silent["access_token"] == result["access_token"]
    assert silent["token_source"] == "cache"
    assert token_grants(entra) == grants_before == ["authorization_code"]


def test_the_request_log_masks_secrets_and_the_authorize_record_shows_the_decision(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    flow, query = sign_in(entra, app, max_age=900)
    app.acquire_token_by_auth_code_flow(flow, query)

    [authorize] = [r for r in entra.requests if r["path"].endswith("/authorize")]
    assert authorize["query"]["code_challenge_method"] == "S256"
    assert authorize["query"]["max_age"] == "900"
    [token] = [r for r in entra.requests if r["path"].endswith("/token")]
    assert token["client_auth"] == "post"  # msal sends the secret in the body
    for field in ("client_secret", "code", "code_verifier"):
        assert token["form"][field] == "***"
    assert token["form"]["redirect_uri"] == REDIRECT_URI
    assert entra.client_secret not in repr(entra.requests)
    [decision] = entra.authorizations
    assert decision["max_age"] == 900
    assert decision["fresh_sign_in"] is True
    assert decision["oid"] == ANN["oid"]


def test_form_post_response_mode_works_with_msal(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    flow = app.initiate_auth_code_flow(
        scopes=ADO_SCOPES, redirect_uri=REDIRECT_URI, response_mode="form_post"
    )
    fields = entra.follow(flow["auth_uri"])
    assert fields["state"] == flow["state"]
    result = app.acquire_token_by_auth_code_flow(flow, fields)
    assert result["id_token_claims"]["oid"] == ANN["oid"]


# -- the authorize and token endpoints refuse -----------------------------------------------


def test_a_wrong_state_is_rejected_by_msal(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    flow, query = sign_in(entra, app)
    with pytest.raises(ValueError, match="state mismatch"):
        app.acquire_token_by_auth_code_flow(flow, dict(query, state="forged"))
    assert token_grants(entra) == []  # msal never redeemed the code


def test_a_replayed_code_is_refused(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    flow, query = sign_in(entra, app)
    first = app.acquire_token_by_auth_code_flow(dict(flow), query)
    assert "access_token" in first

    replay = make_app(entra).acquire_token_by_auth_code_flow(dict(flow), query)

    assert replay["error"] == "invalid_grant"
    assert "AADSTS54005" in replay["error_description"]


def test_a_wrong_code_verifier_is_refused(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    flow, query = sign_in(entra, app)
    flow["code_verifier"] = "x" * 43
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert result["error"] == "invalid_grant"
    assert "AADSTS501481" in result["error_description"]


def test_a_different_redirect_uri_at_redemption_is_refused(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    flow, query = sign_in(entra, app)
    flow["redirect_uri"] = "https://elsewhere.test/callback"
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert result["error"] == "invalid_grant"
    assert "AADSTS500117" in result["error_description"]


def test_a_wrong_client_secret_is_refused(entra):
    entra.sign_in_as(**ANN)
    app = make_app(entra, client_credential="not-the-secret")
    flow, query = sign_in(entra, app)
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert result["error"] == "invalid_client"


def test_an_unknown_client_id_gets_an_error_redirect(entra):
    entra.sign_in_as(**ANN)
    app = make_app(entra, client_id="99999999-9999-9999-9999-999999999999")
    flow, query = sign_in(entra, app)
    assert query["state"] == flow["state"]
    assert "code" not in query
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert result["error"] == "unauthorized_client"
    assert "AADSTS700016" in result["error_description"]


def test_authorize_requires_pkce_state_and_a_redirect_uri(entra):
    entra.sign_in_as(**ANN)
    session = entra.http_session()
    base = {
        "client_id": entra.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": "s1",
        "nonce": "n1",
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
    }

    def params_back(**changes):
        params = {k: v for k, v in dict(base, **changes).items() if v is not None}
        answer = session.get(
            entra.authorization_endpoint, params=params, allow_redirects=False, timeout=10
        )
        return answer

    assert "code=" in params_back().headers["Location"]
    for changes in (
        {"code_challenge": None},
        {"code_challenge_method": "plain"},
        {"state": None},
        {"nonce": None},
        {"response_type": "token"},
    ):
        location = params_back(**changes).headers["Location"]
        assert "error=" in location and "code=" not in location, changes
    no_redirect = params_back(redirect_uri=None)
    assert no_redirect.status_code == 400


def test_prompt_none_without_a_session_needs_a_login(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    flow, query = sign_in(entra, app, prompt="none")
    assert query["error"] == "login_required"
    assert app.acquire_token_by_auth_code_flow(flow, query)["error"] == "login_required"


# -- expiry, refresh and revocation ---------------------------------------------------------


def test_an_expired_access_token_is_refreshed_silently_with_the_refresh_token(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    entra.expire_access_tokens()
    flow, query = sign_in(entra, app)
    first = app.acquire_token_by_auth_code_flow(flow, query)
    assert first["expires_in"] == 0
    assert verify_fails_as_expired(entra, first["access_token"])
    entra.access_token_lifetime = 3600  # the refresh brings a good one

    [account] = app.get_accounts()
    refreshed = app.acquire_token_silent(ADO_SCOPES, account=account)

    assert refreshed is not None
    assert refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != first["access_token"]
    assert verify(entra, refreshed["access_token"], ADO_RESOURCE)["oid"] == ANN["oid"]
    assert token_grants(entra) == ["authorization_code", "refresh_token"]
    [refresh] = [r for r in entra.requests if r["form"].get("grant_type") == "refresh_token"]
    assert refresh["form"]["refresh_token"] == "***"
    assert ADO_SCOPES[0] in refresh["form"]["scope"].split()
    again = app.acquire_token_silent(ADO_SCOPES, account=account)
    assert again["token_source"] == "cache"


def verify_fails_as_expired(entra, token: str) -> bool:
    try:
        verify(entra, token, ADO_RESOURCE)
    except jwt.ExpiredSignatureError:
        return True
    return False


def test_a_revoked_refresh_token_makes_silent_acquisition_fail(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    entra.expire_access_tokens()
    flow, query = sign_in(entra, app)
    app.acquire_token_by_auth_code_flow(flow, query)
    entra.revoke_refresh_tokens()
    [account] = app.get_accounts()

    failed = app.acquire_token_silent_with_error(ADO_SCOPES, account=account)
    assert failed["error"] == "invalid_grant"
    assert "AADSTS50173" in failed["error_description"]
    assert app.acquire_token_silent(ADO_SCOPES, account=account) is None


def test_a_refresh_reflects_the_directory_as_it_is_now(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    entra.expire_access_tokens()
    flow, query = sign_in(entra, app, scopes=ADO_SCOPES)
    app.acquire_token_by_auth_code_flow(flow, query)
    entra.sign_in_as(**dict(ANN, roles=[]))  # the app role was removed in Entra

    [account] = app.get_accounts()
    refreshed = app.acquire_token_silent(ADO_SCOPES, account=account)
    assert refreshed["id_token_claims"]["roles"] == []


def test_a_refresh_for_a_resource_never_consented_is_refused(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    flow, query = sign_in(entra, app)
    app.acquire_token_by_auth_code_flow(flow, query)
    [account] = app.get_accounts()
    result = app.acquire_token_silent_with_error(
        ["https://storage.azure.com/.default"], account=account
    )
    assert result["error"] == "invalid_grant"
    assert "AADSTS65001" in result["error_description"]


# -- max_age, prompt=login and sign-out -----------------------------------------------------


def test_msal_rejects_an_id_token_whose_auth_time_is_older_than_max_age(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    entra.auth_time_ago(3600)
    flow, query = sign_in(entra, app, max_age=900)
    with pytest.raises(RuntimeError, match="max_age"):
        app.acquire_token_by_auth_code_flow(flow, query)


def test_max_age_forces_a_fresh_sign_in_when_the_session_is_older(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    flow, query = sign_in(entra, app)
    first = app.acquire_token_by_auth_code_flow(flow, query)
    entra.age_session(3600)

    flow, query = sign_in(entra, app)  # no max_age: the old session is reused
    reused = app.acquire_token_by_auth_code_flow(flow, query)
    assert reused["id_token_claims"]["auth_time"] <= first["id_token_claims"]["auth_time"] - 3500
    assert entra.authorizations[-1]["fresh_sign_in"] is False

    flow, query = sign_in(entra, app, max_age=900)  # too old for max_age: sign in again
    fresh = app.acquire_token_by_auth_code_flow(flow, query)
    assert "error" not in fresh
    assert fresh["id_token_claims"]["auth_time"] >= first["id_token_claims"]["auth_time"]
    assert entra.authorizations[-1]["fresh_sign_in"] is True


def test_prompt_login_forces_a_fresh_sign_in(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    sign_in(entra, app)
    entra.age_session(600)
    flow, query = sign_in(entra, app, prompt="login")
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert entra.authorizations[-1]["prompt"] == "login"
    assert entra.authorizations[-1]["fresh_sign_in"] is True
    assert result["id_token_claims"]["auth_time"] == entra.authorizations[-1]["auth_time"]


def test_logout_records_the_return_address_and_ends_the_session(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    sign_in(entra, app)
    answer = entra.http_session().get(
        entra.end_session_endpoint,
        params={"post_logout_redirect_uri": "https://portal.test/signed-out"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert "signed out" in answer.text
    assert entra.logouts[-1]["post_logout_redirect_uri"] == "https://portal.test/signed-out"
    sign_in(entra, app)
    assert entra.authorizations[-1]["fresh_sign_in"] is True


def test_stop_closes_the_port(tmp_path):
    standin = EntraStandIn(workdir=tmp_path).start()
    url = f"{standin.authority}/v2.0/.well-known/openid-configuration"
    assert standin.http_session().get(url, timeout=10).status_code == 200
    standin.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        standin.http_session().get(url, timeout=3)


def test_logout_can_send_the_browser_back_like_entra_does(entra):
    entra.redirect_after_logout = True
    answer = entra.http_session().get(
        entra.end_session_endpoint,
        params={"post_logout_redirect_uri": "https://portal.test/signed-out", "state": "x"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    assert answer.headers["Location"] == "https://portal.test/signed-out?state=x"


def test_more_than_200_groups_become_a_groups_overage(entra):
    app = make_app(entra)
    groups = [f"00000000-0000-4000-8000-{i:012d}" for i in range(201)]
    entra.sign_in_as(**dict(ANN, groups=groups))
    flow, query = sign_in(entra, app)
    claims = app.acquire_token_by_auth_code_flow(flow, query)["id_token_claims"]
    assert "groups" not in claims
    assert claims["_claim_names"] == {"groups": "src1"}
    assert "graph.microsoft.com" in claims["_claim_sources"]["src1"]["endpoint"]


def test_a_token_request_for_two_resources_at_once_is_refused(entra):
    app = make_app(entra)
    entra.sign_in_as(**ANN)
    scopes = [*ADO_SCOPES, "https://storage.azure.com/user_impersonation"]
    flow, query = sign_in(entra, app, scopes=scopes)  # consent to both is fine
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert result["error"] == "invalid_scope"
    assert "AADSTS28000" in result["error_description"]


def test_a_malformed_request_is_answered_not_dropped(entra):
    answer = entra.http_session().post(
        entra.token_endpoint, data={"grant_type": "password"}, timeout=10
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "unauthorized_client"
    assert entra.http_session().get(f"{entra.base_url}/", timeout=10).status_code == 404


def test_a_user_of_another_tenant_carries_that_tid(entra):
    app = make_app(entra)
    other = "44444444-4444-4444-4444-444444444444"
    entra.sign_in_as(**dict(ANN, tid=other))
    flow, query = sign_in(entra, app)
    result = app.acquire_token_by_auth_code_flow(flow, query)
    assert result["id_token_claims"]["tid"] == other
    assert entra.decode(result["access_token"], audience=ADO_RESOURCE)["tid"] == other
    [account] = app.get_accounts()
    assert account["home_account_id"] == f"{ANN['oid']}.{other}"


# --- Client credentials (a service principal calling an API) ---------------------------------

PIPELINE_APP = {
    "client_id": "33333333-3333-3333-3333-333333333333",
    "client_secret": "pipeline-secret",
    "object_id": "44444444-4444-4444-4444-444444444444",
}


def _app_client(entra: EntraStandIn, secret: str = PIPELINE_APP["client_secret"]):
    return msal.ConfidentialClientApplication(
        PIPELINE_APP["client_id"],
        client_credential=secret,
        authority=entra.authority,
        http_client=entra.http_session(),
        instance_discovery=False,
    )


def test_client_credentials_issue_an_app_only_v2_token_verifiable_with_the_jwks(entra):
    entra.register_app(**PIPELINE_APP, roles=["Portal.DataScientist"])
    result = _app_client(entra).acquire_token_for_client([f"api://{entra.client_id}/.default"])
    token = result["access_token"]
    keys = jwt.PyJWKSet.from_dict(entra.http_session().get(entra.jwks_uri, timeout=10).json())
    key = next(k for k in keys.keys if k.key_id == jwt.get_unverified_header(token)["kid"])
    claims = jwt.decode(
        token, key, algorithms=["RS256"], audience=entra.client_id, issuer=entra.issuer
    )
    assert claims["azp"] == PIPELINE_APP["client_id"] and claims["idtyp"] == "app"
    assert claims["oid"] == claims["sub"] == PIPELINE_APP["object_id"]
    assert claims["roles"] == ["Portal.DataScientist"] and "scp" not in claims
    assert entra.issued[-1]["grant_type"] == "client_credentials"


def test_client_credentials_v1_tokens_and_refusals(entra):
    entra.register_app(**PIPELINE_APP)
    entra.access_token_version = 1
    token = _app_client(entra).acquire_token_for_client(["api://portal/.default"])
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["iss"] == f"https://sts.windows.net/{entra.tenant_id}/"
    assert claims["aud"] == "api://portal" and claims["appid"] == PIPELINE_APP["client_id"]
    assert "roles" not in claims
    wrong = _app_client(entra, secret="nope").acquire_token_for_client(["api://portal/.default"])
    assert wrong["error"] == "invalid_client"
    bad_scope = _app_client(entra).acquire_token_for_client(["api://portal/read"])
    assert bad_scope["error"] == "invalid_scope"
