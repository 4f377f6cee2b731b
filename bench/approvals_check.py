"""Benchmark of the automated ADO check: how fast the portal answers ADO's call, and how long
until ADO has the result (TaskCompleted), with the portal under gunicorn and one Celery worker.

    .venv/bin/python bench/approvals_check.py [--sequential 50 --bursts 5x10]

What it does, every time from scratch:

1. creates a PostgreSQL database of its own (default ``portal_bench_checks``; never the test
   database), migrates it, and adds fraud-detector: v1 (auc 0.74) running in PROD, v2 (0.71)
   and v3 (0.80) through QA, a promotion policy on auc (+0.01);
2. serves the portal with gunicorn (``--web-workers`` sync workers, default 3 as
   gunicorn.conf.py's default; a free port; APPROVALS_CHECK_SECRET set)
   and starts one real ``celery worker`` on Redis (127.0.0.1:6379, a private queue);
3. starts the ADO simulator in this process with an Invoke REST API check (callback mode) on
   PROD pointing at the portal, and queues release runs of v2 and v3 in turn; each reaches PROD,
   the simulator POSTs the check (timed: ADO's call to the portal's 200, what ADO requires
   within 3 s) and waits for TaskCompleted (timed: from the call to the simulator receiving it,
   through the evaluation and the callback's log lines). ``--sequential`` checks one after the
   other, then ``--bursts`` (e.g. 5x10: 10 runs reaching PROD at once, 5 times). Checks every
   run got exactly one TaskCompleted with the right result;
4. writes the results into docs/performance.md between the ``bench:approvals_check`` markers,
   stops gunicorn and the worker by their pids, deletes its Redis queues, drops the database.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(BASE_DIR))

from bench.approvals import Worker, queue_delete  # noqa: E402 (after the path fix above)
from bench.common import (  # noqa: E402
    bench_database_url,
    check,
    database_drop,
    database_recreate,
    django_setup_on_bench_database,
    machine_facts,
    report_write,
)
from bench.registry import Gunicorn, percentiles  # noqa: E402

SECTION_TITLE = "## Automated check: ADO's call answered, and the result back in ADO"
SECRET = "bench-check-secret-not-real"  # noqa: S105 - the bench's own, nothing real
ANSWER_TARGET_MS = 300
COMPLETE_TARGET_MS = 5000
BODY = {
    "model": "$(modelName)",
    "version": "$(modelVersion)",
    "environment": "PROD",
    "runId": "$(Build.BuildId)",
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=50)
    parser.add_argument("--bursts", default="5x10", help="COUNTxSIZE runs reaching PROD at once")
    parser.add_argument(
        "--web-workers", type=int, default=3, help="gunicorn workers (gunicorn.conf.py's default)"
    )
    parser.add_argument("--db-name", default="portal_bench_checks")
    parser.add_argument("--output", default=str(BASE_DIR / "docs" / "performance.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args(argv)
    count, _, size = args.bursts.partition("x")
    args.burst_count, args.burst_size = int(count), int(size or 1)
    return args


def seed_portal() -> None:
    """fraud-detector's versions, v1 in PROD, v2 and v3 through QA, a policy on auc."""
    from approvals.models import PromotionPolicy
    from tests.pipelines.factories import PipelineFactory, PipelineRunFactory, RunStageFactory
    from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

    registered = RegisteredModelFactory(name="fraud-detector")
    catalog = registered.catalog_model
    versions = {
        n: ModelVersionFactory(registered_model=registered, version=n, metrics={"auc": auc})
        for n, auc in ((1, 0.74), (2, 0.71), (3, 0.80))
    }
    release = PipelineFactory(catalog_model=catalog, kind="release")
    for n, envs in ((1, ("QA", "PROD")), (2, ("QA",)), (3, ("QA",))):
        run = PipelineRunFactory(
            pipeline=release, model_version=versions[n], ado_id=90000 + n,
            parameters={"modelVersion": str(n), "deployTarget": "aks"},
        )  # fmt: skip
        for order, env in enumerate(envs):
            RunStageFactory(run=run, environment=env, target="aks", order=order)
    PromotionPolicy.objects.create(catalog_model=catalog, metric="auc", min_absolute_change=0.01)


