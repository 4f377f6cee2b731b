"""Benchmark of operations: signal intake latency at a fixed rate on one gunicorn worker, and
the time from a signal to the run it requests existing in ADO (the simulator).

    .venv/bin/python bench/operations.py [--rate 100 --duration 60 --e2e-signals 40]

What it does, every time from scratch:

1. starts the ADO simulator in this process (ado_simulator.AdoSimulator, loopback, a port in
   8510-8530) with a training pipeline per catalog model; creates a PostgreSQL database of its
   own (default ``portal_bench_operations``; never the test database), migrates it, adds the
   catalog models (``--models`` for the load, ``--e2e-signals`` more for the second part), their
   mirrored training pipelines, an automatic trigger policy for the team (cooldown 60 min,
   3 runs a day, 15 min dedupe window: the defaults) and an alert-rule match rule per model;
2. counts, in-process (Django test Client, CaptureQueriesContext), the SQL statements of one
   signal request per path: a signal that starts an episode, one that joins it, a duplicate,
   an unmatched one, and an Azure Monitor alert matched by its alert rule;
3. serves the portal with gunicorn (gunicorn.conf.py, 1 sync worker, CONN_MAX_AGE as in
   production) and starts one real ``celery worker`` on Redis (private queues, concurrency 1)
   that delivers run requests to the simulator;
4. capacity: sends signals closed-loop (2 client threads) for ``--capacity-seconds``; then the
   load: open-loop at a fixed ``--rate`` for ``--duration`` seconds (after ``--warmup`` s at the
   same rate, not counted), each request sent at its scheduled time by a pool of client threads
   whatever became of the earlier ones: generic signals (a model named in the payload) and
   Azure Monitor alerts (``--alert-share``, matched by alert rule), each with its own dedupe
   key, and ``--duplicate-share`` redeliveries of an earlier body. Latency is measured from the
   scheduled send time (so a stalled server counts in full: no coordinated omission) and from
   the actual send; p50/p95/p99/max, the rate achieved, and every answer that was not 202 (200
   for a duplicate) counted as an error. Afterwards it checks the database: one raw row per
   request, one signal per distinct key, every signal decided;
5. signal to run requested: ``--e2e-signals`` signals for distinct models (automatic policy),
   one every ``--e2e-interval`` s over HTTP, each timed from just before its POST to the
   simulator holding the run it requested (the simulator's ``queue_run`` is wrapped to note the
   time it returns; both clocks are this process's); checks each model got exactly one run;
6. writes the results into docs/performance.md between the ``bench:operations`` markers, stops
   gunicorn and the worker by their pids, deletes its Redis queues and drops the database.

Settings are portal.settings.test with TEST_DATABASE_URL pointed at the bench database (set
BENCH_DATABASE_URL to choose another server or name; the name must contain "bench") and the
Redis of TEST_REDIS_URL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import queue as queue_module
import socket
import statistics
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

from bench.approvals import Worker, celery_version, queue_delete  # noqa: E402
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
from bench.registry import Gunicorn  # noqa: E402

SECTION = "operations"
SECTION_TITLE = "## Operations: signal intake at 100 requests/s, and signal to run requested"
PAT = "bench-operations-pat-not-a-secret"  # the in-process simulator's PAT, nothing real
PAT_USER = "portal-runs@example.com"
TEAM = "bench-ops"
PORTS = range(8510, 8531)
ALERTS = "/subscriptions/bench/providers/Microsoft.AlertsManagement/alerts"
TARGET_INTAKE_P95_MS = 50.0
TARGET_E2E_P95_S = 5.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds at --rate, not counted")
    parser.add_argument(
        "--capacity-seconds", type=float, default=10.0, help="closed-loop run first (0: none)"
    )
    parser.add_argument("--models", type=int, default=50, help="catalog models the load names")
    parser.add_argument("--alert-share", type=float, default=0.2, help="Azure Monitor alerts")
    parser.add_argument("--duplicate-share", type=float, default=0.1, help="redeliveries")
    parser.add_argument("--clients", type=int, default=64, help="client threads of the load")
    parser.add_argument(
        "--e2e-signals", type=int, default=40, help="signals for distinct models (0: skip)"
    )
    parser.add_argument("--e2e-interval", type=float, default=0.5, help="seconds between them")
    parser.add_argument("--db-name", default="portal_bench_operations", help="bench database")
    parser.add_argument(
        "--output",
        default=str(BASE_DIR / "docs" / "performance.md"),
        help="Markdown file whose bench:operations section is (re)written",
    )
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be positive")
    if not (0 <= args.alert_share <= 1 and 0 <= args.duplicate_share < 1):
        parser.error("--alert-share is 0..1, --duplicate-share 0..<1")
    if args.models < 1 or args.clients < 1:
        parser.error("--models and --clients must be 1 or more")
    return args


def port_in_range() -> int:
    """A port of 8510-8530 nothing listens on (this helper's range on the shared machine)."""
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def stats_ms(samples: list[float]) -> dict:
    """p50 / p95 / p99 / max in milliseconds of samples in seconds."""
    if not samples:
        return {"count": 0}
    ms = sorted(s * 1000 for s in samples)
    if len(ms) == 1:
        return {"count": 1, "p50": ms[0], "p95": ms[0], "p99": ms[0], "max": ms[0]}
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"count": len(ms), "p50": statistics.median(ms), "p95": cuts[94], "p99": cuts[98],
            "max": ms[-1], "mean": statistics.fmean(ms)}  # fmt: skip


