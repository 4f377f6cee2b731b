"""Error pages that speak JSON to API clients and HTML to people.

Under /api/ every error has one body, ``{"detail", "code", "request_id"}`` (the DRF handler
in ``portal.api`` and ``core.api_support.error_response`` give the same), whether the view
answered it or Django did before any view ran (no URL matched, a 500, a bad request).
"""

from django.http import HttpResponseBadRequest, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader

from core.request_context import get_request_id


def wants_json(request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def api_error(request, status: int, detail: str, code: str) -> JsonResponse:
    """The API's error body, with the id the response's X-Request-ID header carries too."""
    request_id = getattr(request, "request_id", None) or get_request_id()
    return JsonResponse({"detail": detail, "code": code, "request_id": request_id}, status=status)


def bad_request(request, exception=None, *, message: str = "", code: str = "bad_request"):
    message = message or "The portal could not read this request."
    if wants_json(request):
        return api_error(request, 400, message, code)
    try:
        return render(request, "400.html", {"message": message}, status=400)
    except Exception:  # the request may be too broken for the full page (e.g. a bad host)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


def permission_denied(request, exception=None):
    message = str(exception) if exception and str(exception) else "You may not open this page."
    if wants_json(request):
        return api_error(request, 403, message, "permission_denied")
    return render(request, "403.html", {"message": message}, status=403)


def page_not_found(request, exception=None):
    if wants_json(request):
        return api_error(request, 404, "Not found.", "not_found")
    return render(request, "404.html", status=404)


def server_error(request):
    request_id = getattr(request, "request_id", None)
    if wants_json(request):
        return api_error(request, 500, "Server error.", "server_error")
    # No context processors: the database may be what failed.
    body = loader.get_template("500.html").render({"request_id": request_id})
    return HttpResponseServerError(body)
