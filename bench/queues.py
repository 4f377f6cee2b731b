"""Benchmark of the queues: decision click to ADO PATCH while a full registry sweep runs, with
one worker per queue group (as docker-compose.yml runs them) beside one worker for everything
(the single queue before the split).

    .venv/bin/python bench/queues.py [--models 5000 --clicks 30 --interval 0.5]

What it does, every time from scratch:

1. starts a fresh ``mlflow server`` (registry.devserver.MlflowServer) and seeds ``--models``
   registered models with one version each over REST (bench/registry.py's seeding);
2. starts the ADO simulator in this process with release runs waiting at QA, creates its own
   PostgreSQL database (default ``portal_bench_queues``), migrates it, mirrors the simulator
   (pipelines sync, approvals poll) as bench/approvals.py does;
3. for each layout, ``split`` (three workers: ``-Q deliveries``, ``-Q syncs``,
   ``-Q maintenance`` plus the default queue, concurrency 1 each) and ``single`` (one worker,
   concurrency 1, on every queue: with prefetch 1 it takes one message at a time whatever its
   queue, so it behaves as one queue): adds a fresh registry source on the seeded MLflow,
   queues its full sweep (``registry.sync_source``, full=True: every model read and written),
   and while it runs makes ``--clicks`` decisions ``--interval`` s apart (what the decide view
   calls), timing each from the call to the simulator receiving its PATCH (bench/approvals.py's
   PatchClock); only clicks made while the sweep was still running count. Every decision must
   reach ADO exactly once;
4. writes the figures into docs/performance.md between the ``bench:queues`` markers, stops the
   workers and servers by their pids, deletes its Redis queues and drops the database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(BASE_DIR))

from bench.approvals import (  # noqa: E402 (after the path fix above)
    PAT,
    PAT_USER,
    TARGET_P95_SECONDS,
    PatchClock,
    decide,
    queue_delete,
    seed_portal,
    seed_simulator,
    spread,
    wait_delivered,
    waiting_plan,
)
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
from bench.registry import seed_mlflow  # noqa: E402

SECTION = "queues"
LAYOUTS = ("split", "single")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=5000, help="registered models to seed")
    parser.add_argument("--threads", type=int, default=8, help="seeding threads")
    parser.add_argument("--clicks", type=int, default=30, help="decisions per layout")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between clicks")
    parser.add_argument("--db-name", default="portal_bench_queues", help="bench database name")
    parser.add_argument("--output", default=str(BASE_DIR / "docs" / "performance.md"))
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    return parser.parse_args(argv)


class Workers:
    """The layout's ``celery worker`` processes, each stopped by its pid."""

    def __init__(self, layout: str, log_dir: Path):
        self.layout, self.log_dir = layout, log_dir
        self.processes: list[subprocess.Popen] = []

    def commands(self) -> list[list[str]]:
        from django.conf import settings

        from portal.queues import all_queues, group_queue

        base = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel",
                "INFO", "--concurrency", "1", "--prefetch-multiplier", "1",
                "--without-gossip", "--without-mingle"]  # fmt: skip
        if self.layout == "single":
            return [[*base, "--queues", ",".join(all_queues()), "--hostname", "single@%h"]]
        return [
            [*base, "--queues", group_queue("deliveries"), "--hostname", "deliveries@%h"],
            [*base, "--queues", group_queue("syncs"), "--hostname", "syncs@%h"],
            [
                *base,
                "--queues",
                f"{group_queue('maintenance')},{settings.CELERY_TASK_DEFAULT_QUEUE}",
                "--hostname",
                "maintenance@%h",
            ],
        ]

    def start(self) -> Workers:
        for n, command in enumerate(self.commands()):
            log = open(self.log_dir / f"{self.layout}-{n}.log", "ab")  # noqa: SIM115
            self.processes.append(
                subprocess.Popen(  # noqa: S603
                    command,
                    env={**os.environ, "LOG_LEVEL": "INFO"},
                    cwd=BASE_DIR,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            log.close()
        deadline = time.monotonic() + 90
        for n in range(len(self.processes)):
            path = self.log_dir / f"{self.layout}-{n}.log"
            while "ready" not in path.read_text(errors="replace"):
                check(time.monotonic() < deadline, f"worker {n} ready: {path.read_text()}")
                check(self.processes[n].poll() is None, f"worker {n} died: {path.read_text()}")
                time.sleep(0.2)
        return self

    def stop(self) -> None:
        import signal

        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def bench_approver():
    """An approver (the role is what ``approval_decide`` checks), as bench/approvals.py's."""
    from django.contrib.auth import get_user_model

    from core.roles import Role
    from portal.services import role_groups_ensure

    approver = get_user_model().objects.create_user(
        "bench-approver", "bench-approver@example.com", "not-used-bench-only"
    )
    approver.groups.add(role_groups_ensure()[Role.APPROVER])
    return approver


def measure(layout: str, approvals: list, user, clock, mlflow_url: str, args, tmp: Path) -> dict:
    from celery import current_app

    from registry.models import CatalogModel, RegistrySource

    source = RegistrySource.objects.create(
        name=f"sweep-{layout}", tracking_uri=mlflow_url, ui_url=mlflow_url
    )
    workers = Workers(layout, tmp).start()
    try:
        time.sleep(1.0)
        started = time.perf_counter()
        sweep = current_app.send_task(
            "registry.sync_source", args=(source.pk,), kwargs={"full": True}
        )
        time.sleep(1.0)  # the syncs worker has taken it
        clicks = []
        for approval in approvals:
            if sweep.ready():
                break
            clicks.append((approval, *decide(approval, user)))
            time.sleep(args.interval)
        outcome = sweep.get(timeout=900)
        sweep_seconds = time.perf_counter() - started
        received = clock.wait_for([a.ado_id for a, *_ in clicks], timeout=900)
        wait_delivered([c[3] for c in clicks], timeout=900)
    finally:
        workers.stop()
    # Clean the source away so the next layout sweeps from the same empty start.
    from registry.models import RegisteredModel

    mirrored = RegisteredModel.objects.filter(source=source)
    names = list(mirrored.values_list("name", flat=True))
    mirrored.delete()
    source.delete()
    CatalogModel.objects.filter(name__in=names, registered_models__isnull=True).delete()
    latencies = [received[a.ado_id] - started_at for a, started_at, _c, _m in clicks]
    return {
        "click_to_patch": latencies,
        "sweep_seconds": sweep_seconds,
        "sweep": outcome,
        "clicks": len(clicks),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    db_url = bench_database_url(args.db_name)
    queue = f"bench-queues-{uuid.uuid4().hex[:12]}"
    command = " ".join([".venv/bin/python bench/queues.py", *(argv or sys.argv[1:])])
    results: dict = {"args": vars(args), "command": command}

    django_setup_on_bench_database(
        db_url, CELERY_QUEUE=queue, AZURE_DEVOPS_PAT=PAT, APPROVALS_NOTIFY="false"
    )
    from django.conf import settings
    from django.core.management import call_command

    from ado_simulator import AdoSimulator
    from approvals import services
    from approvals.models import ApprovalRequest, ApprovalStatus
    from pipelines import services as pipelines_services
    from pipelines.client import AdoClient, AdoCredentials
    from pipelines.models import AdoProject
    from portal.queues import all_queues
    from registry.devserver import MlflowServer

    pg_version = database_recreate(db_url)
    tmp = Path(tempfile.mkdtemp(prefix="bench-queues-"))
    sim = server = None
    try:
        server = MlflowServer(tmp / "mlflow").start()
        print(f"Seeding {args.models} models x 1 version into {server.url}...")
        results["seed_seconds"] = seed_mlflow(server.url, args.models, 1, args.threads)

        now = dt.datetime.now(tz=dt.UTC).replace(microsecond=0)
        sim = AdoSimulator(pats={PAT: PAT_USER}, start=now - dt.timedelta(minutes=1)).start()
        pending = args.clicks * len(LAYOUTS) * 3 // 2 + 3  # two thirds wait at QA
        seed_simulator(sim, waiting_plan(pending, sim.clock.now()))
        call_command("migrate", interactive=False, verbosity=0)
        seed_portal()
        project = AdoProject.objects.create(
            name="bench", organization_url=sim.org_url, project="MLOps"
        )
        client = AdoClient(sim.org_url, "MLOps", AdoCredentials(pat=PAT))
        check(pipelines_services.project_sync(project=project, full=True, client=client).ok, "")
        check(services.project_approvals_sync(project=project, client=client).ok, "poll")
        qa = list(
            ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, environment="QA")
            .select_related("run")
            .order_by("pk")
        )
        needed = args.clicks * len(LAYOUTS)
        check(len(qa) >= needed, f"{needed} pending QA approvals needed, {len(qa)} there")
        approver = bench_approver()
        clock = PatchClock(sim)
        results["load_before"] = os.getloadavg()
        results["layouts"] = {}
        for n, layout in enumerate(LAYOUTS):
            mine = qa[n * args.clicks : (n + 1) * args.clicks]
            print(f"{layout}: a full sweep of {args.models} models, clicks meanwhile...")
            results["layouts"][layout] = measure(
                layout, mine, approver, clock, server.url, args, tmp
            )
            part = results["layouts"][layout]
            print(
                f"  sweep {part['sweep_seconds']:.1f} s, {part['clicks']} clicks: "
                f"{spread(part['click_to_patch'])}"
            )
        results["load_after"] = os.getloadavg()
        decided = {a.ado_id for a in qa[:needed]}
        counts = {a: len(t) for a, t in clock.received.items()}
        check(all(counts.get(a, 1) == 1 for a in decided), "one PATCH per decision")
        results["machine"] = machine_facts(pg_version)
        report = render(results)
        print(report)
        if not args.no_write:
            report_write(Path(args.output), report, name=SECTION)
            print(f"Wrote {args.output}")
    finally:
        if sim is not None:
            sim.stop()
        if server is not None:
            server.stop()
        for queue_name in all_queues():
            queue_delete(settings.CELERY_BROKER_URL, queue_name)
        from django.db import connections

        connections.close_all()
        database_drop(db_url)
    return 0


def render(results: dict) -> str:
    args, m = results["args"], results["machine"]
    lines = [
        f"Command: `{results['command']}`. Machine: {m['nproc']} CPUs ({m['cpu']}), "
        f"{m['memory']}, {m['os']}, Python {m['python']}, PostgreSQL {m['postgresql']}, "
        f"Redis on 127.0.0.1:6379 (private queues).",
        "",
        f"Data: {args['models']:,} registered models x 1 version seeded over REST in "
        f"{results['seed_seconds']:.0f} s; each layout sweeps them from an empty mirror "
        f"(`registry.sync_source`, full) while decisions are made {args['interval']} s apart; "
        "only clicks made while the sweep ran count. Click to PATCH: from calling "
        "`approvals.services.approval_decide` to the simulator receiving the PATCH.",
        "",
        "| layout | workers | sweep | clicks | click to PATCH p50 | p95 | max | target p95 < 2 s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    label = {
        "split": "one worker per queue (`-Q deliveries`, `-Q syncs`, `-Q maintenance`), "
        "concurrency 1 each",
        "single": "one worker on every queue, concurrency 1 (the single queue before the split)",
    }
    for layout, part in results["layouts"].items():
        s = spread(part["click_to_patch"])
        met = "**met**" if s and s["p95"] < TARGET_P95_SECONDS * 1000 else "not met"
        lines.append(
            f"| {layout} | {label[layout]} | {part['sweep_seconds']:.1f} s | {s.get('n', 0)} | "
            f"{s.get('p50', 0):.0f} ms | {s.get('p95', 0):.0f} ms | {s.get('max', 0):.0f} ms | "
            f"{met} |"
        )
    lines += [
        "",
        "Load average (1, 5, 15 min) before the first layout: "
        f"{load_average(results['load_before'])}; after the last: "
        f"{load_average(results['load_after'])} (the machine is shared).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
