"""Entra ID access tokens for service principals and managed identities, against the local
Entra stand-in (tests/entra/standin.py): a pipeline-style client gets an app-only token by the
client-credentials grant through msal, exactly as a service connection does, and the API
checks it for real (signature against the stand-in's JWKS, issuer, audience, expiry)."""

import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from rest_framework.test import APIClient

from approvals.models import AuditAction, AuditEvent
from core import clients
from core.roles import user_roles
from portal.models import ServicePrincipal
from tests.entra.standin import ADO_RESOURCE, EntraStandIn
from tests.maturity.factories import set_maturity
from tests.registry.factories import CatalogModelFactory

pytestmark = pytest.mark.django_db

PIPELINE = {
    "client_id": "33333333-3333-3333-3333-333333333333",
    "client_secret": "pipeline-secret",
    "object_id": "44444444-4444-4444-4444-444444444444",
    "display_name": "ado-service-connection",
}
REASON = "Retraining on new data runs in Databricks workflows the portal cannot see."


def app_token(standin, app=PIPELINE, scope=None) -> str:
    """What a pipeline step does: msal's client-credentials grant against the authority."""
    msal_app = clients.confidential_client(
        app["client_id"],
        app["client_secret"],
        standin.authority,
        timeout=10,
        verify=standin.ca_file,
    )
    result = msal_app.acquire_token_for_client(
        scopes=[scope or f"api://{standin.client_id}/.default"]
    )
    assert "access_token" in result, result
    return result["access_token"]


def call(token: str, method="get", path="/api/v1/me", **kwargs):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return getattr(client, method)(path, **kwargs)


def refusals():
    return list(AuditEvent.objects.filter(action=AuditAction.API_ACCESS_REFUSED))


@pytest.fixture
def pipeline(entra_on):
    entra_on.register_app(**PIPELINE, roles=["Portal.DataScientist"])
    return entra_on


@pytest.fixture
def model(db):
    catalog_model = CatalogModelFactory(name="fraud-detector")
    set_maturity(catalog_model, assessed=2)
    return catalog_model


def test_a_pipeline_gets_a_token_and_is_allowed_what_its_role_allows(pipeline, model):
    token = app_token(pipeline)
    me = call(token)
    assert me.status_code == 200, me.content
    assert me.json()["roles"] == ["data_scientist"]
    assert call(token, path="/api/v1/registry/models/").status_code == 200
    # refused what a data scientist may not: the audit trail, a manager's declaration
    audit = call(token, path="/api/v1/approvals/audit/")
    assert audit.status_code == 403
    declared = call(
        token,
        "post",
        "/api/v1/maturity/models/fraud-detector/declaration/",
        data={"level": 3, "reason": REASON},
        format="json",
    )
    assert declared.status_code == 403 and declared.json()["code"] == "not_manager"

    principal = ServicePrincipal.objects.get()
    assert (principal.object_id, principal.app_id) == (PIPELINE["object_id"], PIPELINE["client_id"])
    assert principal.user.username == f"sp-{PIPELINE['object_id']}"
    assert not principal.user.has_usable_password()
    assert principal.last_used_ip == "127.0.0.1" and principal.last_token_id
    assert principal.claimed_roles == ["Portal.DataScientist"]
    (used,) = AuditEvent.objects.filter(action=AuditAction.API_ACCESS)  # once a minute
    assert used.actor_id == principal.user_id
    assert used.detail["app_id"] == PIPELINE["client_id"] and used.detail["ip"] == "127.0.0.1"


def test_a_manager_app_writes_what_a_manager_may(entra_on, model):
    entra_on.register_app(**PIPELINE, roles=["Portal.Manager"])
    declared = call(
        app_token(entra_on),
        "post",
        "/api/v1/maturity/models/fraud-detector/declaration/",
        data={"level": 3, "reason": REASON},
        format="json",
    )
    assert declared.status_code == 201, declared.content


