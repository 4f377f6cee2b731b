"""When a session last proved who it is: a PROD decision asks for a recent sign-in."""

from django.utils import timezone
from django.utils.dateparse import parse_datetime

AUTHENTICATED_AT_SESSION_KEY = "portal_authenticated_at"


def session_authenticated_at_mark(sender, request, user, **kwargs) -> None:
    """Remember when this session last proved who it is. Connected to ``user_logged_in``
    (portal.apps); a re-authentication refreshes it."""
    if request is not None and hasattr(request, "session"):
        request.session[AUTHENTICATED_AT_SESSION_KEY] = timezone.now().isoformat()


def session_authenticated_at(request):
    """When the session's user last signed in (None when unknown)."""
    raw = getattr(request, "session", {}).get(AUTHENTICATED_AT_SESSION_KEY)
    return parse_datetime(raw) if raw else None
