"""One error type, turned into a response in one place for the API and one for pages."""

import json

import pytest
from django.test import RequestFactory
from rest_framework.views import APIView

from core.api_support import exception_handler
from core.errors import PortalError, PortalErrorMiddleware


class Conflict(PortalError):
    code = "already_decided"
    http_status = 409


def test_a_subclass_keeps_its_code_and_status_and_a_raise_may_override_them():
    error = Conflict("Someone decided first.")
    assert (error.code, error.http_status, error.message) == (
        "already_decided",
        409,
        "Someone decided first.",
    )
    other = Conflict("Sign in again.", code="reauthentication_required", http_status=401)
    assert (other.code, other.http_status) == ("reauthentication_required", 401)
    assert Conflict.code == "already_decided"  # the override is per instance
    assert str(other) == "Sign in again."


def test_the_api_answers_the_error_body_with_its_status_and_extra_fields():
    request = RequestFactory().post("/api/v1/approvals/1/decisions/")
    error = PortalError(
        "Sign in again.", code="reauthentication_required", http_status=401, reauthenticate_url="/x"
    )
    response = exception_handler(error, {"request": request, "view": APIView()})
    assert response.status_code == 401
    assert response.data["detail"] == "Sign in again."
    assert response.data["code"] == "reauthentication_required"
    assert response.data["reauthenticate_url"] == "/x"
    assert "request_id" in response.data


@pytest.mark.django_db
def test_a_page_that_lets_the_error_through_shows_its_status_page_with_the_message(rf):
    request = RequestFactory().get("/approvals/1/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    middleware = PortalErrorMiddleware(lambda r: None)
    response = middleware.process_exception(request, Conflict("Someone decided first."))
    assert response.status_code == 409
    assert "Someone decided first." in response.content.decode()
    forbidden = middleware.process_exception(request, PortalError("No.", http_status=403))
    assert forbidden.status_code == 403
    assert "No." in forbidden.content.decode()


def test_other_exceptions_are_left_to_django():
    request = RequestFactory().get("/")
    assert PortalErrorMiddleware(lambda r: None).process_exception(request, ValueError()) is None


def test_the_body_is_what_the_api_sends_without_the_request_id():
    assert Conflict("x", approval=3).as_body() == {
        "detail": "x",
        "code": "already_decided",
        "approval": 3,
    }
    json.dumps(Conflict("x").as_body())  # serialisable
