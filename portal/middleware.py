import logging
import time

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.shortcuts import render

from .access import access_rule_of, is_api_view
from .request_context import clean_request_id, reset_request_id, set_request_id

logger = logging.getLogger(__name__)


class RequestIdMiddleware:
    """Give each request an id (the proxy's X-Request-ID when valid) and echo it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = clean_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["X-Request-ID"] = request_id
        return response


class MetricsMiddleware:
    """Count requests and their durations by URL name (not path, to keep labels bounded)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from . import metrics

        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match else None) or "<unresolved>"
        metrics.HTTP_REQUESTS.labels(request.method, view, str(response.status_code)).inc()
        metrics.HTTP_REQUEST_SECONDS.labels(request.method, view).observe(
            time.perf_counter() - started
        )
        return response


class ProbeMiddleware:
    """Answer /healthz and /readyz before Django validates the Host header.

    Orchestrators and load balancers probe by IP address (``Host: 10.0.3.7:8000``), which is
    rightly not in ALLOWED_HOSTS. The probes reveal nothing and change nothing, so they are
    answered whatever the host; every other path still goes through host validation.
    """

    PROBE_PATHS = frozenset({"/healthz", "/readyz"})

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info in self.PROBE_PATHS and request.method in ("GET", "HEAD"):
            from django.urls import resolve

            request.resolver_match = resolve(request.path_info)
            return request.resolver_match.func(request)
        return self.get_response(request)


class AccessMiddleware:
    """Enforce the access rule each HTML view declares; refuse views that declare none."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match and match.namespaces and match.namespaces[0] == "admin":
            return None  # the admin site checks PortalAdminSite.has_permission itself
        if is_api_view(view_func):
            return None  # DRF authenticates first, then HasPortalAccess applies the rule
        rule = access_rule_of(view_func)
        if rule is None:
            logger.error(
                "View %s declares no access rule; refused", match.view_name if match else view_func
            )
            return self._forbidden(
                request, "This page has no access rule yet, so nobody may open it."
            )
        if rule.allows_bearer(request) or rule.allows_user(request.user):
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        return self._forbidden(
            request, f"This page is for: {rule.describe()}. Ask an administrator for that role."
        )

    @staticmethod
    def _forbidden(request, message: str):
        if request.path.startswith("/api/") or request.headers.get("Accept") == "application/json":
            return JsonResponse({"detail": message}, status=403)
        return render(request, "403.html", {"message": message}, status=403)