# Seeding ---------------------------------------------------------------------------------------


def model_name(i: int) -> str:
    return f"bench-ops-{i:04d}"


def e2e_name(i: int) -> str:
    return f"bench-e2e-{i:04d}"


def alert_rule(name: str) -> str:
    return f"{name}-auc-drop"


def seed(sim, models: list[str]) -> dict:
    """Simulator pipelines, then the portal's catalog, mirror, policy and match rules."""
    from operations.models import MatchField, MatchRule, TriggerMode, TriggerPolicy
    from pipelines.models import AdoProject, Pipeline, PipelineKind
    from registry.models import CatalogModel

    project = AdoProject.objects.create(name="bench", organization_url=sim.org_url, project="MLOps")
    catalog = CatalogModel.objects.bulk_create(
        CatalogModel(name=name, team=TEAM, kind="ml") for name in models
    )
    pipelines = []
    for entry in catalog:
        pipe = sim.create_pipeline(
            f"{TEAM}-{entry.name}-train", "training", folder=f"\\{TEAM}\\{entry.name}",
            model=entry.name,
        )  # fmt: skip
        pipelines.append(
            Pipeline(
                project=project,
                ado_id=pipe.id,
                name=pipe.name,
                folder=pipe.folder,
                kind=PipelineKind.TRAINING,
                catalog_model=entry,
            )
        )
    Pipeline.objects.bulk_create(pipelines)
    TriggerPolicy.objects.create(team=TEAM, mode=TriggerMode.AUTOMATIC)
    MatchRule.objects.bulk_create(
        MatchRule(field=MatchField.ALERT_RULE, value=alert_rule(e.name), catalog_model=e)
        for e in catalog
    )
    return {"models": len(catalog), "pipelines": len(pipelines)}


# Payloads --------------------------------------------------------------------------------------


def generic_body(model: str, key: str) -> bytes:
    now = dt.datetime.now(tz=dt.UTC).isoformat()
    return json.dumps(
        {
            "model": model,
            "kind": "drift",
            "severity": "warning",
            "observed_at": now,
            "id": key,
            "source": "bench-monitor",
            "title": f"PSI 0.31 on amount ({key})",
            "details": {"psi": 0.31, "feature": "amount"},
            "tags": {"team": TEAM},
        }
    ).encode()


