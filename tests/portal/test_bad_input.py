"""Addresses a browser or a script can send that the pages and the API cannot use."""

import pytest

from core.roles import Role

pytestmark = pytest.mark.django_db

NUL_PATHS = [
    "/registry/models/%00/",
    "/registry/models/%00/compare/",
    "/api/v1/registry/models/abc%00def/",
    "/api/v1/maturity/models/%00/",
]


@pytest.mark.parametrize("path", NUL_PATHS)
def test_a_nul_byte_in_the_path_is_refused_with_a_message(role_client, path):
    response = role_client(Role.ADMIN).get(path)
    assert response.status_code == 400
    if path.startswith("/api/"):
        body = response.json()
        assert "NUL" in body["detail"]
        assert body["code"] == "nul_character"
        assert body["request_id"] == response["X-Request-ID"]
    else:
        assert "NUL" in response.content.decode()


@pytest.mark.parametrize("path", ["/registry/models/", "/api/v1/registry/models/"])
def test_a_nul_byte_in_any_tag_filter_is_refused(role_client, path):
    response = role_client(Role.DATA_SCIENTIST).get(path, {"tag": ["a\x00b", "x"]})
    assert response.status_code == 400
    text = response.content.decode()
    assert "NUL" in text


def test_the_models_form_checks_every_tag_value():
    from django.http import QueryDict

    from registry.forms import CatalogFilterForm

    form = CatalogFilterForm(QueryDict("tag=a%00b&tag=x"))
    assert not form.is_valid()
    assert "NUL" in " ".join(form.errors["tag"])
