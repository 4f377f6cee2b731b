"""Benchmark of a model's history page: 500 versions and 5,000 events (registry events and
deployment records) render with p95 < 150 ms.

    .venv/bin/python bench/history_page.py [--versions 500 --events 5000 --requests 50 --no-write]

What it does, every time from scratch:

1. creates a PostgreSQL database of its own (default ``portal_bench_deploy_history``; never the test
   database), migrates it, and adds one catalog model registered with ``--versions`` versions,
   a release pipeline and ``--events`` events over the last two years: a fifth are
   deployment records (each with its run and stage; QA, and PROD on AKS and on a Databricks
   job, each a version later than the one before), the rest registry events (the
   ``champion`` and ``challenger`` aliases moving between two syncs, version tags, status
   changes), plus a decided PROD approval for each PROD deployment (who approved);
2. runs ``VACUUM ANALYZE``, signs in a data scientist (Django's test client, a real session,
   in this process: what is measured is the view, the ORM, the SVG and PostgreSQL, not a
   network) and times ``--requests`` sequential GETs, after 3 warm-up requests, of the history
   page (last 90 days, the default), the page with the whole range ("all"), its tenth page of
   the table, and the page with the "what served in PROD at" answer, with the SQL queries of
   one request of each;
3. writes the results into docs/performance.md between the ``bench:history`` markers (unless
   ``--no-write``) and drops the database.

Settings are portal.settings.test with TEST_DATABASE_URL pointed at the bench database (set
BENCH_DATABASE_URL to choose another server or name; the name must contain "bench").
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import sys
import time
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
from bench.registry import percentiles, timed  # noqa: E402

SECTION_TITLE = "## History page"
TARGET_MS = 150
MODEL = "bench-history-model"
LANES = (("QA", "aks"), ("PROD", "aks"), ("PROD", "databricks-job"))
SPAN_DAYS = 730


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=500, help="versions of the model")
    parser.add_argument("--events", type=int, default=5000, help="history events in all")
    parser.add_argument("--requests", type=int, default=50, help="timed GETs per page")
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one default page and print the top"
    )
    return parser.parse_args(argv)


def _deployments(registered, versions, count: int, now) -> int:
    """``count`` deployment records over the lanes, each lane's versions ascending."""
    from approvals.models import ApprovalRequest, ApprovalStatus, DecidedIn
    from pipelines.models import DeploymentRecord, PipelineKind, PipelineRun, RunStage
    from tests.pipelines.factories import PipelineFactory

    pipeline = PipelineFactory(catalog_model=registered.catalog_model, kind=PipelineKind.RELEASE)
    step = dt.timedelta(days=SPAN_DAYS) / max(count, 1)
    start = now - dt.timedelta(days=SPAN_DAYS)
    plans = []
    for i in range(count):
        environment, target = LANES[i % len(LANES)]
        version = versions[min(i * len(versions) // max(count, 1), len(versions) - 1)]
        plans.append((environment, target, version, start + step * i))
    runs = PipelineRun.objects.bulk_create(
        [
            PipelineRun(
                pipeline=pipeline,
                ado_id=10_000 + i,
                name=f"2025.{i}",
                state="completed",
                result="succeeded",
                requested_by="Release Bot",
                queued_at=when - dt.timedelta(hours=1),
                started_at=when - dt.timedelta(minutes=50),
                finished_at=when,
                parameters={"modelVersion": str(v.version), "deployTarget": target},
                model_version=v,
            )
            for i, (environment, target, v, when) in enumerate(plans)
        ],
        batch_size=1000,
    )
    stages = RunStage.objects.bulk_create(
        [
            RunStage(
                run=run,
                record_id=f"stage-{run.ado_id}",
                name=f"Deploy_{environment}",
                environment=environment,
                target=target,
                state="completed",
                result="succeeded",
                approval_ids=[f"approval-{run.ado_id}"],
                started_at=when - dt.timedelta(minutes=30),
                finished_at=when,
            )
            for run, (environment, target, _, when) in zip(runs, plans, strict=True)
        ],
        batch_size=1000,
    )
    DeploymentRecord.objects.bulk_create(
        [
            DeploymentRecord(
                catalog_model=registered.catalog_model,
                environment=environment,
                target=target,
                run=run,
                stage=stage,
                model_version=v,
                version_label=f"v{v.version}",
                approval_ids=[f"approval-{run.ado_id}"],
                requested_by="Release Bot",
                started_at=when,
                observed_at=when + dt.timedelta(minutes=5),
            )
            for run, stage, (environment, target, v, when) in zip(runs, stages, plans, strict=True)
        ],
        batch_size=1000,
    )
    ApprovalRequest.objects.bulk_create(
        [
            ApprovalRequest(
                project=pipeline.project,
                ado_id=f"approval-{run.ado_id}",
                run=run,
                stage=stage,
                environment=stage.environment,
                catalog_model=registered.catalog_model,
                model_version=run.model_version,
                status=ApprovalStatus.APPROVED,
                ado_status=ApprovalStatus.APPROVED,
                steps=[{"status": "approved", "actual": {"name": "Alice Approver"}}],
                created_on=stage.started_at,
                decided_at=stage.finished_at,
                decided_by="Alice Approver",
                decided_in=DecidedIn.ADO,
            )
            for run, stage in zip(runs, stages, strict=True)
            if stage.environment == "PROD"
        ],
        batch_size=1000,
    )
    return len(runs)


def _registry_events(registered, versions, count: int, now) -> int:
    from registry.models import RegistryEvent, RegistryEventKind

    step = dt.timedelta(days=SPAN_DAYS) / max(count, 1)
    start = now - dt.timedelta(days=SPAN_DAYS)
    events = []
    for i in range(count):
        seen = start + step * i
        version = versions[min(i * len(versions) // max(count, 1), len(versions) - 1)]
        kind = i % 4
        common = {
            "source": registered.source,
            "registered_model": registered,
            "observed_at": seen,
            "previously_seen_at": seen - dt.timedelta(minutes=15),
            "seen_by": "incremental sync",
        }
        if kind in (0, 1):
            alias = "champion" if kind == 0 else "challenger"
            events.append(
                RegistryEvent(
                    **common,
                    kind=RegistryEventKind.ALIAS_SET,
                    name=alias,
                    version=version.version,
                    model_version=version,
                    new_value=version.version,
                )
            )
        elif kind == 2:
            events.append(
                RegistryEvent(
                    **common,
                    kind=RegistryEventKind.VERSION_TAG_SET,
                    name="validation_status",
                    version=version.version,
                    model_version=version,
                    new_value="passed",
                )
            )
        else:
            events.append(
                RegistryEvent(
                    **common,
                    kind=RegistryEventKind.VERSION_STATUS,
                    version=version.version,
                    model_version=version,
                    old_value="PENDING_REGISTRATION",
                    new_value="READY",
                )
            )
    RegistryEvent.objects.bulk_create(events, batch_size=1000)
    return len(events)


def seed(args) -> dict:
    from django.utils import timezone

    from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

    now = timezone.now()
    registered = RegisteredModelFactory(name=MODEL)
    versions = [
        ModelVersionFactory(registered_model=registered, version=v)
        for v in range(1, args.versions + 1)
    ]
    deployments = args.events // 5
    return {
        "versions": len(versions),
        "deployments": _deployments(registered, versions, deployments, now),
        "registry_events": _registry_events(registered, versions, args.events - deployments, now),
    }


def measure(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from core.roles import Role
    from portal.services import role_groups_ensure

    user = get_user_model().objects.create_user("bench-dana", email="bench@example.com")
    user.groups.add(role_groups_ensure()[Role.DATA_SCIENTIST])
    client = Client()
    client.force_login(user)
    url = reverse("pipelines:model-history", kwargs={"name": MODEL})
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(days=200)).strftime("%Y-%m-%dT%H:%M")
    pages = [
        ("history page, last 90 days (default)", {}),
        ("history page, all (two years)", {"range": "all"}),
        ("history page, all, table page 10", {"range": "all", "page": "10"}),
        ("history page with 'what served in PROD at'", {"serve_env": "PROD", "at": at}),
    ]
    if args.profile:
        import cProfile
        import pstats

        client.get(url, {})  # warm: the profile shows a steady request
        profiler = cProfile.Profile()
        profiler.runcall(client.get, url, {})
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
    rows = []
    for label, params in pages:

        def get(i, params=params, label=label):
            response = client.get(url, params)
            check(response.status_code == 200, f"{label}: {response.status_code}")
            return response

        queries: list[str] = []
        with connection.execute_wrapper(_counting(queries)):
            body = get(0).content
        samples = timed(get, args.requests)
        p50, p95 = percentiles(samples)
        spans = body.count(b'data-testid="timeline-span"')
        rows.append(
            {
                "label": label,
                "p50": p50,
                "p95": p95,
                "queries": len(queries),
                "kib": len(body) / 1024,
                "spans": spans,
            }
        )
        print(
            f"  {label}: p50 {p50:.0f} ms, p95 {p95:.0f} ms, {len(queries)} queries, {spans} bars"
        )
    return {"pages": rows}


def _counting(queries: list[str]):
    def wrapper(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    return wrapper


def report(args, results) -> str:
    facts, seeded = results["facts"], results["seed"]
    lines = [
        f"Run on {results['at']:%Y-%m-%d %H:%M} UTC with:",
        "",
        "```bash",
        ".venv/bin/python bench/history_page.py"
        f" --versions {args.versions} --events {args.events} --requests {args.requests}",
        "```",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']} memory, "
        f"{facts['os']}; PostgreSQL {facts['postgresql']}, Python {facts['python']}, "
        f"Django {facts['django']}. Load average (1, 5, 15 min) before the measurements: "
        f"{results['load_before']}; after: {results['load_after']} (the machine is shared: "
        "other work running at the same time shows here).",
        "",
        f"Data: one model with {seeded['versions']:,} versions and "
        f"{seeded['deployments'] + seeded['registry_events']:,} events over two years: "
        f"{seeded['deployments']:,} deployment records (QA, PROD on AKS, PROD on a Databricks "
        f"job; each with its run, stage and, for PROD, its decided approval) and "
        f"{seeded['registry_events']:,} registry events (alias moves seen between two syncs, "
        f"tags, status changes); seeded in {results['seed_seconds']:.0f} s. `VACUUM ANALYZE`, "
        f"then {args.requests} sequential GETs per page (after 3 warm-up requests) through "
        "Django's test client in the bench process, signed in as a data scientist.",
        "",
        "| request | p50 | p95 | SQL queries | timeline bars | response size "
        "| target p95 < 150 ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["pages"]:
        verdict = "**met**" if row["p95"] < TARGET_MS else "**not met**"
        lines.append(
            f"| {row['label']} | {row['p50']:.0f} ms | {row['p95']:.0f} ms | {row['queries']} "
            f"| {row['spans']:,} | {row['kib']:.0f} KiB | {verdict} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    db_url = bench_database_url("portal_bench_deploy_history")
    pg_version = database_recreate(db_url)
    name = django_setup_on_bench_database(db_url, APPROVALS_NOTIFY="false")
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    print(f"Bench database: {name} (recreated)")
    results: dict = {"at": timezone.now()}
    try:
        call_command("migrate", interactive=False, verbosity=0)
        started = time.perf_counter()
        results["seed"] = seed(args)
        results["seed_seconds"] = time.perf_counter() - started
        print(f"Seeded {results['seed']} in {results['seed_seconds']:.0f} s")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        results["load_before"] = load_average(os.getloadavg())
        # As gunicorn.conf.py's post_worker_init does in a web worker: what the process holds
        # before the first request (the app, the seeding) is out of the collector's way.
        gc.collect()
        gc.freeze()
        results.update(measure(args))
        results["load_after"] = load_average(os.getloadavg())
        results["facts"] = machine_facts(pg_version)
    finally:
        connection.close()
        database_drop(db_url)
    text = report(args, results)
    print(text)
    if not args.no_write:
        intro = (
            f"{SECTION_TITLE}\n\n`bench/history_page.py` produces the numbers (what it does "
            "and its options: its docstring, `--help`); it rewrites only the section between "
            "the `bench:history` markers below."
        )
        report_write(BASE_DIR / "docs" / "performance.md", text, name="history", intro=intro)
    return 0 if all(r["p95"] < TARGET_MS for r in results["pages"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
