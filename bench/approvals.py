"""Benchmark of approvals: the inbox with 1,000 pending approvals, and click-to-PATCH latency
with one Celery worker delivering decisions to the ADO simulator.

    .venv/bin/python bench/approvals.py [--pending 1000 --sequential 200 --bursts 5x20]

What it does, every time from scratch:

1. starts the ADO simulator in this process (ado_simulator.AdoSimulator, loopback, a free
   port) with the release pipelines of 10 catalog models, and queues, through its Python API
   (quietly, at past times), ``--pending`` release runs that now wait at an approval: about two
   thirds at QA, one third at PROD (their QA approved and deployed first), a quarter of them
   opened more than a day ago (overdue), the rest within the last day;
2. creates a PostgreSQL database of its own (default ``portal_bench_approvals``; never the test
   database), migrates it, adds the catalog models with a central registered model and 20
   versions each, an AdoProject, and mirrors the simulator as beat would: a full pipelines sync,
   then the approvals poll (timed: the first one, which creates every request, and a no-change
   poll 3 times, the cost beat pays every APPROVALS_SYNC_INTERVAL_SECONDS);
3. runs ``VACUUM ANALYZE``, serves the portal with gunicorn (1 sync worker, a free port), signs
   in an approver (session cookie) and times ``--requests`` sequential GETs of the inbox
   (``approvals:inbox``), the inbox filtered to overdue PROD requests, and the approvals API;
4. starts one real ``celery worker`` process on Redis (127.0.0.1:6379, a private queue), once
   per ``--concurrency`` (default: 1, then Celery's default, the number of CPUs, as the
   compose file's worker runs), and times, for QA requests, the click: from calling
   ``approvals.services.approval_decide`` (what the decide view calls; it commits the decision,
   its outbox message and audit row, then publishes the delivery task) to the simulator
   receiving the PATCH for that approval (the simulator's ``update_approvals`` is wrapped to
   note the monotonic time a PATCH arrives; the simulator runs in this process, so both times
   come from one clock). ``--sequential`` decisions one after the other (each once the previous
   one is delivered), then ``--bursts`` (e.g. 5x20: 5 bursts of 20 decisions made back to back),
   then ``--during-poll`` decisions 2 s apart while the worker runs an approvals poll; checks
   every decision reached ADO exactly once;
5. writes the results into docs/performance.md between the ``bench:approvals`` markers, stops
   gunicorn and the worker by their pids, deletes its Redis queue and drops the database.

Settings are portal.settings.test with TEST_DATABASE_URL pointed at the bench database (set
BENCH_DATABASE_URL to choose another server or name; the name must contain "bench").
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
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

SECTION_TITLE = "## Approvals: 1,000 pending, and click to PATCH with one worker"
PAT = "bench-approvals-pat-not-a-secret"  # the in-process simulator's PAT, nothing real
PAT_USER = "portal-sync@example.com"
TEAMS = ("risk", "growth", "operations")
MODELS = (
    "fraud-detector",
    "churn-predictor",
    "demand-forecast",
    "credit-scoring",
    "marketing-uplift",
    "inventory-anomaly",
    "customer-lifetime-value",
    "claims-severity",
    "price-elasticity",
    "payment-default",
)
VERSIONS_PER_MODEL = 20
STAGE_SECONDS = {"Build": 60, "Deploy_QA": 60, "Deploy_PROD": 60}
QA_DECIDED_AFTER = 600  # seconds: PROD-waiting runs had their QA approved this long after
TARGET_P95_SECONDS = 2.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=1000, help="pending approvals")
    parser.add_argument("--requests", type=int, default=50, help="GETs per page")
    parser.add_argument(
        "--sequential", type=int, default=200, help="decisions made one after the other"
    )
    parser.add_argument(
        "--bursts",
        default="5x20",
        help="bursts of decisions made back to back: COUNTxSIZE (0x0: none)",
    )
    parser.add_argument(
        "--during-poll",
        type=int,
        default=10,
        help="decisions made 2 s apart while the worker runs an approvals poll (0: none)",
    )
    parser.add_argument(
        "--concurrency",
        default=f"1,{os.cpu_count() or 1}",
        help="the worker's processes; several, comma-separated, measure one after the other "
        "(default: 1, then the number of CPUs, Celery's default)",
    )
    parser.add_argument("--db-name", default="portal_bench_approvals", help="bench database name")
    parser.add_argument(
        "--output",
        default=str(BASE_DIR / "docs" / "performance.md"),
        help="Markdown file whose bench:approvals section is (re)written",
    )
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    args = parser.parse_args(argv)
    try:
        count, size = (int(x) for x in args.bursts.lower().split("x"))
    except ValueError:
        parser.error("--bursts is COUNTxSIZE, e.g. 5x20")
    args.burst_count, args.burst_size = max(count, 0), max(size, 0)
    if args.burst_count == 0 or args.burst_size == 0:
        args.burst_count = args.burst_size = 0
    try:
        args.concurrencies = list(dict.fromkeys(int(c) for c in args.concurrency.split(",")))
    except ValueError:
        parser.error("--concurrency is a number, or several separated by commas")
    if not args.concurrencies or min(args.concurrencies) < 1:
        parser.error("--concurrency must be 1 or more")
    return args


# Seeding ---------------------------------------------------------------------------------------


def waiting_plan(pending: int, now: dt.datetime) -> list[dict]:
    """When each release run opened its approval and where it waits: every third at PROD; one
    in four opened 25 hours to 7 days ago (overdue), the rest within the last 23 hours."""
    plan = []
    for i in range(pending):
        if i % 4 == 3:
            age = dt.timedelta(hours=25) + dt.timedelta(days=6) * ((i * 37) % 100) / 100
        else:
            age = dt.timedelta(minutes=5) + dt.timedelta(hours=23) * ((i * 53) % 100) / 100
        environment = "PROD" if i % 3 == 2 else "QA"
        before = STAGE_SECONDS["Build"]
        if environment == "PROD":
            before += QA_DECIDED_AFTER + STAGE_SECONDS["Deploy_QA"]
        plan.append(
            {
                "model": MODELS[i % len(MODELS)],
                "version": 1 + (i // len(MODELS)) % VERSIONS_PER_MODEL,
                "environment": environment,
                "queued": now - age - dt.timedelta(seconds=before),
                "requester": f"ds{i % 5}@example.com",
            }
        )
    plan.sort(key=lambda p: p["queued"])
    return plan


def seed_simulator(sim, plan: list[dict]) -> dict:
    from ado_simulator import Decision, Identity

    qa_approver = Identity.user("alice@example.com", "Alice Approver")
    pipes = {}
    for index, model in enumerate(MODELS):
        team = TEAMS[index % len(TEAMS)]
        pipes[model] = sim.create_pipeline(
            f"{team}-{model}-release",
            "release",
            folder=f"\\{team}\\{model}",
            model=model,
            stage_seconds=STAGE_SECONDS,
            repository=model,
        )
    started = time.perf_counter()
    for item in plan:
        options: dict = {
            "template_parameters": {
                "modelName": item["model"],
                "modelVersion": str(item["version"]),
                "deployTarget": "aks",
            },
            "requested_for": item["requester"],
            "reason": "manual",
        }
        if item["environment"] == "PROD":
            options["decisions"] = {
                "Deploy_QA": Decision(QA_DECIDED_AFTER, "approved", qa_approver, "QA ok.")
            }
        sim.queue_run(pipes[item["model"]], at=item["queued"], quiet=True, **options)
    pending = [a for a in sim.approvals.values() if a.status == "pending"]
    return {
        "seconds": time.perf_counter() - started,
        "runs": len(sim.runs),
        "pending": len(pending),
        "by_stage": Counter(a.stage.name for a in pending),
    }


def seed_portal() -> dict:
    """The catalog models, a central registered model each with its versions."""
    from django.utils import timezone

    from registry.models import CatalogModel, ModelVersion, RegisteredModel, RegistrySource

    now = timezone.now()
    central = RegistrySource.objects.create(
        name="central", tracking_uri="http://mlflow.bench.invalid", is_central=True
    )
    catalog = CatalogModel.objects.bulk_create(
        CatalogModel(
            name=name,
            team=TEAMS[i % len(TEAMS)],
            kind="ml",
            registry_team=TEAMS[i % len(TEAMS)],
            registry_kind="ml",
        )
        for i, name in enumerate(MODELS)
    )
    registered = RegisteredModel.objects.bulk_create(
        RegisteredModel(
            source=central,
            catalog_model=entry,
            name=entry.name,
            created_upstream_at=now - dt.timedelta(days=120),
            updated_upstream_at=now,
            last_synced_at=now,
        )
        for entry in catalog
    )
    versions = ModelVersion.objects.bulk_create(
        ModelVersion(
            registered_model=model,
            version=number,
            status="READY",
            source_uri=f"models:/{model.name}/{number}",
            user_id="ds0@example.com",
            metrics={"auc": 0.80 + number / 1000, "log_loss": 0.40 - number / 1000},
            created_upstream_at=now - dt.timedelta(days=120) + dt.timedelta(days=number),
            updated_upstream_at=now,
            last_synced_at=now,
        )
        for model in registered
        for number in range(1, VERSIONS_PER_MODEL + 1)
    )
    return {"catalog": len(catalog), "versions": len(versions)}


# The worker ------------------------------------------------------------------------------------


class Worker:
    """One `celery worker` process on the bench's private Redis queues (the default one and
    the deliveries, syncs and maintenance queues named after it), stopped by its pid."""

    def __init__(self, concurrency: int, log_path: Path):
        self.concurrency, self.log_path = concurrency, log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> Worker:

        from portal.queues import all_queues
        from portal.tasks import ping

        command = [
            sys.executable, "-m", "celery", "-A", "portal", "worker",
            "--loglevel", "WARNING",
            "--concurrency", str(self.concurrency),
            "--without-gossip", "--without-mingle",
            "--queues", ",".join(all_queues()),
            "--hostname", f"bench-approvals-{os.getpid()}@%h",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command, env=dict(os.environ), cwd=BASE_DIR, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            ping.apply_async().get(timeout=timeout)  # answered once the worker consumes
        except Exception as exc:
            self.stop()
            raise RuntimeError(
                f"the worker did not start: {exc}\n{self.log_path.read_text()[-3000:]}"
            ) from exc
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def queue_delete(url: str, name: str) -> None:
    """Remove the bench's private queue from Redis: its list (a redelivered task may linger
    there) and kombu's bindings of its exchange, which Celery names after the queue. Nothing
    else is touched."""
    import redis

    with contextlib.suppress(Exception):
        redis.Redis.from_url(url, socket_timeout=5).delete(
            name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}"
        )


class PatchClock:
    """Notes when the simulator receives a PATCH for each approval (monotonic, this process)."""

    def __init__(self, sim):
        self.received: dict[str, list[float]] = {}
        self.answered: dict[str, float] = {}
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        original = sim.update_approvals

        def update_approvals(updates, *args, **kwargs):
            at = time.perf_counter()
            ids = [str(u.get("approvalId", "")).lower() for u in updates if isinstance(u, dict)]
            with self.lock:
                for approval_id in ids:
                    self.received.setdefault(approval_id, []).append(at)
                self.arrived.notify_all()
            try:
                return original(updates, *args, **kwargs)
            finally:
                done = time.perf_counter()
                with self.lock:
                    for approval_id in ids:
                        self.answered.setdefault(approval_id, done)

        sim.update_approvals = update_approvals

    def wait_for(self, approval_ids: list[str], timeout: float = 60) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not all(a in self.received for a in approval_ids):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [a for a in approval_ids if a not in self.received]
                    raise RuntimeError(f"no PATCH within {timeout:.0f} s for {missing[:5]}")
                self.arrived.wait(left)
            return {a: self.received[a][0] for a in approval_ids}


def wait_delivered(message_ids: list[int], timeout: float = 60) -> float:
    """Poll until every outbox message is delivered; the time it was first seen so."""
    from approvals.models import OutboxMessage, OutboxState

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = OutboxMessage.objects.filter(pk__in=message_ids, state=OutboxState.DELIVERED)
        if done.count() == len(message_ids):
            return time.perf_counter()
        time.sleep(0.005)
    states = Counter(
        OutboxMessage.objects.filter(pk__in=message_ids).values_list("state", flat=True)
    )
    raise RuntimeError(f"not all delivered within {timeout:.0f} s: {dict(states)}")


def decide(approval, user) -> tuple[float, float, int]:
    """The click: (started, committed, outbox message id)."""
    from approvals import services

    started = time.perf_counter()
    decision = services.approval_decide(
        approval_id=approval.pk,
        user=user,
        status="approved",
        comment="Evidence reviewed in the bench.",
        via="web",
    )
    return started, time.perf_counter(), decision.outbox.pk


def measure_clicks(approvals: list, user, clock: PatchClock, args) -> dict:
    sequential = {"click_to_patch": [], "decide": [], "click_to_delivered": []}
    for approval in approvals[: args.sequential]:
        started, committed, message_id = decide(approval, user)
        received = clock.wait_for([approval.ado_id])[approval.ado_id]
        delivered = wait_delivered([message_id])
        sequential["click_to_patch"].append(received - started)
        sequential["decide"].append(committed - started)
        sequential["click_to_delivered"].append(delivered - started)
    bursts = {"click_to_patch": [], "decide": [], "last_of_burst": []}
    rest = approvals[args.sequential :]
    for b in range(args.burst_count):
        burst = rest[b * args.burst_size : (b + 1) * args.burst_size]
        time.sleep(1.0)  # the worker idle again, as between two people's clicks
        clicks = [(approval, *decide(approval, user)) for approval in burst]
        received = clock.wait_for([a.ado_id for a in burst])
        wait_delivered([c[3] for c in clicks])
        latencies = [received[a.ado_id] - started for a, started, _c, _m in clicks]
        bursts["click_to_patch"] += latencies
        bursts["decide"] += [committed - started for _a, started, committed, _m in clicks]
        bursts["last_of_burst"].append(max(received.values()) - clicks[0][1])
    return {"sequential": sequential, "bursts": bursts}


def measure_during_poll(approvals: list, user, clock: PatchClock, project_id: int) -> dict:
    """Decisions made while the worker runs the beat's approvals poll of the project: with
    one worker process, their delivery tasks wait in the queue behind it."""
    from approvals.tasks import sync_project_approvals

    time.sleep(1.0)
    poll = sync_project_approvals.apply_async(args=(project_id,))
    time.sleep(0.5)  # the worker has taken it
    clicks = []
    for approval in approvals:
        clicks.append((approval, *decide(approval, user)))
        time.sleep(2.0)
    received = clock.wait_for([a.ado_id for a in approvals], timeout=600)
    wait_delivered([c[3] for c in clicks], timeout=600)
    poll.get(timeout=600)
    from approvals.models import ApprovalSync

    state = ApprovalSync.objects.get(project_id=project_id)
    took = None
    if state.last_started_at and state.last_succeeded_at:
        took = (state.last_succeeded_at - state.last_started_at).total_seconds()
    return {
        "click_to_patch": [received[a.ado_id] - started for a, started, _c, _m in clicks],
        "poll_seconds": took,
    }


def spread(samples: list[float]) -> dict:
    if not samples:
        return {}
    ms = sorted(s * 1000 for s in samples)
    if len(ms) >= 2:
        cuts = statistics.quantiles(ms, n=100, method="inclusive")
        p95 = cuts[94]
    else:
        p95 = ms[0]
    return {"p50": statistics.median(ms), "p95": p95, "max": ms[-1], "n": len(ms)}


# Main ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    check(args.pending >= 3, "--pending must be at least 3")
    db_url = bench_database_url(args.db_name)
    # Before Django reads its settings: the test settings on the bench database, a private
    # queue on the local Redis, the simulator's PAT, no notification e-mails.
    queue = f"bench-approvals-{uuid.uuid4().hex[:12]}"
    command = " ".join([".venv/bin/python bench/approvals.py", *(argv or sys.argv[1:])])
    results: dict = {"args": vars(args), "command": command}

    name = django_setup_on_bench_database(
        db_url, CELERY_QUEUE=queue, AZURE_DEVOPS_PAT=PAT, APPROVALS_NOTIFY="false"
    )
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from ado_simulator import AdoSimulator
    from approvals import services
    from approvals.models import (
        ApprovalRequest,
        ApprovalStatus,
        AuditAction,
        AuditEvent,
        OutboxMessage,
        OutboxState,
    )
    from pipelines import services as pipelines_services
    from pipelines.client import AdoClient, AdoCredentials
    from pipelines.models import AdoProject
    from portal.queues import all_queues
    from registry.devserver import free_port

    check(queue == settings.CELERY_TASK_DEFAULT_QUEUE, "the private queue")
    check(not settings.APPROVALS_NOTIFY, "notifications off")
    print(f"Bench database: {name} (recreated); queue {queue} on {settings.CELERY_BROKER_URL}")
    pg_version = database_recreate(db_url)
    sim = client = gunicorn = worker = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-approvals-"))
    try:
        now = dt.datetime.now(tz=dt.UTC).replace(microsecond=0)
        # The simulated clock stays a minute behind real time: ADO's timestamps never lead
        # the portal's clock.
        sim = AdoSimulator(pats={PAT: PAT_USER}, start=now - dt.timedelta(minutes=1)).start()
        print(f"ADO simulator on {sim.url}")
        plan = waiting_plan(args.pending, sim.clock.now())
        print(f"Queuing {len(plan)} release runs that wait at an approval...")
        results["seed"] = seed_simulator(sim, plan)
        check(results["seed"]["pending"] == args.pending, results["seed"])
        print(f"  {results['seed']}")

        started = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        results["migrate_seconds"] = time.perf_counter() - started
        results["portal_seed"] = seed_portal()
        project = AdoProject.objects.create(
            name="bench", organization_url=sim.org_url, project="MLOps"
        )
        client = AdoClient(sim.org_url, "MLOps", AdoCredentials(pat=PAT))

        print("Mirroring: full pipelines sync, then the approvals poll...")
        synced = pipelines_services.project_sync(project=project, full=True, client=client)
        check(synced.ok, synced.as_dict())
        results["pipelines_sync_seconds"] = synced.duration_seconds
        started = time.perf_counter()
        first = services.project_approvals_sync(project=project, client=client)
        results["poll_first_seconds"] = time.perf_counter() - started
        # The first poll also imports the project's decided history (the seed's own decisions).
        check(first.ok and first.created == args.pending + first.imported, first.as_dict())
        polls = []
        for _ in range(3):
            started = time.perf_counter()
            again = services.project_approvals_sync(project=project, client=client)
            polls.append(time.perf_counter() - started)
            check(again.ok and again.unchanged == args.pending, again.as_dict())
        results["poll_again_seconds"] = polls
        print(f"  first poll {results['poll_first_seconds']:.1f} s, again {polls}")
        pending = ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING)
        from approvals import selectors

        results["mirror"] = {
            "pending": pending.count(),
            "by_environment": Counter(pending.values_list("environment", flat=True)),
            "linked": pending.filter(run__isnull=False, model_version__isnull=False).count(),
            "overdue": pending.filter(created_on__lt=selectors.overdue_cutoff()).count(),
        }
        check(results["mirror"]["linked"] == args.pending, results["mirror"])
        print(f"  {results['mirror']}")

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")

        # Pages, served by gunicorn, as a signed-in approver.
        import requests
        from django.contrib.auth import get_user_model
        from django.test import Client
        from django.urls import reverse

        from core.roles import Role
        from portal.services import role_groups_ensure

        approver = get_user_model().objects.create_user(
            "bench-approver",
            "bench-approver@example.com",
            "not-used-bench-only",
            first_name="Bench",
            last_name="Approver",
        )
        approver.groups.add(role_groups_ensure()[Role.APPROVER])
        login = Client()
        login.force_login(approver)
        cookie = {settings.SESSION_COOKIE_NAME: login.cookies[settings.SESSION_COOKIE_NAME].value}
        inbox = reverse("approvals:inbox")
        pages = {
            "inbox, pending tab": inbox,
            "inbox, overdue PROD requests": f"{inbox}?environment=PROD&overdue=on",
            "approvals API, pending": reverse("api:approvals:approval-list"),
        }
        connection.close()
        gunicorn = Gunicorn(
            {**os.environ, "WEB_CONCURRENCY": "1"}, free_port(), tmp / "gunicorn.log"
        ).start()
        http = requests.Session()
        http.cookies.update(cookie)
        latencies = {}
        for label, path in pages.items():

            def get(i, path=path):
                response = http.get(gunicorn.url + path, timeout=60)
                if response.status_code != 200:
                    raise RuntimeError(f"{response.url}: {response.status_code}")
                return response

            body = get(0)
            samples = timed(get, args.requests)
            latencies[label] = {"samples": samples, "bytes": len(body.content), "path": path}
            print(f"  {label}: p50/p95 {percentiles(samples)}")
        gunicorn.stop()
        results["pages"] = latencies
        results["load_after_pages"] = os.getloadavg()

        # Click to PATCH, with one real worker delivering, once per concurrency.
        per_pass = args.sequential + args.burst_count * args.burst_size + args.during_poll
        needed = per_pass * len(args.concurrencies)
        qa = list(
            ApprovalRequest.objects.filter(status=ApprovalStatus.PENDING, environment="QA")
            .select_related("run")
            .order_by("pk")[:needed]
        )
        check(len(qa) == needed, f"{needed} pending QA approvals needed, {len(qa)} there")
        clock = PatchClock(sim)
        results["clicks"] = {}
        results["load_before_clicks"] = os.getloadavg()
        for n, concurrency in enumerate(args.concurrencies):
            mine = qa[n * per_pass : (n + 1) * per_pass]
            print(f"Starting one worker (concurrency {concurrency}) on {queue}...")
            worker = Worker(concurrency, tmp / f"worker-{concurrency}.log").start()
            print(
                f"{args.sequential} decisions one after the other, then {args.burst_count} "
                f"bursts of {args.burst_size}..."
            )
            clicks = measure_clicks(mine, approver, clock, args)
            if args.during_poll:
                print(f"{args.during_poll} decisions while the worker runs an approvals poll...")
                during = mine[per_pass - args.during_poll :]
                clicks["during_poll"] = measure_during_poll(during, approver, clock, project.pk)
            worker.stop()
            results["clicks"][concurrency] = clicks
            for label, part in clicks.items():
                print(f"  {label}: click to PATCH {spread(part['click_to_patch'])}")
        results["load_after"] = os.getloadavg()
        decided = {a.ado_id for a in qa}
        patches = {a: len(times) for a, times in clock.received.items() if a in decided}
        check(set(patches) == decided, "a PATCH for every decision")
        check(set(patches.values()) == {1}, f"one PATCH each: {Counter(patches.values())}")
        check(all(sim.approval(a).status == "approved" for a in decided), "approved in ADO")
        delivered = OutboxMessage.objects.filter(state=OutboxState.DELIVERED).count()
        check(delivered == needed, f"{delivered} of {needed} outbox messages delivered")
        results["audit_rows"] = AuditEvent.objects.filter(
            action=AuditAction.DELIVERY_DELIVERED
        ).count()
        connection.close()

        results["facts"] = machine_facts(pg_version)
        results["facts"]["redis"] = redis_version(settings.CELERY_BROKER_URL)
        results["facts"]["celery"] = celery_version()
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
        if worker is not None:
            worker.stop()
        for name in all_queues():
            queue_delete(settings.CELERY_BROKER_URL, name)
        if client is not None:
            client.close()
        if sim is not None:
            sim.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if not args.keep_db:
            database_drop(db_url)
            print("Bench database dropped.")
    return 0


def redis_version(url: str) -> str:
    import redis

    with contextlib.suppress(Exception):
        return redis.Redis.from_url(url, socket_timeout=5).info().get("redis_version", "?")
    return "unknown"


def celery_version() -> str:
    import celery

    return celery.__version__


# The report ------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _row(label: str, samples: list[float]) -> str:
    s = spread(samples)
    return f"| {label} | {s['n']} | {_ms(s['p50'])} | {_ms(s['p95'])} | {_ms(s['max'])} |"


def _verdict(p95_ms: float) -> str:
    return "**met**" if p95_ms / 1000 < TARGET_P95_SECONDS else "**not met**"


def render(results: dict) -> str:
    args, facts, seed, mirror = (
        results["args"],
        results["facts"],
        results["seed"],
        results["mirror"],
    )
    by_env = mirror["by_environment"]
    polls = results["poll_again_seconds"]
    lines = [
        f"Run on {results['date']} with:",
        "",
        "```bash",
        results["command"] or ".venv/bin/python bench/approvals.py",
        "```",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']} memory, "
        f"{facts['os']}; PostgreSQL {facts['postgresql']}, Redis {facts['redis']}, Python "
        f"{facts['python']}, Django {facts['django']}, Celery {facts['celery']}. The ADO "
        "simulator runs in the bench process, over loopback.",
        f"Load average (1, 5, 15 min) after the page measurements: "
        f"{load_average(results['load_after_pages'])}; before the clicks: "
        f"{load_average(results['load_before_clicks'])}; after them: "
        f"{load_average(results['load_after'])} (the machine is shared: other work running at "
        "the same time shows here).",
        "",
        f"Data: {mirror['pending']:,} pending approvals ({by_env.get('QA', 0):,} QA, "
        f"{by_env.get('PROD', 0):,} PROD; {mirror['overdue']:,} overdue, i.e. open for more "
        f"than a day) of {seed['runs']:,} release runs of {len(MODELS)} models waiting in the "
        f"ADO simulator, each linked to its run, stage and model version "
        f"({results['portal_seed']['versions']} versions in the registry mirror). Mirrored "
        f"as beat does it: the full pipelines sync took "
        f"{results['pipelines_sync_seconds']:.1f} s; the first approvals poll "
        f"(`state=pending&$expand=steps`, {mirror['pending']:,} requests created, an audit row "
        f"each) {results['poll_first_seconds']:.1f} s; a poll with nothing changed "
        f"{statistics.median(polls):.2f} s (median of 3: "
        f"{', '.join(f'{p:.2f}' for p in polls)} s), which beat pays every minute.",
        "",
        "Pages after `VACUUM ANALYZE`, "
        f"{args['requests']} sequential requests each (after 3 warm-up requests), over HTTP on "
        "loopback: the portal served by gunicorn with 1 sync worker, signed in as an approver "
        "(session cookie).",
        "",
        "| request | p50 | p95 | response size |",
        "| --- | --- | --- | --- |",
    ]
    for label, page in results["pages"].items():
        p50, p95 = percentiles(page["samples"])
        lines.append(
            f"| {label} (`{page['path']}`) | {_ms(p50)} | {_ms(p95)} "
            f"| {page['bytes'] / 1024:.0f} KiB |"
        )
    concurrencies = ", ".join(str(c) for c in results["clicks"])
    lines += [
        "",
        "Click to PATCH: one `celery worker` process (prefetch 1, `acks_late`) on Redis with a "
        f"private queue, run with each concurrency in turn ({concurrencies}), delivering to "
        "the simulator over HTTP. The clock starts when `approval_decide` is called (the "
        "decision, its outbox message and audit row committed in one transaction, then the "
        "delivery task published) and stops when the simulator receives the PATCH for that "
        "approval (its `update_approvals` noted with the monotonic clock of the same process). "
        "Before the PATCH the worker claims the message and reads the approval from ADO (a "
        "GET); after it records the outcome. Every decision reached ADO exactly once "
        f"({results['audit_rows']} `delivery.delivered` audit rows, one PATCH per approval).",
        "",
        "| worker concurrency | measurement | decisions | p50 | p95 | max |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    verdicts = []
    for concurrency, clicks in results["clicks"].items():
        seq, bursts = clicks["sequential"], clicks["bursts"]
        rows = [
            ("one after the other: click to PATCH received", seq["click_to_patch"]),
            ("&nbsp;&nbsp;of which `approval_decide` (rules, 3 rows, commit)", seq["decide"]),
            (
                "&nbsp;&nbsp;click to outbox marked delivered (polled every 5 ms)",
                seq["click_to_delivered"],
            ),
        ]
        if bursts["click_to_patch"]:
            rows += [
                (
                    f"in bursts of {args['burst_size']} made back to back: click to PATCH received",
                    bursts["click_to_patch"],
                ),
                ("&nbsp;&nbsp;first click to the burst's last PATCH", bursts["last_of_burst"]),
            ]
        during = clicks.get("during_poll")
        if during:
            took = during.get("poll_seconds")
            rows.append(
                (
                    "2 s apart while the same worker runs an approvals poll (queued 0.5 s "
                    "before the first"
                    + (f"; the poll took {took:.1f} s on the worker" if took else "")
                    + "): click to PATCH received",
                    during["click_to_patch"],
                )
            )
        lines += [f"| {concurrency} {_row(label, samples)}" for label, samples in rows]
        idle = max(
            spread(part)["p95"]
            for part in (seq["click_to_patch"], bursts["click_to_patch"])
            if part
        )
        verdicts.append(
            f"| click to PATCH p95 < {TARGET_P95_SECONDS:.0f} s, worker concurrency "
            f"{concurrency}, otherwise idle | {_ms(idle)} (the worse of one after the other "
            f"and bursts) | {_verdict(idle)} |"
        )
        if during:
            busy = spread(during["click_to_patch"])["p95"]
            verdicts.append(
                f"| the same while that worker runs an approvals poll | {_ms(busy)} "
                f"| {_verdict(busy)} |"
            )
    lines += ["", "| target | measured | verdict |", "| --- | --- | --- |", *verdicts]
    return "\n".join(lines)


def write_report(path: Path, report: str) -> None:
    intro = (
        f"{SECTION_TITLE}\n\n`bench/approvals.py` produces the numbers (what it does and its "
        "options: its docstring, `--help`); it rewrites only the section between the "
        "`bench:approvals` markers below."
    )
    report_write(path, report, name="approvals", intro=intro)


if __name__ == "__main__":
    sys.exit(main())
