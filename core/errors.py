"""One error type for what the portal refuses or cannot do, and where it becomes a response.

Services raise a ``PortalError`` (or a subclass: a decision refused, a declaration refused, a
comparison that cannot be made, an external system that failed); views let it propagate.
It is turned into a response in one place each:

- under the API, ``core.api_support.exception_handler`` (DRF's ``EXCEPTION_HANDLER``) answers
  ``{"detail", "code", "request_id", **extra}`` with the error's status;
- on pages, ``PortalErrorMiddleware`` renders the status's error page with the message.

A view that shows the refusal in place (a form beside its field, a decision box) catches it
itself; everything else needs no ``try``.
"""

from __future__ import annotations

from django.shortcuts import render
from django.template import TemplateDoesNotExist


class PortalError(Exception):
    """``code`` is short and stable (clients and the audit trail match on it), ``message`` is
    a sentence for people, ``http_status`` what a response says; ``extra`` adds fields to the
    API's error body (e.g. where to sign in again)."""

    code: str = "error"
    http_status: int = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        http_status: int | None = None,
        **extra,
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.extra = extra

    def as_body(self) -> dict:
        return {"detail": self.message, "code": self.code, **self.extra}


def error_page(request, error: PortalError):
    """The error page for ``error``: the page of its status (403.html...) or the 400 page."""
    context = {"message": error.message}
    for template in (f"{error.http_status}.html", "400.html"):
        try:
            return render(request, template, context, status=error.http_status)
        except TemplateDoesNotExist:
            continue
    raise TemplateDoesNotExist("400.html")


class PortalErrorMiddleware:
    """Turns a ``PortalError`` that a page view let through into its error page (API views
    never get here: DRF answers their exceptions through ``core.api_support``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, PortalError):
            return error_page(request, exception)
        return None
