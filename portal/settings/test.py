"""Tests: real PostgreSQL and Redis on this machine (never SQLite, never a fake broker)."""

import os
import tempfile
import uuid

from portal.queues import prefixed_routes

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = "test-only-secret-key-with-enough-length-to-look-real-7c1f0e9d"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

DATABASES = {
    "default": env.db("TEST_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/test"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("TEST_DATABASE_URL must point at PostgreSQL, not SQLite")
# Fresh connections per request unless told (the benchmarks serve gunicorn as production does).
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=0))

REDIS_URL = env("TEST_REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
# The shared cache (API rate limits) on the test Redis, under a prefix of this session's own.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"portal-test-{uuid.uuid4().hex[:12]}",
    }
}
# Each test session gets its own queue on the shared Redis, so two runs never steal tasks.
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default=f"portal-test-{uuid.uuid4().hex[:12]}")
os.environ["CELERY_QUEUE"] = CELERY_TASK_DEFAULT_QUEUE
# ...and its own deliveries, syncs and maintenance queues, named after it.
CELERY_TASK_ROUTES = prefixed_routes(CELERY_TASK_ROUTES, CELERY_TASK_DEFAULT_QUEUE)  # noqa: F405

# This session's workers beat in a file of their own, not the machine's /tmp default.
CELERY_WORKER_HEARTBEAT_FILE = env(
    "CELERY_WORKER_HEARTBEAT_FILE",
    default=os.path.join(tempfile.mkdtemp(prefix="portal-heartbeat-"), "worker"),
)
os.environ["CELERY_WORKER_HEARTBEAT_FILE"] = CELERY_WORKER_HEARTBEAT_FILE

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = tempfile.mkdtemp(prefix="portal-static-")
PROMETHEUS_MULTIPROC_DIR = env(
    "PROMETHEUS_MULTIPROC_DIR", default=tempfile.mkdtemp(prefix="portal-metrics-")
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
METRICS_TOKEN = "test-metrics-token"
# The ADO simulator's default PAT, so a test's worker process can reach a simulator too.
AZURE_DEVOPS_PAT = env("AZURE_DEVOPS_PAT", default="simulator-pat")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# The signal endpoints' shared secrets (tests/operations/test_intake_*.py); "…-next" is the
# rotation's second secret.
OPERATIONS_SIGNAL_SECRETS = {
    "azure-monitor": ["test-azure-monitor-key", "test-azure-monitor-key-next"],
    "event-grid": ["test-event-grid-key"],
    "databricks": ["test-databricks-key"],
    "evidently": ["test-evidently-key"],
    "generic": ["test-generic-key"],
}
