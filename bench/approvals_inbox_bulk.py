"""Benchmark of deciding several at once: the approvals inbox with 1,000 pending requests, and
the combined evidence screen of a bulk decision with 20 and 50 requests selected.

    .venv/bin/python bench/approvals_inbox_bulk.py [--pending 1000 --requests 50 --no-write]

What it does, every time from scratch:

1. creates a PostgreSQL database of its own (default ``portal_bench_approvals_bulk``; never
   the test database), migrates it, and adds 10 catalog models with 20 versions each (two
   metrics per version), a release pipeline per model whose earlier runs deployed v1 to QA and
   PROD (the champion each request is compared with), and ``--pending`` release runs waiting
   at an approval: two thirds at QA, one third at PROD (their QA stage succeeded), a quarter
   opened more than a day ago (overdue), each with its run, stage and model version;
2. runs ``VACUUM ANALYZE``, signs in an approver (Django's test client, a real session,
   in this process: what is measured is the view, the ORM and PostgreSQL, not a network) and
   times ``--requests`` sequential GETs, after 3 warm-up requests, of: the inbox's pending tab
   (``/approvals/``, 50 rows a page), the inbox filtered to PROD, and the combined evidence
   screen (``/approvals/bulk/?ids=…``) of 20 and of 50 QA requests and of 20 and 50 PROD ones
   (a different selection each request), with the SQL queries of one request of each;
3. writes the results into docs/performance.md between the ``bench:approvals-bulk`` markers
   (unless ``--no-write``) and drops the database.

Settings are portal.settings.test with TEST_DATABASE_URL pointed at the bench database (set
BENCH_DATABASE_URL to choose another server or name; the name must contain "bench").
"""

from __future__ import annotations

import argparse
import datetime as dt
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

SECTION_TITLE = "## Approvals: the inbox with 1,000 pending, and deciding 20 or 50 at once"
TARGET_MS = 150
MODELS = 10
VERSIONS = 20
SELECTIONS = (("QA", 20), ("QA", 50), ("PROD", 20), ("PROD", 50))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=1000, help="pending approval requests")
    parser.add_argument("--requests", type=int, default=50, help="timed GETs per page")
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    return parser.parse_args(argv)


