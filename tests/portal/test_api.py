import json

import pytest

from core.roles import Role

pytestmark = pytest.mark.django_db


def test_me_returns_the_callers_roles(make_user, client):
    client.force_login(make_user(Role.APPROVER, Role.MANAGER, username="alice"))
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert response.json()["roles"] == ["approver", "manager"]


def test_anonymous_api_calls_get_json_not_a_login_page(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json() and "request_id" in response.json()


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/approvals/null%2Cnull/"])
def test_unknown_api_paths_are_json_404s_with_the_error_body(role_client, path):
    response = role_client(Role.APPROVER).get(path)
    assert response.status_code == 404
    assert response.json() == {
        "detail": "Not found.",
        "code": "not_found",
        "request_id": response["X-Request-ID"],
    }


def test_django_error_handlers_answer_the_api_error_body(rf):
    from django.core.exceptions import PermissionDenied

    from portal import errors

    request = rf.get("/api/v1/registry/models/")
    request.request_id = "req-123"
    for response, status, code in [
        (errors.bad_request(request), 400, "bad_request"),
        (errors.permission_denied(request, PermissionDenied("No.")), 403, "permission_denied"),
        (errors.page_not_found(request), 404, "not_found"),
        (errors.server_error(request), 500, "server_error"),
    ]:
        body = json.loads(response.content)
        assert response.status_code == status
        assert body["code"] == code and body["request_id"] == "req-123" and body["detail"]


def test_an_api_view_without_an_access_rule_answers_the_error_body(make_user, client):
    from portal.middleware import AccessMiddleware

    client.force_login(make_user(Role.APPROVER))
    request = client.get("/api/v1/me").wsgi_request
    request.request_id = "req-9"
    body = json.loads(AccessMiddleware._forbidden(request, "No rule.").content)
    assert body == {"detail": "No rule.", "code": "permission_denied", "request_id": "req-9"}


def test_the_openapi_schema_describes_the_api(role_client):
    response = role_client(Role.DATA_SCIENTIST).get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "MLOps Portal API"
    assert "/api/v1/me" in schema["paths"]


def test_api_docs_are_served_from_vendored_files_under_csp(role_client):
    client = role_client(Role.DATA_SCIENTIST)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "<script>" not in html  # the init script is a separate file (CSP: script-src 'self')
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert "/api/schema/" in script.content.decode()


def test_api_writes_need_the_csrf_token(make_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(Role.APPROVER))
    response = client.post("/api/v1/me", {})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


@pytest.mark.parametrize("page", ["0", "-1", "x", "999"])
def test_a_page_out_of_range_is_a_400_with_the_error_body(role_client, page):
    response = role_client(Role.APPROVER).get("/api/v1/approvals/", {"page": page})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_page" and body["request_id"] == response["X-Request-ID"]
    assert body["detail"].startswith(f"Invalid page '{page}': ")


def test_the_schema_says_pages_start_at_one(role_client):
    schema = role_client(Role.APPROVER).get("/api/schema/?format=json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/approvals/"]["get"]["parameters"]}
    assert parameters["page"]["schema"]["minimum"] == 1
    assert parameters["page_size"]["schema"]["minimum"] == 1


def _parameters(schema: dict, path: str) -> dict:
    return {p["name"]: p["schema"] for p in schema["paths"][path]["get"]["parameters"]}


def test_the_schema_is_as_strict_as_the_server(role_client):
    schema = role_client(Role.APPROVER).get("/api/schema/?format=json").json()
    assert _parameters(schema, "/api/v1/approvals/audit/")["approval"]["minimum"] == 1
    weeks = _parameters(schema, "/api/v1/maturity/summary/")["weeks"]
    assert (weeks["minimum"], weeks["maximum"]) == (1, 104)
    versions = _parameters(schema, "/api/v1/registry/models/{name}/compare/")["v"]
    assert (versions["minItems"], versions["maxItems"]) == (2, 4)
    assert versions["items"]["pattern"]
    status = _parameters(schema, "/api/v1/approvals/")["status"]
    assert "waiting" not in status["enum"] and "approved" in status["enum"]
    components = schema["components"]["schemas"]
    assert components["DecisionInput"]["discriminator"]["propertyName"] == "status"
    assert "comment" in components["RejectInput"]["required"]
    assert "comment" not in components["ApproveInput"].get("required", [])


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/approvals/audit/", {"approval": "0"}),
        ("/api/v1/maturity/summary/", {"weeks": "0"}),
        ("/api/v1/registry/models/fraud/compare/", {"v": ""}),
        ("/api/v1/approvals/", {"tab": "decided", "status": "waiting"}),
    ],
)
def test_what_the_schema_forbids_the_server_refuses(role_client, path, query):
    from tests.registry.factories import RegisteredModelFactory

    RegisteredModelFactory(name="fraud")
    response = role_client(Role.ADMIN, Role.APPROVER).get(path, query)
    assert response.status_code == 400
    assert response.json()["request_id"] == response["X-Request-ID"]
