"""A brand-new database, migrated once the way an operator's first start does it."""

import json
import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.conf import settings

PORTAL_APPS = ("registry", "pipelines", "approvals", "maturity")

COUNT_ADMIN_PERMISSIONS = """
import json
from django.contrib.auth.models import Group, Permission
admin = Group.objects.get(name="admin")
apps = {apps!r}
print(json.dumps({{
    "all": Permission.objects.filter(content_type__app_label__in=apps).count(),
    "admin": admin.permissions.filter(content_type__app_label__in=apps).count(),
    "missing": Permission.objects.exclude(group=admin).count(),
}}))
"""


def _server_connection():
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
    )


@pytest.fixture
def empty_database_url():
    """A PostgreSQL database of its own, created empty and dropped afterwards."""
    name = f"fresh_migrate_{uuid.uuid4().hex[:10]}"
    db = settings.DATABASES["default"]
    with _server_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    yield f"postgres://{user}{password}@{host}:{port}/{name}"
    with _server_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _manage(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TEST_"))}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings.test", TEST_DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_admin_role_holds_every_app_permission_after_the_first_migrate(empty_database_url):
    migrated = _manage(empty_database_url, "migrate", "--noinput", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr

    counted = _manage(
        empty_database_url, "shell", "-c", COUNT_ADMIN_PERMISSIONS.format(apps=PORTAL_APPS)
    )
    assert counted.returncode == 0, counted.stderr
    counts = json.loads(counted.stdout.strip().splitlines()[-1])
    assert counts["all"] > 0
    assert counts["admin"] == counts["all"]
    assert counts["missing"] == 0