class CheckClock:
    """Notes, on this process's monotonic clock, when the simulator called the check, when the
    portal answered and when TaskCompleted came in, per check run (plan id)."""

    def __init__(self, sim):
        self.called: dict[str, float] = {}
        self.answered: dict[str, float] = {}
        self.completed: dict[str, list[float]] = {}
        self.done = threading.Condition()
        call, complete = sim._call_rest_check, sim._plan_events

        def timed_call(check_run):
            self.called[check_run.plan_id] = time.monotonic()
            call(check_run)
            self.answered[check_run.plan_id] = time.monotonic()

        def timed_events(request, caller, project, hub, plan):
            response = complete(request, caller, project, hub, plan)
            with self.done:
                self.completed.setdefault(plan, []).append(time.monotonic())
                self.done.notify_all()
            return response

        sim._call_rest_check, sim._plan_events = timed_call, timed_events

    def wait(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        with self.done:
            while len(self.completed) < count and time.monotonic() < deadline:
                self.done.wait(0.5)
        check(len(self.completed) >= count, f"{len(self.completed)} of {count} completed")


def release(sim, pipe, version: int):
    return sim.queue_run(
        pipe,
        template_parameters={"modelName": "fraud-detector", "modelVersion": str(version)},
        decisions={"Deploy_QA": "approved"},
    )


def measure(sim, pipe, clock: CheckClock, args) -> dict:
    """Sequential checks, then bursts; ADO's call to 200, and the call to TaskCompleted."""
    runs = []
    for i in range(args.sequential):
        runs.append(release(sim, pipe, 2 + i % 2))
        sim.advance(150)
        clock.wait(len(runs))
    for _ in range(args.burst_count):
        runs += [release(sim, pipe, 2 + i % 2) for i in range(args.burst_size)]
        sim.advance(150)
        clock.wait(len(runs))
    checks = [c for r in runs for c in sim.check_runs_for(r.id)]
    check(len(checks) == len(runs), "one check per run")
    answer = [c.call["ms"] / 1000 for c in checks]
    complete = [clock.completed[c.plan_id][0] - clock.called[c.plan_id] for c in checks]
    check(all(len(clock.completed[c.plan_id]) == 1 for c in checks), "one TaskCompleted each")
    for c in checks:
        expected = "failed" if c.body["version"] == "2" else "succeeded"
        check(c.status == expected, f"{c.body['version']}: {c.status}")
        check(c.call["status"] == 200, c.call)
    sequential = slice(0, args.sequential)
    return {
        "answer": {"sequential": answer[sequential], "bursts": answer[args.sequential :]},
        "complete": {"sequential": complete[sequential], "bursts": complete[args.sequential :]},
        "log_lines": sum(len(c.log_lines) for c in checks),
        "checks": len(checks),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    db_url = bench_database_url(args.db_name)
    queue = f"bench-checks-{uuid.uuid4().hex[:12]}"
    command = " ".join([".venv/bin/python bench/approvals_check.py", *(argv or sys.argv[1:])])
    name = django_setup_on_bench_database(
        db_url, CELERY_QUEUE=queue, APPROVALS_NOTIFY="false", APPROVALS_CHECK_SECRET=SECRET
    )
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from ado_simulator import AdoSimulator
    from pipelines.models import AdoProject
    from portal.queues import all_queues
    from registry.devserver import free_port

    print(f"Bench database: {name} (recreated); queue {queue} on {settings.CELERY_BROKER_URL}")
    pg_version = database_recreate(db_url)
    sim = gunicorn = worker = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-checks-"))
    results: dict = {"command": command, "args": vars(args)}
    try:
        call_command("migrate", interactive=False, verbosity=0)
        seed_portal()
        connection.close()
        gunicorn = Gunicorn(
            dict(os.environ), free_port(), tmp / "gunicorn.log", workers=args.web_workers
        ).start()
        worker = Worker(1, tmp / "worker.log").start()
        now = dt.datetime.now(tz=dt.UTC).replace(microsecond=0)
        sim = AdoSimulator(start=now - dt.timedelta(minutes=1)).start()
        # PlanUrl must be the organization of one of the portal's ADO projects.
        AdoProject.objects.create(name="bench", organization_url=sim.org_url, project="MLOps")
        connection.close()
        sim.configure_rest_check(
            "PROD", f"{gunicorn.url}/api/v1/approvals/checks/ado", username="ado", secret=SECRET,
            body=BODY, timeout_minutes=60,
        )  # fmt: skip
        pipe = sim.create_pipeline(
            "risk-fraud-detector-release", "release", model="fraud-detector",
            approvers={"Deploy_PROD": []},
            stage_seconds={"Build": 60, "Deploy_QA": 60, "Deploy_PROD": 60},
        )  # fmt: skip
        clock = CheckClock(sim)
        print(f"{args.sequential} checks one after the other, then bursts {args.bursts}...")
        results.update(measure(sim, pipe, clock, args))
        results["facts"] = machine_facts(pg_version)
        results["date"] = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        report = render(results)
        print()
        print(report)
        if not args.no_write:
            report_write(Path(args.output), report, name="approvals_check", intro=SECTION_TITLE)
            print(f"Written to {args.output}")
    finally:
        for process in (gunicorn, worker):
            if process is not None:
                process.stop()
        for queue_name in all_queues():
            queue_delete(settings.CELERY_BROKER_URL, queue_name)
        if sim is not None:
            sim.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            database_drop(db_url)
            print("Bench database dropped.")
    return 0


def _row(label: str, samples: list[float], target_ms: float) -> str:
    if not samples:
        return f"| {label} | 0 | | | |"
    p50, p95 = percentiles(samples) if len(samples) > 1 else (samples[0] * 1000,) * 2
    verdict = "within" if p95 < target_ms else "**over**"
    return (
        f"| {label} | {len(samples)} | {p50:.0f} ms | {p95:.0f} ms | {max(samples) * 1000:.0f} ms "
        f"| {verdict} {target_ms:.0f} ms |"
    )


def render(results: dict) -> str:
    facts = results["facts"]
    lines = [
        f"Run {results['date']} with `{results['command']}`: {results['checks']} checks, "
        f"{results['log_lines']} log lines appended; every run got one TaskCompleted with the "
        f"expected result (v2 failed, v3 succeeded). gunicorn: {results['args']['web_workers']} "
        "sync workers; one Celery worker.",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']}, "
        f"PostgreSQL {facts['postgresql']}, Django {facts['django']}, Python {facts['python']}.",
        "",
        "| what | n | p50 | p95 | max | target (p95) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, key, target in (
        ("ADO's call answered (200)", "answer", ANSWER_TARGET_MS),
        ("call to TaskCompleted in ADO", "complete", COMPLETE_TARGET_MS),
    ):
        for part in ("sequential", "bursts"):
            lines.append(_row(f"{label}, {part}", results[key][part], target))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
