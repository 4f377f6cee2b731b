"""What every app's API shares: the 400 error, the page size, the error body
``{"detail", "code", "request_id"}`` and bad filters turned into one readable sentence."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from .request_context import get_request_id


class BadRequest(exceptions.APIException):
    status_code = 400
    default_detail = "Bad request."
    default_code = "bad_request"


class PortalPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def errors_text(errors: dict) -> str:
    """A serializer's errors as one sentence, e.g. "Invalid filters: tab: ..."."""
    parts = []
    for name, messages in errors.items():
        text = " ".join(str(m) for m in messages)
        parts.append(text if name == "non_field_errors" else f"{name}: {text}")
    return "Invalid filters: " + "; ".join(parts)


def validated_filters(serializer_class, query_params, *, code: str = ""):
    """The valid filter serializer, or a 400 naming every bad filter."""
    serializer = serializer_class(data=query_params)
    if not serializer.is_valid():
        errors = {name: [str(e) for e in errs] for name, errs in serializer.errors.items()}
        body = {"detail": errors_text(errors), "errors": errors}
        if code:
            body["code"] = code
        raise BadRequest(body)
    return serializer


def error_response(status: int, detail: str, code: str, **extra) -> Response:
    return Response(
        {"detail": detail, "code": code, **extra, "request_id": get_request_id()}, status=status
    )
