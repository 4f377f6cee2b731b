"""Each settings module started as a fresh process, as an operator would start it."""

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "portal.settings.production",
    "DJANGO_SECRET_KEY": "a-production-like-secret-key-that-is-long-and-random-4f9e2c1b7a",
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}
PORTAL_VARIABLES = ("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_QUEUE", "TEST_", "PROMETHEUS_")


def _run(env_overrides: dict, code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(PORTAL_VARIABLES)}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


SHOW = (
    "from django.conf import settings as s; import json; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
    "'name': str(s.DATABASES['default']['NAME']), 'broker': s.CELERY_BROKER_URL, "
    "'debug': s.DEBUG}))"
)


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"])
def test_production_refuses_to_start_without(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _run(env, "")
    assert result.returncode != 0
    assert f"Set the {missing} environment variable" in result.stderr


def test_production_refuses_sqlite():
    result = _run({**PRODUCTION_ENV, "DATABASE_URL": "sqlite:////tmp/x.sqlite3"}, "")
    assert result.returncode != 0
    assert "Set DATABASE_URL to a PostgreSQL database" in result.stderr


def test_the_embedded_default_needs_no_server():
    result = _run({"DJANGO_SETTINGS_MODULE": "portal.settings.local"}, SHOW)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["engine"] == "django.db.backends.sqlite3"
    assert shown["name"].endswith("var/portal.sqlite3")
    assert shown["broker"] == "filesystem://"
    assert shown["debug"] is True


def test_redis_and_postgres_when_their_urls_are_set():
    result = _run(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings.local",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/test",
            "REDIS_URL": "redis://127.0.0.1:6379/3",
        },
        SHOW,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["engine"] == "django.db.backends.postgresql"
    assert shown["broker"] == "redis://127.0.0.1:6379/3"


def test_production_passes_the_deploy_checks():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(PORTAL_VARIABLES)},
            **PRODUCTION_ENV,
        },
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_logs_are_json():
    code = (
        "import logging, io, json; from django.conf import settings as s; "
        "print(s.LOGGING['handlers']['console']['formatter'])"
    )
    result = _run(PRODUCTION_ENV, code)
    assert result.stdout.strip() == "json", result.stderr
