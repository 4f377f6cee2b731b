"""What every app's API shares: the 400 error, the page size, the error body
``{"detail", "code", "request_id"}`` and bad filters turned into one readable sentence."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import PortalError
from .request_context import get_request_id


class BadRequest(exceptions.APIException):
    status_code = 400
    default_detail = "Bad request."
    default_code = "bad_request"


class PortalPagination(PageNumberPagination):
    """Pages of 50 (``page_size`` up to 200). A page that is not a number from 1 to the last
    page is a 400 with the API's error body, as the schema says (DRF's own answer is a 404)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    invalid_page_message = "Invalid page {page_number!r}: {message}."

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except exceptions.NotFound as exc:
            raise BadRequest({"detail": str(exc.detail), "code": "invalid_page"}) from None

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = (
                    "A page number from 1 to the last page; another is a 400 (invalid_page)."
                )
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = (
                    f"Results per page (default {self.page_size}, at most {self.max_page_size}: "
                    "a larger number gives that many)."
                )
        return parameters


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


def exception_handler(exc, context):
    """DRF's handler (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``), plus a ``PortalError`` as its
    status and body, Django's ValidationError as 400, and the code and the request id in
    every error (the body Django's own error handlers answer too: portal.errors)."""
    if isinstance(exc, PortalError):
        response = error_response(exc.http_status, exc.message, exc.code, **exc.extra)
        if hasattr(exc, "www_authenticate"):  # a refused bearer token (core.machine_access)
            response["WWW-Authenticate"] = exc.www_authenticate()
        return response
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict):
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        if isinstance(codes, str):
            response.data.setdefault("code", codes)
        response.data.setdefault("request_id", get_request_id())
        if isinstance(exc, exceptions.Throttled):
            # DRF sets the Retry-After header (whole seconds); the body says it in words.
            response.data["detail"] = _throttled_detail(exc.wait)
    return response


def _throttled_detail(wait: int | None) -> str:
    if not wait:
        return "Too many requests: slow down and try again later."
    return f"Too many requests: try again in {wait} second{'s' if wait != 1 else ''}."
