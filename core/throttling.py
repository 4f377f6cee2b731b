"""Rate limits on the API's writes (DRF throttling on the shared cache, settings CACHES):
per user (whoever calls, by session or by token) and per token (a portal API token, an Entra
ID access token's service principal), so one runaway script cannot crowd out its owner, nor
a person the writes of everyone else. A refused call is a 429 with ``Retry-After`` and the
API's error body (core.api_support). Reads are not limited here.

The rates are settings read at each call (``PORTAL_API_WRITE_RATE_PER_USER``,
``PORTAL_API_WRITE_RATE_PER_TOKEN``, DRF's ``"<n>/<second|minute|hour|day>"``; empty: no
limit). If the cache cannot be reached the call is let through (logged): a rate limit is not
worth an outage.
"""

from __future__ import annotations

import logging

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from .machine_access import machine_credential

logger = logging.getLogger(__name__)


class _WriteThrottle(SimpleRateThrottle):
    rate_setting = ""

    def get_rate(self):
        return getattr(settings, self.rate_setting, "") or None

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache is down: let the call through
            logger.warning("API rate limit not applied (%s): %s", self.scope, exc)
            return True


class WritesPerUserThrottle(_WriteThrottle):
    scope = "writes_per_user"
    rate_setting = "PORTAL_API_WRITE_RATE_PER_USER"

    def get_cache_key(self, request, view):
        if not request.user.is_authenticated:
            return None  # refused anyway (a write needs a role)
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class WritesPerTokenThrottle(_WriteThrottle):
    scope = "writes_per_token"
    rate_setting = "PORTAL_API_WRITE_RATE_PER_TOKEN"

    def get_cache_key(self, request, view):
        credential = machine_credential(request)
        if credential is None:
            return None
        ident = f"{credential.kind}:{credential.token_id or credential.label}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
