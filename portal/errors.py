"""Error pages that speak JSON to API clients and HTML to people."""

from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader


def _wants_json(request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def permission_denied(request, exception=None):
    message = str(exception) if exception and str(exception) else "You may not open this page."
    if _wants_json(request):
        return JsonResponse({"detail": message}, status=403)
    return render(request, "403.html", {"message": message}, status=403)


def page_not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    request_id = getattr(request, "request_id", None)
    if _wants_json(request):
        return JsonResponse({"detail": "Server error.", "request_id": request_id}, status=500)
    # No context processors: the database may be what failed.
    body = loader.get_template("500.html").render({"request_id": request_id})
    return HttpResponseServerError(body)
