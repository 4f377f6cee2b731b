"""Shared fixtures. The suite needs the real PostgreSQL and Redis; it stops early without them."""

import pytest
from django.conf import settings

from tests.factories import UserFactory


def _reachability_problems() -> list[str]:
    import psycopg
    import redis

    problems = []
    db = settings.DATABASES["default"]
    sqlite_leg = db["ENGINE"] == "django.db.backends.sqlite3"  # portal.settings.test_sqlite
    try:
        if not sqlite_leg:
            psycopg.connect(
                host=db.get("HOST") or "127.0.0.1",
                port=db.get("PORT") or 5432,
                user=db.get("USER") or None,
                password=db.get("PASSWORD") or None,
                dbname="postgres",  # pytest-django creates test_<NAME> from here
                connect_timeout=3,
            ).close()
    except Exception as exc:
        problems.append(
            f"PostgreSQL at {db.get('HOST')}:{db.get('PORT')} is not reachable: {exc}".strip()
        )
    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        problems.append(f"Redis at {settings.CELERY_BROKER_URL} is not reachable: {exc}")
    return problems


def pytest_sessionstart(session):
    problems = _reachability_problems()
    if problems:
        pytest.exit(
            "The tests use real services and cannot run without them:\n  - "
            + "\n  - ".join(problems)
            + "\nStart them, or point TEST_DATABASE_URL / TEST_REDIS_URL at running ones.",
            returncode=3,
        )


def pytest_sessionfinish(session, exitstatus):
    """Drop this session's private Celery queues from the shared Redis."""
    import redis

    from portal.queues import all_queues

    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=3)
        for queue in all_queues():
            client.delete(queue, *[f"{queue}\x06\x16{p}" for p in range(10)])
    except Exception:  # noqa: S110 - best-effort cleanup; the run's result stands
        pass


@pytest.fixture
def make_user(db):
    def make(*roles: str, **kwargs):
        return UserFactory(roles=roles, **kwargs)

    return make


@pytest.fixture
def role_client(client, make_user):
    """A test client signed in as a fresh user holding the given roles."""

    def sign_in(*roles: str):
        user = make_user(*roles)
        client.force_login(user)
        return client

    return sign_in


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` (SQLite, loopback, free port) shared by the session's tests
    (registry, the ADO simulator's MLflow target). Tests add models with unique names."""
    from registry.devserver import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow")).start()
    yield server
    server.stop()


@pytest.fixture
def mlflow_client(mlflow_server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.url)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, tmp_path_factory):
    """A real `celery worker` process on the session's Redis queues (all of them, as the
    embedded default runs one), stopped by its pid."""
    import os
    import signal
    import subprocess
    import sys

    from django.db import connection

    from portal.queues import all_queues
    from portal.tasks import ping

    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    test_db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
        "PROMETHEUS_MULTIPROC_DIR": settings.PROMETHEUS_MULTIPROC_DIR,
        "TEST_REDIS_URL": settings.CELERY_BROKER_URL,
        # the worker uses the database pytest-django created, not the one it was named after
        "TEST_DATABASE_URL": (
            f"postgres://{test_db['USER']}@{test_db['HOST']}:{test_db['PORT']}/"
            f"{connection.settings_dict['NAME']}"
        ),
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--queues",
                ",".join(all_queues()),  # the session's default, deliveries, syncs, maintenance
                "--hostname",
                f"test-worker-{os.getpid()}@%h",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=settings.BASE_DIR,
        )
    try:
        try:
            ping.apply_async().get(timeout=60)  # answered once the worker consumes
        except Exception as exc:
            raise RuntimeError(f"worker did not start: {exc}\n{log_path.read_text()}") from exc
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def entra(tmp_path):
    """A started local stand-in of the Entra ID endpoints over HTTPS (tests/entra/standin.py)."""
    from tests.entra.standin import EntraStandIn

    standin = EntraStandIn(workdir=tmp_path / "entra").start()
    try:
        yield standin
        assert not standin.errors, f"the Entra stand-in failed: {standin.errors}"
    finally:
        standin.stop()


@pytest.fixture
def entra_on(settings, entra):
    """The portal configured for the stand-in (its CA trusted through ENTRA_CA_BUNDLE)."""
    settings.ENTRA_TENANT_ID = entra.tenant_id
    settings.ENTRA_CLIENT_ID = entra.client_id
    settings.ENTRA_CLIENT_SECRET = entra.client_secret
    settings.ENTRA_AUTHORITY = entra.authority
    settings.ENTRA_CA_BUNDLE = entra.ca_file
    settings.ENTRA_ENABLED = True
    settings.LOCAL_ACCOUNTS_ENABLED = True
    return entra
