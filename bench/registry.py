"""Benchmark of the registry mirror: sync times and page latencies at scale, beside MLflow.

    .venv/bin/python bench/registry.py [--models 5000 --versions 4]

What it does, every time from scratch:

1. starts a fresh `mlflow server` (registry.devserver.MlflowServer: SQLite, loopback, a free port)
   and seeds N registered models x V versions through MLflow's REST API (one requests.Session per
   thread, 8 threads); each version has a source run with 3 metrics and 3 params;
2. creates a PostgreSQL database of its own (default `portal_bench`, beside the test database on
   the same server; never the test database itself), migrates it and adds a RegistrySource;
3. measures a full sync, then a no-change incremental sync 3 times (median);
4. serves the portal with gunicorn (1 sync worker, like MLflow's 1 uvicorn worker) on a free port
   and measures p50 / p95 over 50 requests each of the model list page, a model page and the
   models API as a signed-in data scientist, and MLflow's own `search_registered_models
   (max_results=50)` over HTTP in the same run;
5. writes the results into docs/performance.md (between the bench markers) and drops the database.

Settings are portal.settings.test with TEST_DATABASE_URL pointed at the bench database (set
BENCH_DATABASE_URL to choose another server or name; the name must contain "bench").
Every process it starts is stopped by its own pid.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import os
import pstats
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# This file is bench/registry.py: its folder must not shadow the `registry` app.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(BASE_DIR))

from bench.common import (  # noqa: E402 (after the path fix above)
    PROTECTED_NAMES,
    bench_database_url,
    check,
    database_drop,
    database_recreate,
    load_average,
    machine_facts,
    report_write,
)

TEAMS = ("risk", "growth", "operations")
MLFLOW_CLIENT = "MLflow `search_registered_models(max_results=50)` (MlflowClient)"
MLFLOW_REST = "MLflow registered-models search, same page (plain GET)"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=5000, help="registered models to seed")
    parser.add_argument("--versions", type=int, default=4, help="versions per model")
    parser.add_argument("--requests", type=int, default=50, help="requests per page measured")
    parser.add_argument("--threads", type=int, default=8, help="threads seeding MLflow")
    parser.add_argument("--db-name", default="portal_bench", help="bench database name")
    parser.add_argument(
        "--output",
        default=str(BASE_DIR / "docs" / "performance.md"),
        help="Markdown file whose bench section is (re)written",
    )
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    parser.add_argument(
        "--mlflow-dir",
        help="keep the MLflow store in this folder: seeded when empty, reused as it is otherwise "
        "(to rerun without seeding again); default: a temporary folder, removed",
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="cProfile the full sync into FILE and a model list page into FILE.list-page "
        "(and print their top functions); the timings then include the profiler's overhead",
    )
    return parser.parse_args(argv)


# The bench database ------------------------------------------------------------------------


# Seeding MLflow over REST --------------------------------------------------------------------


class MlflowRest:
    """A requests.Session per thread against MLflow's REST API, retrying transient failures."""

    def __init__(self, url: str):
        self.url = url.rstrip("/") + "/api/2.0/mlflow/"
        self.local = threading.local()

    def session(self):
        import requests

        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def post(self, path: str, body: dict, *, exists_ok: bool = False) -> dict:
        import requests

        for attempt in range(6):
            try:
                response = self.session().post(self.url + path, json=body, timeout=60)
            except requests.ConnectionError:
                time.sleep(0.5 * (attempt + 1))
                continue
            if response.status_code == 200:
                return response.json()
            if exists_ok and "RESOURCE_ALREADY_EXISTS" in response.text:
                return {}
            if response.status_code >= 500 or "database is locked" in response.text:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:500]}")
        raise RuntimeError(f"{path}: still failing after retries")