def test_the_roles_follow_the_token(pipeline):
    call(app_token(pipeline))
    pipeline.register_app(**PIPELINE, roles=[])  # the app role assignment removed in Entra
    me = call(app_token(pipeline))
    assert me.status_code == 403  # no role: nothing to use
    assert user_roles(ServicePrincipal.objects.get().user) == frozenset()


def test_a_v1_token_of_the_tenant_is_accepted_too(pipeline):
    pipeline.access_token_version = 1  # iss https://sts.windows.net/<tid>/, aud as requested
    assert call(app_token(pipeline)).status_code == 200


def _assert_refused(response, code, words):
    assert response.status_code == 401, response.content
    body = response.json()
    assert set(body) == {"detail", "code", "request_id"}
    assert body["code"] == code and words in body["detail"], body
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert any(e.detail["reason"] == code for e in refusals())


def test_a_token_for_another_api_is_refused(pipeline):
    token = app_token(pipeline, scope=f"{ADO_RESOURCE}/.default")
    _assert_refused(call(token), "wrong_audience", "another API")


def test_a_token_of_another_tenant_is_refused(pipeline, tmp_path):
    other = EntraStandIn(tenant_id="99999999-9999-9999-9999-999999999999", workdir=tmp_path / "o")
    with other:
        other.register_app(**PIPELINE, roles=["Portal.Admin"])
        token = app_token(other)
    _assert_refused(call(token), "wrong_issuer", "not by this portal's Entra ID tenant")
    assert not ServicePrincipal.objects.exists()


def test_an_expired_token_is_refused(pipeline):
    pipeline.access_token_lifetime = 0
    _assert_refused(call(app_token(pipeline)), "expired_token", "expired")


def test_a_token_with_a_bad_signature_is_refused(pipeline):
    token = app_token(pipeline)
    claims = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    # the same claims, the tenant's key id, but signed with a key that is not the tenant's
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {**claims, "roles": ["Portal.Admin"]},
        forger,
        algorithm="RS256",
        headers={"kid": header["kid"]},
    )
    _assert_refused(call(forged), "bad_signature", "signature")
    # the real signature over changed claims
    head, _payload, signature = token.split(".")
    payload = jwt.utils.base64url_encode(
        json.dumps({**claims, "roles": ["Portal.Admin"]}).encode()
    ).decode()
    _assert_refused(call(f"{head}.{payload}.{signature}"), "bad_signature", "signature")
    # an unsigned token
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert call(unsigned).status_code == 401
    assert not ServicePrincipal.objects.exists()


def test_a_token_is_refused_when_entra_is_not_configured(pipeline, settings):
    token = app_token(pipeline)
    settings.ENTRA_TENANT_ID = ""
    _assert_refused(call(token), "entra_not_configured", "portal API token")


def test_a_disabled_service_principal_is_refused(pipeline):
    token = app_token(pipeline)
    call(token)
    user = ServicePrincipal.objects.get().user
    user.is_active = False
    user.save()
    _assert_refused(call(token), "inactive", "disabled")


def test_the_audience_is_a_setting(pipeline, settings):
    settings.ENTRA_API_AUDIENCES = ["api://mlops-portal"]
    _assert_refused(call(app_token(pipeline)), "wrong_audience", "api://mlops-portal/.default")
    assert call(app_token(pipeline, scope="api://mlops-portal/.default")).status_code == 200


def test_the_schema_names_both_token_schemes(pipeline):
    schema = call(app_token(pipeline), path="/api/schema/?format=json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["portalToken"]["scheme"] == "bearer"
    assert schemes["entraAccessToken"]["bearerFormat"] == "JWT"
    write = schema["paths"]["/api/v1/maturity/models/{name}/declaration/"]["post"]
    assert {"401", "403", "429"} <= set(write["responses"])
    assert "Retry-After" in write["responses"]["429"]["headers"]
