"""Production: every secret and host comes from the environment, or the process refuses to start."""

from .base import *  # noqa: F403
from .base import DATABASES, ENTRA_ENABLED, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set the DJANGO_ALLOWED_HOSTS environment variable")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set DATABASE_URL to a PostgreSQL database in production")

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Probes and the scraper talk plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"

LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT  # noqa: F405

# With Entra ID on, nobody needs a local password (LOCAL_ACCOUNTS_ENABLED=true keeps them).
LOCAL_ACCOUNTS_ENABLED = env.bool("LOCAL_ACCOUNTS_ENABLED", default=not ENTRA_ENABLED)
if not LOCAL_ACCOUNTS_ENABLED and not ENTRA_ENABLED:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "LOCAL_ACCOUNTS_ENABLED is false but Entra ID is not configured: nobody could sign in. "
        "Set ENTRA_TENANT_ID, ENTRA_CLIENT_ID and ENTRA_CLIENT_SECRET."
    )