def _seed_model(rest: MlflowRest, experiment_id: str, index: int, versions: int) -> None:
    name = f"bench-model-{index:05d}"
    team = TEAMS[index % len(TEAMS)]
    rest.post(
        "registered-models/create",
        {
            "name": name,
            "description": f"Benchmark model {index} of team {team}.",
            "tags": [
                {"key": "team", "value": team},
                {"key": "model_kind", "value": "rule_based" if index % 7 == 0 else "ml"},
                {"key": "serving", "value": "real_time" if index % 3 == 0 else "batch"},
            ],
        },
        exists_ok=True,
    )
    now = int(time.time() * 1000)
    for number in range(1, versions + 1):
        run = rest.post(
            "runs/create",
            {
                "experiment_id": experiment_id,
                "start_time": now,
                "run_name": f"{name}-v{number}",
                "tags": [{"key": "team", "value": team}],
            },
        )["run"]
        run_id = run["info"]["run_id"]
        rest.post(
            "runs/log-batch",
            {
                "run_id": run_id,
                "metrics": [
                    {"key": "auc", "value": 0.7 + 0.05 * number, "timestamp": now, "step": 0},
                    {"key": "f1", "value": 0.5 + 0.04 * number, "timestamp": now, "step": 0},
                    {"key": "log_loss", "value": 0.5 - 0.05 * number, "timestamp": now, "step": 0},
                ],
                "params": [
                    {"key": "learning_rate", "value": "0.05"},
                    {"key": "max_depth", "value": str(4 + number)},
                    {"key": "n_estimators", "value": str(200 * number)},
                ],
            },
        )
        rest.post(
            "model-versions/create",
            {
                "name": name,
                "source": f"runs:/{run_id}/model",
                "run_id": run_id,
                "description": f"Version {number} of {name}.",
                "tags": [{"key": "validation_status", "value": "passed"}],
            },
        )
    rest.post(
        "registered-models/alias",
        {"name": name, "alias": "champion", "version": str(max(1, versions - 1))},
    )


def mlflow_model_count(url: str) -> int:
    import requests

    count, token = 0, None
    while True:
        params = {"max_results": 1000, **({"page_token": token} if token else {})}
        page = requests.get(
            f"{url}/api/2.0/mlflow/registered-models/search", params=params, timeout=60
        ).json()
        count += len(page.get("registered_models", []))
        token = page.get("next_page_token")
        if not token:
            return count


def seed_mlflow(url: str, models: int, versions: int, threads: int) -> float:
    rest = MlflowRest(url)
    started = time.perf_counter()
    experiment_id = rest.post("experiments/create", {"name": "bench"})["experiment_id"]
    done = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [
            pool.submit(_seed_model, rest, experiment_id, i, versions) for i in range(models)
        ]
        for future in as_completed(futures):
            future.result()
            done += 1
            if done % 500 == 0 or done == models:
                elapsed = time.perf_counter() - started
                print(f"  seeded {done}/{models} models ({done / elapsed:.0f} models/s)")
    return time.perf_counter() - started


# Measuring ---------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds (inclusive method: fine for 50 samples)."""
    ms = sorted(s * 1000 for s in samples)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return statistics.median(ms), cuts[94]


def timed(fn, count: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn(0)
    samples = []
    for i in range(count):
        started = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - started)
    return samples


