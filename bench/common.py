"""What both benchmarks share: their own PostgreSQL database, made and dropped around a run."""

from __future__ import annotations

import contextlib
import os
import platform
import urllib.parse
from pathlib import Path

DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/test"
# Databases a benchmark must never drop, whatever it is told.
PROTECTED_NAMES = {"test", "test_test", "postgres", "template0", "template1"}


def bench_database_url(db_name: str) -> str:
    explicit = os.environ.get("BENCH_DATABASE_URL")
    url = explicit or os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER_URL
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(f"The bench needs PostgreSQL, not {parts.scheme}://")
    if not explicit:
        parts = parts._replace(path=f"/{db_name}")
    name = parts.path.lstrip("/")
    if name in PROTECTED_NAMES or "bench" not in name:
        raise SystemExit(f"Refusing to use database {name!r}: the bench drops it at the end.")
    return urllib.parse.urlunsplit(parts)


def django_setup_on_bench_database(db_url: str, **env: str) -> str:
    """Point the test settings at the bench database (plus ``env``, e.g. a private queue) before
    Django reads them, set Django up, and refuse a database that is not the bench's own (the
    bench drops it at the end). Returns the database name."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"
    os.environ["TEST_DATABASE_URL"] = db_url
    os.environ.update(env)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings

    name = settings.DATABASES["default"]["NAME"]
    check(name == urllib.parse.urlsplit(db_url).path.lstrip("/"), f"database is {name}")
    check(name not in PROTECTED_NAMES and "bench" in name, f"database is {name}")
    return name


def admin_connection(url: str):
    import psycopg

    parts = urllib.parse.urlsplit(url)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=urllib.parse.unquote(parts.username or "") or None,
        password=urllib.parse.unquote(parts.password or "") or None,
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    )


def database_recreate(url: str) -> str:
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    with admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        return conn.execute("SHOW server_version").fetchone()[0]


def database_drop(url: str) -> None:
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    with admin_connection(url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def check(condition: bool, what) -> None:
    if not condition:
        raise RuntimeError(f"bench check failed: {what}")


def load_average(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def machine_facts(pg_version: str) -> dict:
    """Facts about this machine for the report: CPU, memory, versions."""
    memory_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import django

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": f"{memory_kb / 1024 / 1024:.1f} GiB" if memory_kb else "unknown",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": pg_version,
        "django": django.get_version(),
    }


def report_write(path: Path, report: str, *, name: str, intro: str = "") -> None:
    """Put ``report`` between the ``bench:<name>`` markers of ``path`` (docs/performance.md),
    leaving the rest of the file alone; the first time, add the section (``intro`` first)."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    section = f"{start}\n{report}\n{end}"
    text = path.read_text() if path.is_file() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = (text.rstrip() + "\n\n" if text else "# Performance\n\n") + (
            f"{intro}\n\n" if intro else ""
        )
        text += section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