def alert_body(model: str, key: str) -> bytes:
    now = dt.datetime.now(tz=dt.UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "schemaId": "azureMonitorCommonAlertSchema",
            "data": {
                "essentials": {
                    "alertId": f"{ALERTS}/{key}",
                    "alertRule": alert_rule(model),
                    "severity": "Sev2",
                    "signalType": "Metric",
                    "monitorCondition": "Fired",
                    "monitoringService": "Platform",
                    "alertTargetIDs": [f"/subscriptions/bench/workspaces/{model}-ws"],
                    "firedDateTime": now,
                    "essentialsVersion": "1.0",
                    "alertContextVersion": "1.0",
                },
                "alertContext": {"condition": {"allOf": [{"metricName": "auc"}]}},
                "customProperties": None,
            },
        }
    ).encode()


class Plan:
    """The requests of the load, in order: (slug, body, expected status). Every new signal has
    a key of its own; one request in ``1 / duplicate_share`` repeats a body sent 7 new
    signals earlier (a redelivery), one new signal in ``1 / alert_share`` is an alert."""

    def __init__(self, args, prefix: str):
        self.items: list[tuple[str, bytes, int]] = []
        self.args, self.prefix = args, prefix
        self.sent_new: list[tuple[str, bytes]] = []
        self.count = 0  # every request planned so far
        self.dup_every = round(1 / args.duplicate_share) if args.duplicate_share else 0
        self.alert_every = round(1 / args.alert_share) if args.alert_share else 0

    def next(self) -> tuple[str, bytes, int]:
        n = self.count
        self.count += 1
        if self.dup_every and n % self.dup_every == self.dup_every - 1 and self.sent_new:
            slug, body = self.sent_new[max(0, len(self.sent_new) - 7)]
            item = (slug, body, 200)
        else:
            model = model_name(n % self.args.models)
            key = f"{self.prefix}-{n}"
            if self.alert_every and len(self.sent_new) % self.alert_every == 1:
                slug, body = "azure-monitor", alert_body(model, key)
            else:
                slug, body = "generic", generic_body(model, key)
            self.sent_new.append((slug, body))
            item = (slug, body, 202)
        self.items.append(item)
        return item

    def build(self, count: int) -> list[tuple[str, bytes, int]]:
        return [self.next() for _ in range(count)]


# The load --------------------------------------------------------------------------------------


class Sender:
    """Thread-local requests sessions posting to the signal endpoints with their shared keys."""

    def __init__(self, base_url: str, keys: dict[str, str]):
        self.base_url, self.keys = base_url, keys
        self.local = threading.local()

    def post(self, slug: str, body: bytes):
        import requests

        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session.post(
            f"{self.base_url}/api/v1/operations/signals/{slug}/",
            data=body,
            headers={"Content-Type": "application/json", "X-Signal-Key": self.keys[slug]},
            timeout=30,
        )