class Gunicorn:
    """The portal served by gunicorn (``workers`` sync workers, 1 by default) on a free port,
    stopped by its pid."""

    def __init__(self, env: dict, port: int, log_path: Path, workers: int = 1):
        self.env, self.port, self.log_path = env, port, log_path
        self.workers = workers
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Gunicorn:
        import requests

        command = [
            str(Path(sys.executable).with_name("gunicorn")),
            "portal.wsgi",
            "-c", str(BASE_DIR / "gunicorn.conf.py"),
            "-b", f"127.0.0.1:{self.port}",
            "-w", str(self.workers),
            "--access-logfile", "/dev/null",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command, env=self.env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_path.read_text()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"gunicorn not up after {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def profile_page(client, path: str, stats_file: str) -> None:
    """One request in-process (Django test Client): its SQL queries and where Python spends."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path)  # warm caches (templates, content types)
    profiler = cProfile.Profile()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        profiler.enable()
        response = client.get(path)
        profiler.disable()
        elapsed = time.perf_counter() - started
    sql_seconds = sum(float(q["time"]) for q in queries.captured_queries)
    print(
        f"\n{path}: {response.status_code}, {elapsed * 1000:.0f} ms under the profiler, "
        f"{len(queries)} SQL queries taking {sql_seconds * 1000:.0f} ms"
    )
    for q in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:5]:
        print(f"  {float(q['time']) * 1000:7.1f} ms  {q['sql'][:300]}")
    profiler.dump_stats(stats_file)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def registry_machine_facts(pg_version: str) -> dict:
    import mlflow

    return {**machine_facts(pg_version), "mlflow": mlflow.__version__}


def main(argv=None) -> int:
    args = parse_args(argv)
    db_url = bench_database_url(args.db_name)
    # Before Django reads its settings: the test settings on the bench database, nothing else.
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings.test"
    os.environ["TEST_DATABASE_URL"] = db_url
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    command = " ".join([".venv/bin/python bench/registry.py", *(argv or sys.argv[1:])])

    from registry.devserver import MlflowServer, free_port

    print(f"Bench database: {urllib.parse.urlsplit(db_url).path.lstrip('/')} (recreated)")
    pg_version = database_recreate(db_url)
    workdir = Path(args.mlflow_dir or tempfile.mkdtemp(prefix="portal-bench-mlflow-"))
    tmp = Path(tempfile.mkdtemp(prefix="portal-bench-"))
    server = gunicorn = None
    results: dict = {"args": vars(args), "command": command}
    try:
        print("Starting mlflow server...")
        server = MlflowServer(workdir).start()
        held = mlflow_model_count(server.url)
        if held and held != args.models:
            raise SystemExit(f"{workdir} holds {held} models, not {args.models}: use another one")
        if held:
            print(f"Reusing the {held} models in {workdir} (not seeding)")
            results["seed_seconds"] = None
        else:
            print(f"Seeding {args.models} models x {args.versions} versions into {server.url}")
            results["seed_seconds"] = seed_mlflow(
                server.url, args.models, args.versions, args.threads
            )

        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection

        name = settings.DATABASES["default"]["NAME"]
        check(name == urllib.parse.urlsplit(db_url).path.lstrip("/"), f"database is {name}")
        check(name not in PROTECTED_NAMES, f"database is {name}")
        started = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        results["migrate_seconds"] = time.perf_counter() - started

        from registry import services
        from registry.models import ModelVersion, RegisteredModel, RegistrySource

        source = RegistrySource.objects.create(
            name="bench", tracking_uri=server.url, ui_url=server.url, is_central=True
        )

        # Full sync, with the time of each phase.
        marks: dict[str, float] = {}

        def progress(stage: str, done: int, total: int | None) -> None:
            if total is not None:
                marks.setdefault(f"{stage}:{'end' if done == total else 'start'}", time.time())

        # What a worker has done before its first sync: import MLflow (seconds, once).
        from registry.client import RegistryClient

        RegistryClient.for_source(source)

        results["load_before_sync"] = os.getloadavg()
        print("Full sync...")
        profiler = cProfile.Profile() if args.profile else None
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.time()
        if profiler:
            profiler.enable()
        full = services.registry_sync(source=source, full=True, progress=progress)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        t_end = time.time()
        check(full.ok, full.as_dict())
        results["full"] = full.as_dict()
        results["full_seconds"] = full.duration_seconds
        results["full_phases"] = {
            "read models": marks.get("models:end", t0) - t0,
            "read versions": marks.get("versions:end", t0) - marks.get("models:end", t0),
            "read runs": marks.get("runs:end", t0) - marks.get("versions:end", t0),
            "write mirror": t_end - marks.get("runs:end", t0),
        }
        results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results["rss_before_mb"] = rss_before / 1024
        print(f"  {full.as_dict()}")
        check(RegisteredModel.objects.filter(source=source).count() == args.models, "model count")
        check(
            ModelVersion.objects.filter(registered_model__source=source).count()
            == args.models * args.versions,
            "version count",
        )

        print("No-change incremental sync x3...")
        incremental = []
        for _ in range(3):
            source.refresh_from_db()
            result = services.registry_sync(source=source)
            check(result.ok and result.mode == "incremental", result.as_dict())
            check(result.models.changed == 0 and result.versions.changed == 0, result.as_dict())
            incremental.append(result.duration_seconds)
        results["incremental_seconds"] = incremental
        source.refresh_from_db()
        started = time.perf_counter()
        again = services.registry_sync(source=source, full=True)
        results["full_nochange_seconds"] = time.perf_counter() - started
        check(again.ok and again.models.changed == 0, again.as_dict())
        print(f"  incremental {incremental}, full again {results['full_nochange_seconds']:.2f}s")

        # Fresh planner statistics, as autovacuum gives them within a minute of a bulk load:
        # with the stale ones the list's COUNT is misestimated and PostgreSQL JIT-compiles it.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")

        # Pages, served by gunicorn, as a signed-in data scientist.
        import requests
        from django.contrib.auth import get_user_model
        from django.test import Client

        from core.roles import Role
        from portal.services import role_groups_ensure

        user = get_user_model().objects.create_user(
            "bench-ds", "bench-ds@example.com", "not-used-bench-only"
        )
        user.groups.add(role_groups_ensure()[Role.DATA_SCIENTIST])
        login = Client()
        login.force_login(user)
        cookie = {settings.SESSION_COOKIE_NAME: login.cookies[settings.SESSION_COOKIE_NAME].value}
        connection.close()

        from django.urls import reverse

        names = [f"bench-model-{i:05d}" for i in range(0, args.models, max(1, args.models // 50))]
        pages = {
            "model list page": lambda i: reverse("registry:model-list"),
            "model page": lambda i: reverse(
                "registry:model-detail", kwargs={"name": names[i % len(names)]}
            ),
            "models API": lambda i: reverse("api:registry:model-list"),
        }
        if args.profile:
            profile_page(login, reverse("registry:model-list"), f"{args.profile}.list-page")
            connection.close()
        env = {**os.environ, "WEB_CONCURRENCY": "1"}
        log_path = tmp / "gunicorn.log"
        gunicorn = Gunicorn(env, free_port(), log_path).start()
        http = requests.Session()
        http.cookies.update(cookie)
        latencies = {}
        for label, path_of in pages.items():

            def get(i, path_of=path_of):
                response = http.get(gunicorn.url + path_of(i), timeout=60)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.url}: {response.status_code}")
                return response

            body = get(0)
            latencies[label] = {
                "samples": timed(get, args.requests),
                "bytes": len(body.content),
                "path": path_of(0),
            }
            print(f"  {label}: p50/p95 {percentiles(latencies[label]['samples'])}")
        gunicorn.stop()

        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=server.url)
        samples = timed(lambda i: client.search_registered_models(max_results=50), args.requests)
        latencies[MLFLOW_CLIENT] = {"samples": samples, "bytes": None, "path": "MlflowClient"}
        print(f"  MLflow search (MlflowClient): p50/p95 {percentiles(samples)}")
        search = f"{server.url}/api/2.0/mlflow/registered-models/search?max_results=50"
        raw = requests.Session()
        body = raw.get(search, timeout=60)
        samples = timed(lambda i: raw.get(search, timeout=60).raise_for_status(), args.requests)
        latencies[MLFLOW_REST] = {
            "samples": samples,
            "bytes": len(body.content),
            "path": "/api/2.0/mlflow/registered-models/search?max_results=50",
        }
        print(f"  MLflow search (REST): p50/p95 {percentiles(samples)}")
        results["latencies"] = latencies
        results["load_after_pages"] = os.getloadavg()
        results["facts"] = registry_machine_facts(pg_version)
        results["date"] = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        report = render(results)
        print()
        print(report)
        if not args.no_write:
            write_report(Path(args.output), report)
            print(f"Written to {args.output}")
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        if server is not None:
            server.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            database_drop(db_url)
            print("Bench database dropped.")
        if not args.mlflow_dir:
            shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


# The report ----------------------------------------------------------------------------------


def render(results: dict) -> str:
    args, facts = results["args"], results["facts"]
    load_before = load_average(results["load_before_sync"])
    load_after = load_average(results["load_after_pages"])
    full_s = results["full_seconds"]
    inc = results["incremental_seconds"]
    inc_median = statistics.median(inc)
    lat = results["latencies"]
    list_p95 = percentiles(lat["model list page"]["samples"])[1]
    mlflow_p95 = percentiles(lat[MLFLOW_CLIENT]["samples"])[1]
    rest_p95 = percentiles(lat[MLFLOW_REST]["samples"])[1]
    inc_ratio = inc_median / full_s
    list_ratio = list_p95 / mlflow_p95
    full = results["full"]
    seeded = (
        f"seeded over REST in {results['seed_seconds']:.0f} s ({args['threads']} threads)"
        if results["seed_seconds"] is not None
        else f"reused from an MLflow store seeded by an earlier run ({args['mlflow_dir']})"
    )
    lines = [
        f"Run on {results['date']} with:",
        "",
        "```bash",
        results["command"] or ".venv/bin/python bench/registry.py",
        "```",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']} memory, "
        f"{facts['os']}; PostgreSQL {facts['postgresql']}, Python {facts['python']}, "
        f"Django {facts['django']}, MLflow {facts['mlflow']} (server: SQLite, 1 uvicorn worker, "
        "same machine).",
        f"Load average (1, 5, 15 min) before the sync: {load_before}; "
        f"after the page measurements: {load_after} (the machine is "
        "shared: other work running at the same time shows here).",
        "",
        f"Data: {args['models']:,} registered models x {args['versions']} versions "
        f"({args['models'] * args['versions']:,} versions, each with a source run of 3 metrics "
        f"and 3 params), {seeded}; bench database migrated in "
        f"{results['migrate_seconds']:.1f} s.",
        "",
        "| measurement | result |",
        "| --- | --- |",
        f"| full sync (first, {full['models']['created']:,} models + "
        f"{full['versions']['created']:,} versions + {full['runs_read']:,} runs created) "
        f"| {full_s:.1f} s |",
    ]
    for phase, seconds in results["full_phases"].items():
        lines.append(f"| &nbsp;&nbsp;of which {phase} | {seconds:.1f} s |")
    lines += [
        f"| full sync again, nothing changed | {results['full_nochange_seconds']:.1f} s |",
        f"| incremental sync, nothing changed (median of 3: "
        f"{', '.join(f'{s * 1000:.0f}' for s in inc)} ms) | {inc_median * 1000:.0f} ms |",
        f"| peak memory of the syncing process (max RSS) | {results['max_rss_mb']:.0f} MB |",
        "",
        "Pages measured after `VACUUM ANALYZE` of the bench database (what autovacuum does "
        "shortly after a bulk load). "
        f"Latency over {args['requests']} sequential requests each (after 3 warm-up requests), "
        "over HTTP on loopback: the portal served by gunicorn with 1 sync worker, signed in as a "
        "data scientist (session cookie); MLflow through MlflowClient against the same server "
        "that was seeded.",
        "",
        "| request | p50 | p95 | response size |",
        "| --- | --- | --- | --- |",
    ]
    for label, data in lat.items():
        p50, p95 = percentiles(data["samples"])
        size = f"{data['bytes'] / 1024:.0f} KiB" if data["bytes"] else "—"
        where = "" if data["path"] == "MlflowClient" else f" (`{data['path']}`)"
        lines.append(f"| {label}{where} | {p50:.1f} ms | {p95:.1f} ms | {size} |")
    met = "**met**"
    missed = "**not met**"
    lines += [
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
        f"| no-change incremental sync < 5 % of a full sync | {inc_ratio * 100:.2f} % "
        f"({inc_median * 1000:.0f} ms / {full_s:.1f} s) | {met if inc_ratio < 0.05 else missed} |",
        f"| model list page p95 <= 1/5 of MLflow search p95 (MlflowClient) | "
        f"{list_ratio:.2f}x ({list_p95:.1f} ms / {mlflow_p95:.1f} ms) "
        f"| {met if list_ratio <= 0.2 else missed} |",
        f"| the same against the plain GET of MLflow's search | "
        f"{list_p95 / rest_p95:.2f}x ({list_p95:.1f} ms / {rest_p95:.1f} ms) "
        f"| {met if list_p95 / rest_p95 <= 0.2 else missed} |",
    ]
    return "\n".join(lines)


def write_report(path: Path, report: str) -> None:
    report_write(path, report, name="registry")


if __name__ == "__main__":
    sys.exit(main())
