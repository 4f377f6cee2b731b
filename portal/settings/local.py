"""The embedded default: SQLite, no Redis, local accounts with demo users.

DEBUG defaults to on for `manage.py` commands; the demo's own web, worker and beat run with
it off (portal.management.commands.demo), so people see the portal's error pages.
"""

from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env(
    "DJANGO_SECRET_KEY",
    default="local-only-insecure-key-never-used-in-production-0b9f4c1e7a2d",
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
# Static files straight from the static folders, DEBUG on or off (WhiteNoise's finders).
WHITENOISE_USE_FINDERS = True
# Plain storage so a page renders before collectstatic has ever run.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
for _folder in ("celery/queue", "celery/control", "celery/results", "prometheus", "staticfiles"):
    (VAR_DIR / _folder).mkdir(parents=True, exist_ok=True)