def seed(pending: int) -> dict:
    """The catalog, champions in QA and PROD, and ``pending`` requests waiting."""
    from django.utils import timezone

    from approvals.models import ApprovalRequest
    from pipelines.models import PipelineKind
    from tests.approvals.factories import ApprovalRequestFactory
    from tests.pipelines.factories import PipelineFactory, PipelineRunFactory, RunStageFactory
    from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

    now = timezone.now()
    models = []
    for m in range(MODELS):
        registered = RegisteredModelFactory(name=f"bench-model-{m:02d}")
        versions = [
            ModelVersionFactory(
                registered_model=registered,
                version=v,
                metrics={"auc": 0.80 + v / 200, "log_loss": 0.40 - v / 200},
            )
            for v in range(1, VERSIONS + 1)
        ]
        pipeline = PipelineFactory(
            catalog_model=registered.catalog_model, kind=PipelineKind.RELEASE
        )
        shipped = PipelineRunFactory(
            pipeline=pipeline,
            model_version=versions[0],
            queued_at=now - dt.timedelta(days=30),
            parameters={"modelVersion": "1", "deployTarget": "aks"},
        )
        for order, env in enumerate(("QA", "PROD")):
            RunStageFactory(run=shipped, environment=env, target="aks", order=order)
        models.append((pipeline, versions))
    for i in range(pending):
        pipeline, versions = models[i % MODELS]
        version = versions[1 + (i // MODELS) % (VERSIONS - 1)]
        env = "PROD" if i % 3 == 2 else "QA"
        opened = now - (dt.timedelta(days=2, minutes=i) if i % 4 == 0 else dt.timedelta(minutes=i))
        run = PipelineRunFactory(
            pipeline=pipeline,
            model_version=version,
            state="inProgress",
            result="",
            finished_at=None,
            queued_at=opened - dt.timedelta(minutes=5),
            requested_by="Release Bot",
            requested_by_id="release-bot@example.com",
            parameters={"modelVersion": str(version.version), "deployTarget": "aks"},
        )
        if env == "PROD":
            RunStageFactory(run=run, environment="QA", target="aks", order=0)
        stage = RunStageFactory(run=run, environment=env, name=env, waiting=True, order=1)
        ApprovalRequestFactory(
            model_version=version,
            run=run,
            stage=stage,
            environment_name=env,
            project=pipeline.project,
            created_on=opened,
        )
    by_env = {
        env: ApprovalRequest.objects.filter(environment=env).count() for env in ("QA", "PROD")
    }
    return {"pending": ApprovalRequest.objects.count(), "by_environment": by_env}


def measure(args) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from approvals.models import ApprovalRequest
    from core.roles import Role
    from portal.services import role_groups_ensure

    user = get_user_model().objects.create_user("bench-approver", email="bench@example.com")
    user.groups.add(role_groups_ensure()[Role.APPROVER])
    client = Client()
    client.force_login(user)  # a fresh sign-in: PROD selections are decidable
    inbox = reverse("approvals:inbox")
    bulk = reverse("approvals:bulk")
    ids = {
        env: list(
            ApprovalRequest.objects.filter(environment=env)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for env in ("QA", "PROD")
    }
    pages = [
        ("inbox, pending tab", inbox, lambda i: {}),
        ("inbox, PROD only", inbox, lambda i: {"environment": "PROD"}),
    ]
    for env, size in SELECTIONS:
        pool = ids[env]

        def params(i, pool=pool, size=size):
            start = (i * size) % max(1, len(pool) - size)
            return {"ids": ",".join(str(pk) for pk in pool[start : start + size])}

        pages.append((f"bulk evidence, {size} {env} selected", bulk, params))
    rows = []
    for label, url, params in pages:

        def get(i, url=url, params=params, label=label):
            response = client.get(url, params(i))
            check(response.status_code == 200, f"{label}: {response.status_code}")
            return response

        queries: list[str] = []
        with connection.execute_wrapper(_counting(queries)):
            size = len(get(0).content)
        samples = timed(get, args.requests)
        p50, p95 = percentiles(samples)
        rows.append(
            {"label": label, "p50": p50, "p95": p95, "queries": len(queries), "kib": size / 1024}
        )
        print(f"  {label}: p50 {p50:.0f} ms, p95 {p95:.0f} ms, {len(queries)} queries")
    return {"pages": rows}


def _counting(queries: list[str]):
    """A database execute wrapper that notes each SQL statement."""

    def wrapper(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    return wrapper


def report(args, results) -> str:
    facts = results["facts"]
    lines = [
        f"Run on {results['at']:%Y-%m-%d %H:%M} UTC with:",
        "",
        "```bash",
        ".venv/bin/python bench/approvals_inbox_bulk.py"
        f" --pending {args.pending} --requests {args.requests}",
        "```",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']} memory, "
        f"{facts['os']}; "
        f"PostgreSQL {facts['postgresql']}, Python {facts['python']}, Django {facts['django']}. "
        f"Load average (1, 5, 15 min) before the measurements: {results['load_before']}; after: "
        f"{results['load_after']} (the machine is shared: other work running at the same time "
        "shows here).",
        "",
        f"Data: {results['seed']['pending']:,} pending approval requests "
        f"({results['seed']['by_environment']['QA']:,} QA, "
        f"{results['seed']['by_environment']['PROD']:,} PROD; a quarter overdue) of "
        f"{MODELS} models with {VERSIONS} versions each, every request linked to its release run, "
        "stage and version, v1 of each model in QA and PROD (the champion); seeded in "
        f"{results['seed_seconds']:.0f} s. `VACUUM ANALYZE`, then {args.requests} sequential "
        "GETs per page (after 3 warm-up requests) through Django's test client in the bench "
        "process, signed in as an approver (a real session row); each bulk request selects "
        "a different set of requests.",
        "",
        "| request | p50 | p95 | SQL queries | response size | target p95 < 150 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in results["pages"]:
        verdict = "**met**" if row["p95"] < TARGET_MS else "**not met**"
        lines.append(
            f"| {row['label']} | {row['p50']:.0f} ms | {row['p95']:.0f} ms | {row['queries']} "
            f"| {row['kib']:.0f} KiB | {verdict} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    db_url = bench_database_url("portal_bench_approvals_bulk")
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
        results["seed"] = seed(args.pending)
        results["seed_seconds"] = time.perf_counter() - started
        check(results["seed"]["pending"] == args.pending, results["seed"])
        print(f"Seeded {results['seed']} in {results['seed_seconds']:.0f} s")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        results["load_before"] = load_average(os.getloadavg())
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
            f"{SECTION_TITLE}\n\n`bench/approvals_inbox_bulk.py` produces the numbers (what it "
            "does and its options: its docstring, `--help`); it rewrites only the section "
            "between the `bench:approvals-bulk` markers below."
        )
        report_write(BASE_DIR / "docs" / "performance.md", text, name="approvals-bulk", intro=intro)
    return 0 if all(r["p95"] < TARGET_MS for r in results["pages"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