def open_loop(sender: Sender, items, rate: float, clients: int) -> dict:
    """Send ``items`` at ``rate`` per second, each at its scheduled time (open loop)."""
    jobs: queue_module.Queue = queue_module.Queue()
    results: list[tuple[float, float, int, int]] = []  # from schedule, from send, status, wanted
    errors: Counter = Counter()
    lock = threading.Lock()

    def client():
        while True:
            job = jobs.get()
            if job is None:
                return
            scheduled, slug, body, wanted = job
            sent = time.perf_counter()
            try:
                status = sender.post(slug, body).status_code
            except Exception as exc:  # a refused or reset connection is an error, not a crash
                status = 0
                with lock:
                    errors[type(exc).__name__] += 1
            done = time.perf_counter()
            with lock:
                results.append((done - scheduled, done - sent, status, wanted))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    load_before = os.getloadavg()
    start = time.perf_counter() + 0.2
    lag = []
    for i, (slug, body, wanted) in enumerate(items):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        lag.append(max(0.0, time.perf_counter() - scheduled))
        jobs.put((scheduled, slug, body, wanted))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join(timeout=120)
    elapsed = time.perf_counter() - start
    statuses = Counter(r[2] for r in results)
    wrong = sum(1 for r in results if r[2] != r[3])
    return {
        "requests": len(items),
        "answered": len(results),
        "elapsed": elapsed,
        "achieved_rate": len(results) / elapsed if elapsed else 0,
        "from_schedule": stats_ms([r[0] for r in results]),
        "from_send": stats_ms([r[1] for r in results]),
        "dispatch_lag": stats_ms(lag),
        "statuses": dict(sorted(statuses.items())),
        "wrong_status": wrong,
        "exceptions": dict(errors),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def closed_loop(sender: Sender, plan: Plan, seconds: float, threads: int = 2) -> dict:
    """As many signals as the worker takes, ``threads`` requests in flight, for ``seconds``."""
    done: list[float] = []
    wrong = Counter()
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def run():
        while time.perf_counter() < stop:
            with lock:
                slug, body, wanted = plan.next()
            started = time.perf_counter()
            status = sender.post(slug, body).status_code
            with lock:
                done.append(time.perf_counter() - started)
                if status != wanted:
                    wrong[status] += 1

    pool = [threading.Thread(target=run) for _ in range(threads)]
    began = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    return {
        "requests": len(done),
        "seconds": elapsed,
        "rate": len(done) / elapsed,
        "latency": stats_ms(done),
        "wrong_status": dict(wrong),
    }


# Query counts ----------------------------------------------------------------------------------


def query_counts(keys: dict[str, str]) -> list[dict]:
    """SQL statements of one request per path, in-process (the test Client, no HTTP)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()

    def post(slug, body):
        return client.post(
            f"/api/v1/operations/signals/{slug}/", data=body, content_type="application/json",
            HTTP_X_SIGNAL_KEY=keys[slug],
        )  # fmt: skip

    post("generic", generic_body(model_name(0), "warm-0"))  # warms the process's caches
    post("generic", generic_body(model_name(0), "warm-1"))
    first_model = model_name(0)
    rows = []
    cases = [
        ("starts an episode (a model with none open)", "generic",
         generic_body(model_name(1), "qc-start")),
        ("joins the open episode", "generic", generic_body(first_model, "qc-join")),
        ("duplicate (a redelivery)", "generic", generic_body(first_model, "qc-join")),
        ("unmatched (no such model)", "generic", generic_body("no-such-model", "qc-unmatched")),
        ("Azure Monitor alert, matched by alert rule, joins", "azure-monitor",
         alert_body(first_model, "qc-alert")),
    ]  # fmt: skip
    for label, slug, body in cases:
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = post(slug, body)
            elapsed = time.perf_counter() - started
        answer = response.json()
        rows.append(
            {
                "label": label,
                "status": response.status_code,
                "disposition": ", ".join(s["disposition"] or "pending" for s in answer["signals"])
                or "—",
                "queries": len(queries),
                "ms": elapsed * 1000,
            }
        )
    return rows


# Signal to run requested -----------------------------------------------------------------------


class RunClock:
    """Notes when the simulator holds a run queued for each model (monotonic, this process)."""

    def __init__(self, sim):
        self.arrived: dict[str, list[float]] = {}
        self.lock = threading.Condition()
        original = sim.queue_run

        def queue_run(pipeline, *args, **kwargs):
            run = original(pipeline, *args, **kwargs)
            at = time.perf_counter()
            model = str((kwargs.get("template_parameters") or {}).get("modelName", ""))
            with self.lock:
                self.arrived.setdefault(model, []).append(at)
                self.lock.notify_all()
            return run

        sim.queue_run = queue_run

    def wait_for(self, names: list[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while not all(n in self.arrived for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True


def signal_to_run(sender: Sender, clock: RunClock, names: list[str], interval: float) -> dict:
    posted: dict[str, float] = {}
    post_ms = []
    statuses = Counter()
    for name in names:
        started = time.perf_counter()
        posted[name] = started
        response = sender.post("generic", generic_body(name, f"e2e-{name}"))
        post_ms.append(time.perf_counter() - started)
        statuses[response.status_code] += 1
        time.sleep(max(0.0, interval - (time.perf_counter() - started)))
    arrived = clock.wait_for(names, timeout=120)
    with clock.lock:
        times = {n: clock.arrived.get(n, []) for n in names}
    latencies = [times[n][0] - posted[n] for n in names if times[n]]
    return {
        "signals": len(names),
        "all_arrived": arrived,
        "missing": [n for n in names if not times[n]],
        "runs_per_model": Counter(len(v) for v in times.values()),
        "statuses": dict(statuses),
        "post": stats_ms(post_ms),
        "to_run": stats_ms(latencies),
    }


# Checks ----------------------------------------------------------------------------------------


def database_check(plan: Plan, since_raw: int, timeout: float = 120) -> dict:
    """One raw row per request sent, one signal per distinct key, every signal decided (the
    worker may still be deciding: waits up to ``timeout``)."""
    from operations.models import RawSignal, Signal

    raws = RawSignal.objects.filter(pk__gt=since_raw)
    keys = {body for _, body, wanted in plan.items if wanted == 202}
    deadline = time.monotonic() + timeout
    while True:
        pending = Signal.objects.filter(raw__pk__gt=since_raw, disposition="").count()
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)
    signals = Signal.objects.filter(raw__pk__gt=since_raw)
    return {
        "raw_rows": raws.count(),
        "requests": len(plan.items),
        "signals": signals.count(),
        "distinct_new": len(keys),
        "undecided": pending,
        "outcomes": dict(Counter(raws.values_list("outcome", flat=True))),
        "dispositions": dict(Counter(signals.values_list("disposition", flat=True))),
    }


# Main ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    db_url = bench_database_url(args.db_name)
    queue = f"bench-operations-{uuid.uuid4().hex[:12]}"
    command = " ".join([".venv/bin/python bench/operations.py", *(argv or sys.argv[1:])])
    results: dict = {"args": vars(args), "command": command}
    # Before Django reads its settings: the bench database, a private queue, the simulator's
    # PAT, and persistent database connections in gunicorn as production has them.
    name = django_setup_on_bench_database(
        db_url, CELERY_QUEUE=queue, AZURE_DEVOPS_PAT=PAT, DJANGO_CONN_MAX_AGE="60"
    )
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from ado_simulator import AdoSimulator
    from operations.models import RawSignal
    from portal.queues import all_queues

    check(queue == settings.CELERY_TASK_DEFAULT_QUEUE, "the private queue")
    keys = {slug: secrets[0] for slug, secrets in settings.OPERATIONS_SIGNAL_SECRETS.items()}
    print(f"Bench database: {name} (recreated); queue {queue} on {settings.CELERY_BROKER_URL}")
    pg_version = database_recreate(db_url)
    sim = gunicorn = worker = None
    tmp = Path(tempfile.mkdtemp(prefix="bench-operations-"))
    try:
        now = dt.datetime.now(tz=dt.UTC).replace(microsecond=0)
        sim = AdoSimulator(
            port=port_in_range(), pats={PAT: PAT_USER}, start=now - dt.timedelta(minutes=1)
        ).start()
        print(f"ADO simulator on {sim.url}")
        call_command("migrate", interactive=False, verbosity=0)
        load_models = [model_name(i) for i in range(args.models)]
        e2e_models = [e2e_name(i) for i in range(args.e2e_signals)]
        results["seed"] = seed(sim, load_models + e2e_models)
        print(f"  seeded {results['seed']}")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        results["queries"] = query_counts(keys)
        for row in results["queries"]:
            print(f"  {row['label']}: {row['status']} {row['disposition']}, {row['queries']} SQL")
        connection.close()

        clock = RunClock(sim)
        worker = Worker(1, tmp / "worker.log").start()
        print("Worker up (concurrency 1)")
        gunicorn = Gunicorn(dict(os.environ), port_in_range(), tmp / "gunicorn.log").start()
        print(f"gunicorn (1 sync worker) on {gunicorn.url}")
        sender = Sender(gunicorn.url, keys)
        plan = Plan(args, uuid.uuid4().hex[:8])
        for i in range(20):  # warm the worker process
            sender.post("generic", generic_body(model_name(i % args.models), f"warm-up-{i}"))
        since_raw = RawSignal.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

        if args.capacity_seconds > 0:
            print(f"Closed loop for {args.capacity_seconds:g} s (2 requests in flight)...")
            results["capacity"] = closed_loop(sender, plan, args.capacity_seconds)
            print(f"  {results['capacity']['rate']:.1f} requests/s")
        if args.warmup > 0:
            warm = plan.build(int(args.warmup * args.rate))
            print(f"Warm-up: {len(warm)} requests at {args.rate:g}/s...")
            open_loop(sender, warm, args.rate, args.clients)
        items = plan.build(int(args.duration * args.rate))
        print(f"Load: {len(items)} requests at {args.rate:g}/s for {args.duration:g} s...")
        results["load"] = open_loop(sender, items, args.rate, args.clients)
        load = results["load"]
        print(
            f"  achieved {load['achieved_rate']:.1f}/s; from schedule p50 "
            f"{load['from_schedule'].get('p50', 0):.1f} ms p95 "
            f"{load['from_schedule'].get('p95', 0):.1f} ms; statuses {load['statuses']}"
        )
        results["check"] = database_check(plan, since_raw)
        print(f"  database: {results['check']}")

        if e2e_models:
            print(f"Signal to run requested: {len(e2e_models)} models...")
            results["e2e"] = signal_to_run(sender, clock, e2e_models, args.e2e_interval)
            e2e = results["e2e"]
            print(f"  to run p50 {e2e['to_run'].get('p50', 0):.0f} ms p95 "
                  f"{e2e['to_run'].get('p95', 0):.0f} ms; missing {e2e['missing']}")  # fmt: skip
        results["facts"] = machine_facts(pg_version)
        results["facts"]["celery"] = celery_version()
        results["facts"]["gunicorn"] = gunicorn_version()
        results["date"] = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        if worker is not None:
            worker.stop()
        if sim is not None:
            sim.stop()
        for queue_name in all_queues():
            queue_delete(settings.CELERY_BROKER_URL, queue_name)
        connection.close()
        if not args.keep_db:
            database_drop(db_url)
    report = render(results)
    print("\n" + report)
    if not args.no_write:
        report_write(Path(args.output), report, name=SECTION, intro=SECTION_TITLE)
        print(f"\nWritten to {args.output}")
    return 0


def gunicorn_version() -> str:
    import gunicorn

    return gunicorn.__version__


def _ms(s: dict, key: str) -> str:
    return f"{s[key]:.1f} ms" if key in s else "—"


def render(results: dict) -> str:
    args, facts = results["args"], results["facts"]
    load, check_ = results["load"], results["check"]
    lines = [
        f"Run on {results['date']} with:",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']} memory, "
        f"{facts['os']}; PostgreSQL {facts['postgresql']} (same machine), Redis on 127.0.0.1, "
        f"Python {facts['python']}, Django {facts['django']}, gunicorn {facts['gunicorn']}, "
        f"Celery {facts['celery']}. Load average (1, 5, 15 min) before the load: "
        f"{load_average(load['load_before'])}; after: {load_average(load['load_after'])} "
        "(the machine is shared: other work running at the same time shows here).",
        "",
        f"Set-up: {results['seed']['models']} catalog models with a training pipeline each, one "
        "automatic trigger policy for their team (cooldown 60 min, 3 runs a day, 15 min dedupe "
        "window), an alert-rule match rule per model. The portal is served by gunicorn "
        "(gunicorn.conf.py, 1 sync worker, `CONN_MAX_AGE` 60 as in production) and one "
        "`celery worker` (concurrency 1, private queues) runs beside it, delivering run "
        "requests to the ADO simulator in the bench's process; the load generator (Python "
        "threads, `requests`) runs on the same 2 CPUs.",
        "",
        "SQL statements of one signal request, in-process (Django test Client, "
        "`CaptureQueriesContext`):",
        "",
        "| request | answer | disposition in the answer | SQL statements | time in-process |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in results["queries"]:
        lines.append(
            f"| {row['label']} | {row['status']} | {row['disposition']} | {row['queries']} "
            f"| {row['ms']:.1f} ms |"
        )
    lines.append("")
    if "capacity" in results:
        cap = results["capacity"]
        lines += [
            f"Capacity, closed loop (2 requests in flight, {cap['seconds']:.0f} s): "
            f"**{cap['rate']:.0f} requests/s** on the one worker (p50 "
            f"{_ms(cap['latency'], 'p50')}, p95 {_ms(cap['latency'], 'p95')}).",
            "",
        ]
    fs, fsend = load["from_schedule"], load["from_send"]
    lines += [
        f"Open loop: {load['requests']} requests scheduled at {args['rate']:g}/s for "
        f"{args['duration']:g} s (after {args['warmup']:g} s of warm-up at the same rate), "
        f"{args['clients']} client threads; {1 - args['alert_share']:.0%} generic signals, "
        f"{args['alert_share']:.0%} Azure Monitor alerts (of the new ones), one request in "
        f"{round(1 / args['duplicate_share']) if args['duplicate_share'] else 0} a "
        f"redelivery of an earlier body. Achieved {load['achieved_rate']:.1f} requests/s.",
        "",
        "| latency | p50 | p95 | p99 | max | mean |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| from the scheduled send time (what a sender waits) | {_ms(fs, 'p50')} | "
        f"{_ms(fs, 'p95')} | {_ms(fs, 'p99')} | {_ms(fs, 'max')} | {_ms(fs, 'mean')} |",
        f"| from the actual send | {_ms(fsend, 'p50')} | {_ms(fsend, 'p95')} | "
        f"{_ms(fsend, 'p99')} | {_ms(fsend, 'max')} | {_ms(fsend, 'mean')} |",
        "",
        f"Answers: {', '.join(f'{k}: {v}' for k, v in load['statuses'].items())}; "
        f"{load['wrong_status']} not the expected 202 / 200"
        + (f", exceptions {load['exceptions']}" if load["exceptions"] else "")
        + f". The sender fell behind its schedule by p95 {_ms(load['dispatch_lag'], 'p95')} "
        f"(max {_ms(load['dispatch_lag'], 'max')}).",
        "",
        f"Database afterwards (the closed loop, warm-up and load together): "
        f"{check_['raw_rows']} raw rows for {check_['requests']} requests, "
        f"{check_['signals']} signals for {check_['distinct_new']} distinct keys, "
        f"{check_['undecided']} undecided; raw outcomes {check_['outcomes']}; dispositions "
        f"{check_['dispositions']}.",
        "",
    ]
    e2e = results.get("e2e")
    if e2e:
        per_model = sorted(e2e["runs_per_model"].items())
        runs = ", ".join(f"{k} run(s): {v} models" for k, v in per_model)
        lines += [
            f"Signal to run requested: {e2e['signals']} generic drift signals for distinct "
            f"models, one every {args['e2e_interval']:g} s over HTTP, each timed from just "
            "before its POST to the simulator holding the queued run (its `queue_run` "
            f"returned). {runs}; missing: {len(e2e['missing'])}.",
            "",
            "| measurement | p50 | p95 | max |",
            "| --- | --- | --- | --- |",
            f"| POST answered | {_ms(e2e['post'], 'p50')} | {_ms(e2e['post'], 'p95')} | "
            f"{_ms(e2e['post'], 'max')} |",
            f"| signal to run in ADO | {_ms(e2e['to_run'], 'p50')} | "
            f"{_ms(e2e['to_run'], 'p95')} | {_ms(e2e['to_run'], 'max')} |",
            "",
        ]
    met = fs.get("p95", float("inf")) < TARGET_INTAKE_P95_MS and load["wrong_status"] == 0
    lines += [
        "| target | measured | verdict |",
        "| --- | --- | --- |",
        f"| intake p95 < {TARGET_INTAKE_P95_MS:.0f} ms at {args['rate']:g} requests/s on one "
        f"worker, no errors | {_ms(fs, 'p95')}, {load['wrong_status']} errors | "
        f"**{'met' if met else 'not met'}** |",
    ]
    if e2e:
        p95 = e2e["to_run"].get("p95", float("inf")) / 1000
        ok = p95 < TARGET_E2E_P95_S and not e2e["missing"]
        lines.append(
            f"| signal to run requested in ADO p95 < {TARGET_E2E_P95_S:.0f} s, a worker up "
            f"| {p95:.2f} s | **{'met' if ok else 'not met'}** |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
