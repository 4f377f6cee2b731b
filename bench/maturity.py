"""Benchmark of the maturity assessment: 5,000 catalog models with realistic evidence.

    .venv/bin/python bench/maturity.py [--models 5000 --weeks 52 --requests 20]

What it does, every time from scratch:

1. creates a PostgreSQL database of its own (default ``portal_bench_maturity``; never the test
   database) and migrates it;
2. writes, with ``bulk_create``, ``--models`` catalog models across 6 teams (every fifth one
   rule-based, the others with a registered model and 4 versions in a central registry) and,
   per model, a CI, a data-cleansing, a training (rule-based: scoring) and a release pipeline
   with runs spread over the last 120 days (so some fall outside the 90-day window). Each
   model aims at a level from 0 to 5 (model index modulo 6) and gets the runs that level
   needs: CI runs on push (level 0: by hand), scheduled training runs linked to a tagged
   version, release runs with Build / QA / PROD stages gated by approvals decided by two
   people (and an ApprovalRequest each), data-cleansing runs followed within hours by a
   resource-triggered training run, a drift-triggered run whose version went to PROD. One
   model in 20 has a version whose MLflow run was never read (reproducible: not measured)
   and one in 25 a release whose stages are not read yet. Synced ADO project, registry
   source and approvals poll. Then ``--weeks`` weeks of past snapshots (one row per model
   and week), as a year of nightly runs leaves them;
3. ``VACUUM ANALYZE``, then times, in-process: ``services.models_assess()`` of every model
   (the first run, which writes a record per model, then a second run on the same data,
   which writes nothing), with their SQL query counts; ``services.snapshot_take()``;
4. signs in a manager (session cookie), serves the portal with gunicorn (1 sync worker, a
   free port) and times ``--requests`` sequential GETs of the dashboard (``maturity:
   dashboard``, first page of 50 models, the distribution and a 52-week trend) and of the
   CSV export of every model (``maturity:dashboard-csv``, streamed), after 3 warm-ups each;
5. writes the results into docs/performance.md between the ``bench:maturity`` markers (adding
   the section at the end the first time), stops gunicorn by its pid and drops the database.

``--profile FILE`` cProfiles the first assessment into FILE and prints its top functions.
Settings are portal.settings.test with TEST_DATABASE_URL pointed at the bench database (set
BENCH_DATABASE_URL to choose another server or name; the name must contain "bench").
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# This file is in bench/, beside pipelines.py and registry.py: that folder must not shadow the
# apps of the same names.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(BASE_DIR))

from bench.common import (  # noqa: E402 (after the path fix above)
    bench_database_url,
    check,
    database_drop,
    database_recreate,
    django_setup_on_bench_database,
    load_average,
    machine_facts,
    report_write,
)
from bench.registry import Gunicorn, percentiles, timed  # noqa: E402

SECTION_TITLE = "## Maturity: assessing 5,000 models, the dashboard and its CSV"
TEAMS = ("risk", "growth", "operations", "pricing", "marketing", "supply")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TARGET_ASSESS_SECONDS = 60.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=5000, help="catalog models")
    parser.add_argument("--weeks", type=int, default=52, help="weeks of past snapshots")
    parser.add_argument("--requests", type=int, default=20, help="GETs per page")
    parser.add_argument("--db-name", default="portal_bench_maturity", help="bench database name")
    parser.add_argument(
        "--output",
        default=str(BASE_DIR / "docs" / "performance.md"),
        help="Markdown file whose bench:maturity section is (re)written",
    )
    parser.add_argument("--profile", metavar="FILE", help="cProfile the first assessment")
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    return parser.parse_args(argv)


# Seeding ---------------------------------------------------------------------------------------


class Seeder:
    """Builds the rows with bulk_create, in the order the foreign keys need."""

    def __init__(self, now: dt.datetime):
        self.now = now
        self.ado_ids = iter(range(1, 10**9))
        self.counts: Counter = Counter()

    def ago(self, days: float = 0, hours: float = 0) -> dt.datetime:
        return self.now - dt.timedelta(days=days, hours=hours)

    def run(self, pipeline, *, queued, reason="manual", trigger="", result="succeeded", **kw):
        from pipelines.models import PipelineRun

        ado_id = next(self.ado_ids)
        started = queued + dt.timedelta(minutes=2)
        return PipelineRun(
            pipeline=pipeline,
            ado_id=ado_id,
            name=f"{queued:%Y%m%d}.{ado_id}",
            state="completed",
            result=result,
            reason=reason,
            trigger=trigger,
            requested_by="Release Bot" if reason != "manual" else "Dana Scientist",
            queued_at=queued,
            started_at=started,
            finished_at=started + dt.timedelta(minutes=25),
            source_branch="refs/heads/main",
            source_version=kw.pop("source_version", COMMIT),
            web_url=f"https://dev.azure.com/contoso/MLOps/_build/results?buildId={ado_id}",
            last_synced_at=self.now,
            **kw,
        )

    def seed(self, count: int, weeks: int) -> dict:
        from approvals.models import ApprovalRequest, ApprovalSync
        from maturity.models import MaturitySnapshot
        from maturity.services import week_of
        from pipelines.models import AdoProject, Pipeline, PipelineRun, RunStage
        from registry.models import CatalogModel, ModelVersion, RegisteredModel, RegistrySource

        started = time.perf_counter()
        project = AdoProject.objects.create(
            name="mlops",
            organization_url="https://dev.azure.com/contoso",
            project="MLOps",
            last_sync_succeeded_at=self.now,
        )
        ApprovalSync.objects.create(project=project, last_succeeded_at=self.now)
        central = RegistrySource.objects.create(
            name="central",
            tracking_uri="http://mlflow.bench.invalid",
            is_central=True,
            last_sync_succeeded_at=self.now,
        )
        models = CatalogModel.objects.bulk_create(
            CatalogModel(
                name=f"{TEAMS[i % len(TEAMS)]}-model-{i:05d}",
                description="A benchmark model.",
                kind="rule_based" if i % 5 == 4 else "",
                registry_kind="" if i % 5 == 4 else "ml",
                registry_team=TEAMS[i % len(TEAMS)],
                registry_serving="real_time" if i % 3 == 0 else "batch",
                team=TEAMS[i % len(TEAMS)] if i % 7 == 0 else "",
            )
            for i in range(count)
        )
        ml = [(i, m) for i, m in enumerate(models) if m.kind != "rule_based"]
        registered = dict(
            zip(
                [i for i, _ in ml],
                RegisteredModel.objects.bulk_create(
                    RegisteredModel(
                        source=central,
                        catalog_model=m,
                        name=m.name,
                        created_upstream_at=self.ago(200),
                        updated_upstream_at=self.ago(1),
                        last_synced_at=self.now,
                    )
                    for _, m in ml
                ),
                strict=True,
            )
        )
        version_rows = []
        for i, rm in registered.items():
            for number in range(1, 5):
                unread = i % 20 == 7 and number == 4
                tags = {} if unread else {"mlflow.source.git.commit": COMMIT}
                if not unread and (self.level(i) >= 2 or number < 4):
                    tags["data_snapshot"] = f"2026-{number:02d}-01"
                version_rows.append(
                    ModelVersion(
                        registered_model=rm,
                        version=number,
                        status="READY",
                        user_id="dana@example.com",
                        source_uri=f"models:/{rm.name}/{number}",
                        run_id=uuid.UUID(int=i * 10 + number).hex,
                        experiment_id="1",
                        tags=tags,
                        metrics={"auc": 0.8 + number / 100},
                        params={"max_depth": "6"},
                        run_fetched_at=None if unread else self.now,
                        created_upstream_at=self.ago(100 - number * 20),
                        updated_upstream_at=self.ago(1),
                        last_synced_at=self.now,
                    )
                )
        versions: dict[int, list] = {}
        for version in ModelVersion.objects.bulk_create(version_rows, batch_size=5000):
            versions.setdefault(version.registered_model_id, []).append(version)

        kinds = ("ci", "data_cleansing", "training", "release")
        pipeline_rows = []
        for i, m in enumerate(models):
            for kind in kinds:
                if kind == "training" and m.kind == "rule_based":
                    kind = "scoring"
                pipeline_rows.append(
                    Pipeline(
                        project=project,
                        ado_id=next(self.ado_ids),
                        name=f"{m.name}-{kind}",
                        folder=f"\\{TEAMS[i % len(TEAMS)]}\\{m.name}",
                        kind=kind,
                        catalog_model=m,
                        last_synced_at=self.now,
                    )
                )
        pipelines = Pipeline.objects.bulk_create(pipeline_rows, batch_size=5000)
        by_model = {}
        for pipeline in pipelines:
            by_model.setdefault(pipeline.catalog_model_id, {})[
                "training" if pipeline.kind == "scoring" else pipeline.kind
            ] = pipeline

        runs, releases = [], []  # releases: (run, version, gated, read)
        for i, m in enumerate(models):
            level, p = self.level(i), by_model[m.pk]
            mine = versions.get(registered[i].pk, []) if i in registered else []
            latest = mine[-1] if mine else None
            # CI: every 12 days over 120 days (the oldest outside the window).
            for n in range(10):
                runs.append(
                    self.run(
                        p["ci"],
                        queued=self.ago(days=2 + n * 12, hours=i % 24),
                        reason="individualCI" if level >= 1 or n % 2 else "manual",
                        result="failed" if n % 4 == 3 or level == 0 else "succeeded",
                    )
                )
            # Training (scoring): scheduled weekly from level 2, by hand below.
            for n in range(8):
                runs.append(
                    self.run(
                        p["training"],
                        queued=self.ago(days=3 + n * 14, hours=i % 12),
                        reason="schedule" if level >= 2 else "manual",
                        model_version=latest if level >= 2 else None,
                        result="failed" if n == 5 else "succeeded",
                    )
                )
            if level >= 3:
                for n in range(3):
                    releases.append(
                        (
                            self.run(
                                p["release"],
                                queued=self.ago(days=5 + n * 20),
                                reason="manual",
                                model_version=latest,
                                timeline_synced_at=None if (i % 25 == 3 and n == 0) else self.now,
                            ),
                            latest,
                        )
                    )
            if level >= 4:
                for n in range(6):
                    cleansing = self.run(
                        p["data_cleansing"], queued=self.ago(days=4 + n * 10), reason="schedule"
                    )
                    runs.append(cleansing)
                    runs.append(
                        self.run(
                            p["training"],
                            queued=cleansing.finished_at + dt.timedelta(hours=1 + (i % 5)),
                            reason="resourceTrigger",
                            model_version=latest,
                        )
                    )
            if level >= 5:
                runs.append(
                    self.run(
                        p["training"],
                        queued=self.ago(days=6),
                        trigger="drift",
                        model_version=latest,
                    )
                )
        runs += [run for run, _ in releases]
        PipelineRun.objects.bulk_create(runs, batch_size=5000)

        stages, approval_rows = [], []
        for run, _version in releases:
            if run.timeline_synced_at is None:
                continue
            for order, env in enumerate(("", "QA", "PROD")):
                stages.append(
                    RunStage(
                        run=run,
                        record_id=uuid.uuid4().hex,
                        identifier=f"Deploy_{env}" if env else "Build",
                        name=f"Deploy_{env}" if env else "Build",
                        order=order,
                        environment=env,
                        state="completed",
                        result="succeeded",
                        approval_ids=[uuid.uuid4().hex] if env else [],
                        started_at=run.started_at + dt.timedelta(minutes=5 * order),
                        finished_at=run.started_at + dt.timedelta(minutes=5 * order + 4),
                    )
                )
        RunStage.objects.bulk_create(stages, batch_size=5000)
        for stage in stages:
            if not stage.environment:
                continue
            run = stage.run
            approval_rows.append(
                ApprovalRequest(
                    project=project,
                    ado_id=stage.approval_ids[0],
                    run=run,
                    stage=stage,
                    build_id=run.ado_id,
                    pipeline_name=run.pipeline.name,
                    run_name=run.name,
                    stage_name=stage.name,
                    environment=stage.environment,
                    catalog_model_id=run.pipeline.catalog_model_id,
                    model_version=run.model_version,
                    status="approved",
                    ado_status="approved",
                    created_on=stage.started_at,
                    decided_at=stage.started_at + dt.timedelta(minutes=3),
                    decided_by="Alice Approver" if stage.environment == "QA" else "Bob Approver",
                    decided_in="portal",
                    last_synced_at=self.now,
                )
            )
        ApprovalRequest.objects.bulk_create(approval_rows, batch_size=5000)

        this_week = week_of(self.now.date())
        snapshot_rows = []
        for n in range(1, weeks + 1):
            for i, m in enumerate(models):
                level = max(0, self.level(i) - (1 if (i + n) % (n // 8 + 2) == 0 else 0))
                snapshot_rows.append(
                    MaturitySnapshot(
                        week=this_week - dt.timedelta(weeks=n),
                        catalog_model=m,
                        team=m.effective_team,
                        kind=m.effective_kind,
                        serving=m.effective_serving,
                        assessed_level=level,
                        level=level,
                        taken_at=self.now,
                    )
                )
        MaturitySnapshot.objects.bulk_create(snapshot_rows, batch_size=10000)
        return {
            "seconds": time.perf_counter() - started,
            "models": len(models),
            "rule_based": len(models) - len(ml),
            "versions": len(version_rows),
            "pipelines": len(pipelines),
            "runs": len(runs),
            "runs_in_window": sum(r.queued_at >= self.ago(90) for r in runs),
            "stages": len(stages),
            "approvals": len(approval_rows),
            "snapshots": len(snapshot_rows),
        }

    @staticmethod
    def level(i: int) -> int:
        """The level model ``i`` is built for."""
        return i % 6


# Measuring -------------------------------------------------------------------------------------


class QueryCount:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def measured(fn, *args, **kwargs):
    from django.db import connection

    counter = QueryCount()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        value = fn(*args, **kwargs)
        seconds = time.perf_counter() - started
    return value, seconds, counter.count


def main(argv=None) -> int:
    args = parse_args(argv)
    check(args.models >= 6, "--models must be at least 6")
    db_url = bench_database_url(args.db_name)
    command = " ".join([".venv/bin/python bench/maturity.py", *(argv or sys.argv[1:])])
    results: dict = {"args": vars(args), "command": command}

    name = django_setup_on_bench_database(
        db_url,
        CELERY_QUEUE=f"bench-maturity-{uuid.uuid4().hex[:12]}",  # the queue is not used
    )
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from maturity import services
    from maturity.models import MaturityRecord, ModelMaturity

    print(f"Bench database: {name} (recreated)")
    pg_version = database_recreate(db_url)
    gunicorn = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-maturity-"))
    try:
        call_command("migrate", interactive=False, verbosity=0)
        print(f"Seeding {args.models:,} models and {args.weeks} weeks of snapshots...")
        results["seed"] = Seeder(timezone.now()).seed(args.models, args.weeks)
        print(f"  {results['seed']}")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        results["load_before"] = os.getloadavg()

        print("Assessing every model (first run: writes)...")
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        first, seconds, queries = measured(services.models_assess)
        if args.profile:
            profiler.disable()
            profiler.dump_stats(args.profile)
            pstats.Stats(args.profile).sort_stats("cumulative").print_stats(25)
        results["first"] = {"stats": first.as_dict(), "seconds": seconds, "queries": queries}
        check(first.assessed == args.models and first.written == args.models, first.as_dict())
        print(f"  {seconds:.1f} s, {queries} queries: {first.as_dict()}")

        records = MaturityRecord.objects.count()
        print("Assessing every model again (nothing changed: writes nothing)...")
        second, seconds, queries = measured(services.models_assess)
        results["second"] = {"stats": second.as_dict(), "seconds": seconds, "queries": queries}
        check(second.written == 0 and second.unchanged == args.models, second.as_dict())
        check(MaturityRecord.objects.count() == records, "no new record")
        print(f"  {seconds:.1f} s, {queries} queries")

        taken, seconds, queries = measured(services.snapshot_take)
        results["snapshot"] = {"rows": taken, "seconds": seconds, "queries": queries}
        check(taken == args.models, f"{taken} snapshot rows")
        print(f"snapshot_take: {taken} rows in {seconds:.2f} s")
        results["levels"] = dict(
            sorted(Counter(ModelMaturity.objects.values_list("level", flat=True)).items())
        )
        results["unmeasured"] = ModelMaturity.objects.filter(unmeasured_level__isnull=False).count()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")

        # Pages, served by gunicorn, as a signed-in manager.
        import requests
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.urls import reverse

        from core.roles import Role
        from portal.services import role_groups_ensure
        from registry.devserver import free_port

        manager = get_user_model().objects.create_user(
            "bench-manager",
            "bench-manager@example.com",
            "not-used-bench-only",
            first_name="Bench",
            last_name="Manager",
        )
        manager.groups.add(role_groups_ensure()[Role.MANAGER])
        login = Client()
        login.force_login(manager)
        cookie = {settings.SESSION_COOKIE_NAME: login.cookies[settings.SESSION_COOKIE_NAME].value}
        pages = {
            "dashboard": reverse("maturity:dashboard"),
            "dashboard, by kind, one team": reverse("maturity:dashboard") + "?team=risk&by=kind",
            "CSV export, every model": reverse("maturity:dashboard-csv"),
        }
        results["page_queries"] = {}
        for label, path in pages.items():
            _, _, queries = measured(lambda path=path: b"".join(_content(login.get(path))))
            results["page_queries"][label] = queries
        connection.close()
        gunicorn = Gunicorn(
            {**os.environ, "WEB_CONCURRENCY": "1"}, free_port(), tmp / "gunicorn.log"
        ).start()
        http = requests.Session()
        http.cookies.update(cookie)
        latencies = {}
        for label, path in pages.items():

            def get(i, path=path):
                response = http.get(gunicorn.url + path, timeout=120)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.url}: {response.status_code}")
                return response

            body = get(0)
            samples = timed(get, args.requests)
            latencies[label] = {"samples": samples, "bytes": len(body.content), "path": path}
            if label.startswith("CSV"):
                rows = body.content.decode().count("\n") - 1
                check(rows == args.models, f"{rows} CSV rows")
            print(f"  {label}: p50/p95 {percentiles(samples)}")
        gunicorn.stop()
        results["pages"] = latencies
        results["load_after"] = os.getloadavg()
        results["facts"] = machine_facts(pg_version)
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
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            database_drop(db_url)
            print("Bench database dropped.")
    return 0


def _content(response):
    return response.streaming_content if response.streaming else [response.content]


# The report ------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def render(results: dict) -> str:
    args, facts, seed = results["args"], results["facts"], results["seed"]
    first, second, snap = results["first"], results["second"], results["snapshot"]
    levels = ", ".join(
        f"L{level}: {n:,}" if level is not None else f"none: {n:,}"
        for level, n in results["levels"].items()
    )
    lines = [
        f"Run on {results['date']} with:",
        "",
        "```bash",
        results["command"] or ".venv/bin/python bench/maturity.py",
        "```",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']} memory, "
        f"{facts['os']}; PostgreSQL {facts['postgresql']}, Python {facts['python']}, Django "
        f"{facts['django']}.",
        f"Load average (1, 5, 15 min) before the assessment: "
        f"{load_average(results['load_before'])}; after the pages: "
        f"{load_average(results['load_after'])} (the machine is shared: other work running at "
        "the same time shows here).",
        "",
        f"Data (bulk-created in {seed['seconds']:.0f} s): {seed['models']:,} catalog models "
        f"({seed['rule_based']:,} rule-based) built for levels 0 to 5 in equal parts, "
        f"{seed['versions']:,} versions, {seed['pipelines']:,} pipelines, {seed['runs']:,} runs "
        f"({seed['runs_in_window']:,} in the 90-day window), {seed['stages']:,} release stages, "
        f"{seed['approvals']:,} approval requests and {seed['snapshots']:,} snapshot rows "
        f"({args['weeks']} past weeks). Assessed levels: {levels}; "
        f"{results['unmeasured']:,} models with a level not measured.",
        "",
        "| measurement | time | SQL queries |",
        "| --- | --- | --- |",
        f"| `models_assess()` of all {seed['models']:,} models, first run "
        f"({first['stats']['written']:,} records written) | {first['seconds']:.1f} s "
        f"| {first['queries']:,} |",
        f"| `models_assess()` again, nothing changed ({second['stats']['written']} written, "
        f"{second['stats']['unchanged']:,} unchanged) | {second['seconds']:.1f} s "
        f"| {second['queries']:,} |",
        f"| `snapshot_take()` ({snap['rows']:,} rows) | {snap['seconds']:.2f} s "
        f"| {snap['queries']} |",
        "",
        f"Pages after `VACUUM ANALYZE`, {args['requests']} sequential requests each (after 3 "
        "warm-up requests), over HTTP on loopback: the portal served by gunicorn with 1 sync "
        "worker, signed in as a manager (session cookie). SQL queries counted on one request "
        "in-process.",
        "",
        "| request | p50 | p95 | response size | SQL queries |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, page in results["pages"].items():
        p50, p95 = percentiles(page["samples"])
        lines.append(
            f"| {label} (`{page['path']}`) | {_ms(p50)} | {_ms(p95)} "
            f"| {page['bytes'] / 1024:.0f} KiB | {results['page_queries'][label]} |"
        )
    verdict = "**met**" if first["seconds"] < TARGET_ASSESS_SECONDS else "**not met**"
    lines += [
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
        f"| assessing {seed['models']:,} models in under {TARGET_ASSESS_SECONDS:.0f} s "
        f"| {first['seconds']:.1f} s | {verdict} |",
    ]
    return "\n".join(lines)


def write_report(path: Path, report: str) -> None:
    intro = (
        f"{SECTION_TITLE}\n\n`bench/maturity.py` produces the numbers (what it does and its "
        "options: its docstring, `--help`, [bench/README.md](../bench/README.md)); it "
        "rewrites only the section between the `bench:maturity` markers below."
    )
    report_write(path, report, name="maturity", intro=intro)


if __name__ == "__main__":
    sys.exit(main())
