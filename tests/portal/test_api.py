import pytest

from portal.roles import Role

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


def test_unknown_api_paths_are_json_404s(role_client):
    response = role_client(Role.APPROVER).get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


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
