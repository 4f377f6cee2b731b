import logging
import time

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime

from core.access import access_rule_of, is_api_view
from core.request_context import clean_request_id, reset_request_id, set_request_id
from core.sessions import AUTHENTICATED_AT_SESSION_KEY

from . import metrics
from .errors import api_error, bad_request

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


class NulCharacterMiddleware:
    """Refuse a NUL character (``%00``) in the path or the query string with a 400.

    No page or API takes one, and PostgreSQL refuses it in a query, so one guard here keeps
    every view from turning it into a 500.
    """

    MESSAGE = (
        "The address contains a NUL character (%00), which no page or filter accepts. "
        "Remove it and try again."
    )

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path_info or self._query_has_nul(request):
            return bad_request(request, message=self.MESSAGE, code="nul_character")
        return self.get_response(request)

    @staticmethod
    def _query_has_nul(request) -> bool:
        return any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        )


class MetricsMiddleware:
    """Count requests and their durations by URL name (not path, to keep labels bounded)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
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
            return api_error(request, 403, message, "permission_denied")
        return render(request, "403.html", {"message": message}, status=403)


class SessionTimeoutMiddleware:
    """End a signed-in session after SESSION_IDLE_TIMEOUT_SECONDS without a request, or
    SESSION_ABSOLUTE_TIMEOUT_SECONDS after its sign-in, whatever the activity.

    The last activity is kept in the session (rewritten at most once a minute, so a page's
    polling does not write the session row on every request); the start is the later of the
    sign-in time ``core.sessions.session_authenticated_at_mark`` records (a re-authentication
    counts as a sign-in) and ``STARTED_KEY`` (set by the Entra sign-in, whose single sign-on
    may report an older ``auth_time``, or here when neither is known).

    An expired session is signed out (``user_logged_out`` fires, with
    ``request.portal_sign_out_reason`` saying which limit ended it) and the request answers:
    a redirect to the sign-in page with ``next=`` for pages, 401 JSON for the API, an
    ``HX-Redirect`` for htmx. Probes, metrics and the hook endpoints are not user activity and
    are left alone; sign-in pages go on to their view once the old session is ended.
    """

    LAST_ACTIVITY_KEY = "portal_last_activity"
    STARTED_KEY = "portal_session_started_at"  # portal.entra.SESSION_STARTED_KEY
    ACTIVITY_RESOLUTION_SECONDS = 60
    EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
    EXEMPT_PREFIXES = ("/pipelines/hooks/", "/registry/webhooks/", "/static/")
    AUTH_PREFIXES = ("/accounts/", "/auth/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path in self.EXEMPT_PATHS or path.startswith(self.EXEMPT_PREFIXES):
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return self.get_response(request)
        session = request.session
        now = time.time()
        reason = self._expired(session, now)
        if reason:
            response = self._sign_out(request, reason)
            if response is not None:
                return response
            return self.get_response(request)
        last = session.get(self.LAST_ACTIVITY_KEY)
        if not isinstance(last, int | float) or now - last >= self.ACTIVITY_RESOLUTION_SECONDS:
            session[self.LAST_ACTIVITY_KEY] = int(now)
        return self.get_response(request)

    def _expired(self, session, now: float) -> str:
        started = self._started(session, now)
        if now - started > settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS:
            return "absolute_timeout"
        last = session.get(self.LAST_ACTIVITY_KEY)
        if isinstance(last, int | float) and now - last > settings.SESSION_IDLE_TIMEOUT_SECONDS:
            return "idle_timeout"
        return ""

    def _started(self, session, now: float) -> float:
        """When this session signed in: the later of the sign-in time (an Entra single
        sign-on may report an older ``auth_time``) and the session's own start."""
        candidates = []
        raw = session.get(AUTHENTICATED_AT_SESSION_KEY)
        try:
            parsed = parse_datetime(raw) if isinstance(raw, str) else None
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            candidates.append(parsed.timestamp())
        started = session.get(self.STARTED_KEY)
        if isinstance(started, int | float):
            candidates.append(float(started))
        if not candidates:  # signed in without a recorded time: count from now on
            session[self.STARTED_KEY] = int(now)
            return now
        return max(candidates)

    def _sign_out(self, request, reason: str):
        from django.contrib import messages
        from django.contrib.auth import logout

        request.portal_sign_out_reason = reason
        minutes = (
            settings.SESSION_IDLE_TIMEOUT_SECONDS // 60
            if reason == "idle_timeout"
            else settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS // 3600
        )
        text = (
            f"You were signed out after {minutes} minutes without activity; please sign in again."
            if reason == "idle_timeout"
            else f"Sessions last at most {minutes} hours; please sign in again."
        )
        logout(request)
        logger.info("session ended by the %s", reason.replace("_", " "))
        path = request.path_info
        if path.startswith(self.AUTH_PREFIXES):
            return None  # the sign-in pages themselves: go on, signed out
        if path.startswith("/api/"):
            return JsonResponse(
                {
                    "detail": text,
                    "code": "session_expired",
                    "reason": reason,
                    "request_id": getattr(request, "request_id", None),
                },
                status=401,
            )
        if hasattr(request, "_messages"):
            messages.info(request, text)
        redirect = redirect_to_login(self._return_to(request), settings.LOGIN_URL)
        if request.headers.get("HX-Request") == "true":
            from django_htmx.http import HttpResponseClientRedirect

            return HttpResponseClientRedirect(redirect["Location"])
        return redirect

    @staticmethod
    def _return_to(request) -> str:
        """Where to come back after signing in: this page, or for a form post or an htmx
        request the page it was made from (when on this site)."""
        from urllib.parse import urlsplit

        from django.utils.http import url_has_allowed_host_and_scheme

        if request.method in ("GET", "HEAD") and request.headers.get("HX-Request") != "true":
            return request.get_full_path()
        origin = request.headers.get("HX-Current-URL") or request.headers.get("Referer") or ""
        if origin and url_has_allowed_host_and_scheme(
            origin, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            parts = urlsplit(origin)
            return parts.path + (f"?{parts.query}" if parts.query else "")
        return request.get_full_path()
