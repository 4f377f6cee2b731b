"""Benchmark of the ADO pipelines sync: 200 pipelines x 50 runs from the simulator.

    .venv/bin/python bench/pipelines.py [--pipelines 200 --runs 50]

What it does, every time from scratch:

1. starts the ADO simulator in this process (ado_simulator.AdoSimulator, loopback, a free
   port) and seeds, through its Python API (no HTTP, no hook events), the pipelines of about
   50 catalog models named as docs/pipelines.md says (``<team>-<model>-<ci|cleanse|train|score|
   release>`` in ``\\<team>\\<model>``) and N completed runs each, spread over the past weeks:
   releases through QA and PROD approvals decided (a few rejected or timed out), a few failures;
2. creates a PostgreSQL database of its own (default ``portal_bench_pipelines``, beside the test
   database on the same server; never the test database itself), migrates it, adds the catalog
   models with a central registered model and one version per training run, and an AdoProject;
3. measures, in-process, over real HTTP to the simulator: a first full sync, a second full sync
   with nothing changed, a no-change incremental sync 3 times (median), an incremental sync
   after 20 new runs were queued and 10 of them finished, one 2 simulated minutes later with 10
   runs still running, and (unless ``--no-throttle``) one incremental sync against a small
   simulator rate budget, to show the client slowing down;
4. writes the results, the rate-limit arithmetic and the machine facts into docs/performance.md
   (between the ``bench:pipelines`` markers) and drops the database.

Settings are portal.settings.test with TEST_DATABASE_URL pointed at the bench database (set
BENCH_DATABASE_URL to choose another server or name; the name must contain "bench").
Redis is not used. The simulator is stopped and the database dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import math
import os
import pstats
import resource
import statistics
import sys
import time
import urllib.parse
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# This file is bench/pipelines.py: its folder must not shadow the `pipelines` app.
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

SECTION_TITLE = "## Pipelines sync: 200 pipelines x 50 runs from the ADO simulator"
PAT = "bench-pat-not-a-secret"  # the in-process simulator's PAT, nothing real
PAT_USER = "portal-sync@example.com"
TEAMS = ("risk", "growth", "operations")
RATE_LIMIT_TSTU = 200  # ADO: 200 TSTU per identity per sliding 5 minutes
RATE_WINDOW_SECONDS = 300
SHORT_KIND = {"data-cleansing": "cleanse", "training": "train", "scoring": "score"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", type=int, default=200, help="pipelines (4 per model)")
    parser.add_argument("--runs", type=int, default=50, help="completed runs per pipeline")
    parser.add_argument(
        "--beat-seconds",
        type=int,
        default=120,
        help="the beat interval of the incremental sync, for the rate-limit arithmetic",
    )
    parser.add_argument("--db-name", default="portal_bench_pipelines", help="bench database name")
    parser.add_argument(
        "--output",
        default=str(BASE_DIR / "docs" / "performance.md"),
        help="Markdown file whose bench:pipelines section is (re)written",
    )
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    parser.add_argument(
        "--no-throttle", action="store_true", help="skip the sync against a low rate budget"
    )
    parser.add_argument(
        "--throttle-limit", type=int, default=30, help="simulator budget: requests per window"
    )
    parser.add_argument(
        "--throttle-window", type=float, default=20.0, help="simulator budget: window (seconds)"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="cProfile the first full sync into FILE and print its top functions; the "
        "timings then include the profiler's overhead",
    )
    return parser.parse_args(argv)


# The bench database (as bench/registry.py) ---------------------------------------------------


# Seeding the simulator -------------------------------------------------------------------------


def catalog_plan(pipelines: int) -> list[dict]:
    """The models behind ``pipelines`` pipelines: 4 each (ci, cleanse, train or score, release);
    every fifth model is rule-based (a scoring pipeline instead of a training one)."""
    models = []
    for index in range(math.ceil(pipelines / 4)):
        rule_based = index % 5 == 4
        models.append(
            {
                "name": f"bench-{'rules' if rule_based else 'model'}-{index:03d}",
                "team": TEAMS[index % len(TEAMS)],
                "kind": "rule_based" if rule_based else "ml",
                "kinds": [
                    "ci",
                    "data-cleansing",
                    "scoring" if rule_based else "training",
                    "release",
                ],
            }
        )
    return models


def seed_simulator(sim, models: list[dict], pipelines: int, runs: int) -> dict:
    """Pipelines and ``runs`` completed runs each, queued in the past (``at=``, ``quiet=True``)
    in time order, so run ids grow with queue time as in ADO. Every run has completed by now."""
    from ado_simulator import Decision, Identity

    qa = Identity.user("alice@example.com", "Alice Approver")
    prod = Identity.user("paul@example.com", "Paul Prodowner")
    people = [Identity.user(f"ds{i}@example.com", f"Data Scientist {i}") for i in range(5)]
    pipes = []
    for model in models:
        for kind in model["kinds"]:
            if len(pipes) == pipelines:
                break
            pipes.append(
                (
                    model,
                    sim.create_pipeline(
                        f"{model['team']}-{model['name']}-{SHORT_KIND.get(kind, kind)}",
                        kind,
                        folder=f"\\{model['team']}\\{model['name']}",
                        model=model["name"],
                        repository=model["name"],
                    ),
                )
            )
    now = sim.clock.now()
    # The newest run of every pipeline is queued 3 days ago (the longest release takes 23 h),
    # earlier ones every 12 hours before, pipelines offset by 7 minutes from each other.
    actions = []
    outcomes: Counter = Counter()
    for p, (model, pipe) in enumerate(pipes):
        for j in range(runs):
            when = now - dt.timedelta(days=3, hours=12 * (runs - 1 - j), minutes=7 * p)
            number = str(j + 1)
            options: dict = {"requested_for": people[(p + j) % len(people)]}
            if pipe.kind == "ci":
                options["reason"] = "individualCI"
                if (p + j) % 20 == 7:
                    options["fail_stage"] = "Test"
            elif pipe.kind == "data-cleansing":
                options["reason"] = "schedule"
                if (p + j) % 30 == 11:
                    options["fail_stage"] = "Cleanse"
            elif pipe.kind in ("training", "scoring"):
                options["reason"] = "resourceTrigger" if p % 2 else "schedule"
                options["template_parameters"] = {
                    "modelName": model["name"],
                    "modelVersion": number,
                }
                if pipe.kind == "training" and (p + j) % 25 == 3:
                    options["fail_stage"] = "Train"
            else:  # release: QA approved after 1-3 h, PROD after 4-20 h; some rejected, timed out
                options["reason"] = "resourceTrigger"
                options["template_parameters"] = {
                    "modelName": model["name"],
                    "modelVersion": number,
                    "deployTarget": "aks" if p % 3 else "databricks-job",
                }
                decisions = {
                    "Deploy_QA": Decision(3600 * (1 + j % 3), "approved", qa, "QA evidence ok."),
                    "Deploy_PROD": Decision(3600 * (4 + j % 17), "approved", prod, "Go."),
                }
                if (p + j) % 10 == 5:
                    decisions["Deploy_PROD"] = Decision(7200, "rejected", prod, "Not yet.")
                    outcomes["PROD approvals rejected"] += 1
                elif (p + j) % 25 == 13:
                    options["time_out_stage"] = "Deploy_PROD"
                    outcomes["PROD approvals timed out"] += 1
                options["decisions"] = decisions
            actions.append((when, p, pipe, options))
    actions.sort(key=lambda a: (a[0], a[1]))
    started = time.perf_counter()
    for when, _p, pipe, options in actions:
        sim.queue_run(pipe, at=when, quiet=True, **options)
    seconds = time.perf_counter() - started
    states = Counter(run.state for run in sim.runs.values())
    check(states == Counter({"completed": len(actions)}), f"not all runs completed: {states}")
    results = Counter(run.result for run in sim.runs.values())
    approvals = Counter(a.status for a in sim.approvals.values())
    return {
        "seconds": seconds,
        "pipelines": len(pipes),
        "kinds": Counter(pipe.kind for _m, pipe in pipes),
        "runs": len(actions),
        "results": results,
        "approvals": approvals,
        "outcomes": outcomes,
        "stages": sum(len(run.stages) for run in sim.runs.values()),
        "oldest": min(a[0] for a in actions) if actions else now,
    }


def seed_portal(models: list[dict], runs: int) -> dict:
    """The catalog models, a central registry source with one registered model each, and a
    version per training (scoring) run, so the sync can link runs to versions."""
    from django.utils import timezone

    from registry.models import CatalogModel, ModelVersion, RegisteredModel, RegistrySource

    now = timezone.now()
    central = RegistrySource.objects.create(
        name="central", tracking_uri="http://mlflow.bench.invalid", is_central=True
    )
    catalog = CatalogModel.objects.bulk_create(
        CatalogModel(
            name=m["name"],
            team=m["team"],
            kind=m["kind"],
            registry_team=m["team"],
            registry_kind=m["kind"],
        )
        for m in models
    )
    registered = RegisteredModel.objects.bulk_create(
        RegisteredModel(
            source=central,
            catalog_model=entry,
            name=entry.name,
            created_upstream_at=now - dt.timedelta(days=60),
            updated_upstream_at=now,
            last_synced_at=now,
        )
        for entry in catalog
    )
    versions = ModelVersion.objects.bulk_create(
        (
            ModelVersion(
                registered_model=model,
                version=number,
                status="READY",
                source_uri=f"models:/{model.name}/{number}",
                created_upstream_at=now - dt.timedelta(days=60) + dt.timedelta(hours=number),
                updated_upstream_at=now,
                last_synced_at=now,
            )
            for model in registered
            for number in range(1, runs + 1)
        ),
        batch_size=1000,
    )
    return {"catalog": len(catalog), "versions": len(versions)}


# Measuring -------------------------------------------------------------------------------------


class SqlCounter:
    """Counts the queries of the default connection and their time (an execute wrapper), and
    the commits of its transactions (``atomic`` blocks), which do not go through a cursor."""

    def __init__(self):
        self.queries = 0
        self.seconds = 0.0
        self.commits = 0
        self.commit_seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1

    @contextlib.contextmanager
    def counting(self):
        from django.db import connections

        wrapper = connections["default"]
        original = wrapper.commit

        def commit():
            started = time.perf_counter()
            try:
                return original()
            finally:
                self.commit_seconds += time.perf_counter() - started
                self.commits += 1

        wrapper.commit = commit
        try:
            with wrapper.execute_wrapper(self):
                yield self
        finally:
            del wrapper.commit


class HttpTimer:
    """Wraps the client's ``requests.Session.request``: time and count per kind of endpoint
    (it includes the simulator's own work, which runs in this process)."""

    def __init__(self, session):
        self.seconds: Counter = Counter()
        self.count: Counter = Counter()
        original = session.request

        def timed(method, url, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original(method, url, *args, **kwargs)
            finally:
                kind = endpoint_kind(urllib.parse.urlsplit(url).path)
                self.seconds[kind] += time.perf_counter() - started
                self.count[kind] += 1

        session.request = timed

    def snapshot(self) -> tuple[Counter, Counter]:
        return Counter(self.seconds), Counter(self.count)


def endpoint_kind(path: str) -> str:
    path = path.lower()
    if "/timeline" in path:
        return "build timeline"
    if "/build/builds" in path:
        return "builds list"
    if "/pipelines" in path:
        return "pipelines list"
    return "other"


def measured_sync(project, client, http: HttpTimer, sim, *, full: bool, profiler=None) -> dict:
    """One sync, with its HTTP, SQL and simulator-side numbers."""
    from pipelines import services

    project.refresh_from_db()
    sql = SqlCounter()
    http_seconds, http_count = http.snapshot()
    sim_before = sim.request_count
    waited_before = client.waited_seconds
    with sql.counting():
        if profiler:
            profiler.enable()
        result = services.project_sync(project=project, full=full, client=client)
        if profiler:
            profiler.disable()
    check(result.ok, result.as_dict())
    seconds_after, count_after = http.snapshot()
    log = sim.request_log(sim_before)
    check(len(log) == sim.request_count - sim_before, "the simulator's request log overflowed")
    return {
        "result": result.as_dict(),
        "seconds": result.duration_seconds,
        "requests": result.requests,
        "timelines": result.timelines_read,
        "sim_requests": len(log),
        "by_endpoint": Counter(endpoint_kind(entry["path"]) for entry in log),
        "statuses": Counter(entry["status"] for entry in log),
        "http_seconds": seconds_after - http_seconds,
        "http_count": count_after - http_count,
        "sql_queries": sql.queries,
        "sql_seconds": sql.seconds,
        "commits": sql.commits,
        "commit_seconds": sql.commit_seconds,
        "waited_seconds": client.waited_seconds - waited_before,
    }


def queue_new_runs(sim, plan: list[tuple[str, int]], at_once: bool = True) -> list:
    """Queue runs now (``[(kind, count)]``), cycling over the pipelines of each kind."""
    by_kind: dict[str, list] = {}
    for pipe in sim.pipelines.values():
        by_kind.setdefault(pipe.kind, []).append(pipe)
    queued = []
    for kind, count in plan:
        candidates = by_kind.get(kind) or by_kind.get("training") or by_kind["ci"]
        for i in range(count):
            pipe = candidates[(i * 7) % len(candidates)]
            options: dict = {"reason": "manual", "requested_for": "ds0@example.com"}
            if pipe.kind in ("training", "scoring", "release"):
                options["template_parameters"] = {"modelName": pipe.model, "modelVersion": "1"}
            queued.append(sim.queue_run(pipe, **options))
    return queued


def main(argv=None) -> int:
    args = parse_args(argv)
    check(args.pipelines >= 1 and args.runs >= 1, "--pipelines and --runs must be positive")
    db_url = bench_database_url(args.db_name)
    # Before Django reads its settings: the test settings on the bench database, nothing else.
    command = " ".join([".venv/bin/python bench/pipelines.py", *(argv or sys.argv[1:])])
    results: dict = {"args": vars(args), "command": command}

    name = django_setup_on_bench_database(db_url)
    from django.core.management import call_command

    from ado_simulator import AdoSimulator
    from pipelines.client import AdoClient, AdoCredentials
    from pipelines.models import AdoProject, Pipeline, PipelineRun, RunStage

    print(f"Bench database: {name} (recreated)")
    pg_version = database_recreate(db_url)
    sim = client = None
    try:
        # The simulated clock starts an hour behind real time, so that advancing it (by about
        # 12 minutes in all) never puts ADO's timestamps ahead of the portal's clock: the sync
        # compares a run's finishTime with its own timeline_synced_at.
        sim = AdoSimulator(
            pats={PAT: PAT_USER}, start=dt.datetime.now(tz=dt.UTC) - dt.timedelta(hours=1)
        ).start()
        print(f"ADO simulator on {sim.url}")
        models = catalog_plan(args.pipelines)
        print(f"Seeding {args.pipelines} pipelines x {args.runs} runs (Python API, quietly)...")
        results["seed"] = seed_simulator(sim, models, args.pipelines, args.runs)
        print(f"  {results['seed']['runs']:,} runs in {results['seed']['seconds']:.1f} s")

        started = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        results["migrate_seconds"] = time.perf_counter() - started
        results["portal_seed"] = seed_portal(models, args.runs)
        project = AdoProject.objects.create(
            name="bench", organization_url=sim.org_url, project="MLOps"
        )
        client = AdoClient(sim.org_url, "MLOps", AdoCredentials(pat=PAT))
        http = HttpTimer(client.session)
        syncs: dict[str, dict] = {}

        results["load_before_sync"] = os.getloadavg()
        print("Full sync...")
        profiler = cProfile.Profile() if args.profile else None
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        full = measured_sync(project, client, http, sim, full=True, profiler=profiler)
        results["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results["rss_before_mb"] = rss_before / 1024
        if profiler:
            profiler.dump_stats(args.profile)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        syncs["full"] = full
        print(f"  {full['result']}")
        seeded = results["seed"]
        check(full["result"]["runs"]["created"] == seeded["runs"], "runs created")
        check(Pipeline.objects.filter(project=project).count() == seeded["pipelines"], "pipelines")
        check(PipelineRun.objects.count() == seeded["runs"], "run count")
        check(RunStage.objects.count() == seeded["stages"], "stage count")
        results["linked_runs"] = PipelineRun.objects.filter(model_version__isnull=False).count()
        results["linked_pipelines"] = Pipeline.objects.filter(catalog_model__isnull=False).count()
        results["waiting_stages"] = RunStage.objects.filter(waiting_for_approval=True).count()

        print("Full sync again, nothing changed...")
        again = measured_sync(project, client, http, sim, full=True)
        check(again["result"]["runs"]["updated"] == 0 and again["timelines"] == 0, again)
        syncs["full_again"] = again
        print(f"  {again['seconds']:.2f} s, {again['requests']} requests")

        print("No-change incremental sync x3...")
        incremental = []
        for _ in range(3):
            quiet = measured_sync(project, client, http, sim, full=False)
            check(quiet["result"]["mode"] == "incremental", quiet["result"])
            check(
                quiet["result"]["runs"]["created"] == quiet["result"]["runs"]["updated"] == 0, quiet
            )
            check(quiet["timelines"] == 0, quiet["result"])
            incremental.append(quiet)
        syncs["incremental"] = incremental
        print(f"  {[round(s['seconds'] * 1000) for s in incremental]} ms")

        print("20 new runs (10 ci finish, 5 training run, 5 releases wait at QA), then sync...")
        queued = queue_new_runs(sim, [("ci", 10), ("training", 5), ("release", 5)])
        sim.advance(300)
        finished = sum(1 for run in queued if run.state == "completed")
        results["new_runs"] = {"queued": len(queued), "finished": finished}
        changed = measured_sync(project, client, http, sim, full=False)
        check(changed["result"]["runs"]["created"] == len(queued), changed["result"])
        syncs["changed"] = changed
        print(f"  {changed['seconds'] * 1000:.0f} ms, {changed['requests']} requests")

        print(f"{args.beat_seconds} simulated seconds later, runs still running, sync...")
        sim.advance(args.beat_seconds)
        running = sum(1 for run in queued if run.state != "completed")
        results["still_running"] = running
        steady = measured_sync(project, client, http, sim, full=False)
        syncs["running"] = steady
        print(f"  {steady['seconds'] * 1000:.0f} ms, {steady['requests']} requests")

        if not args.no_throttle:
            limit, window = args.throttle_limit, args.throttle_window
            extra = max(10, limit + 10 - running - 3)
            print(f"Throttled: budget {limit} requests / {window:g} s, {extra} new finished runs")
            throttle_queued = queue_new_runs(sim, [("ci", extra)])
            sim.advance(300)
            budget = sim.set_rate_limit(limit=limit, window=window, warn_below=max(1, limit // 2))
            started = time.perf_counter()
            throttled = measured_sync(project, client, http, sim, full=False)
            throttled["wall_seconds"] = time.perf_counter() - started
            sim.clear_rate_limit()
            throttled["budget"] = budget.to_json()
            throttled["new_runs"] = len(throttle_queued)
            syncs["throttled"] = throttled
            print(
                f"  {throttled['seconds']:.1f} s, {throttled['requests']} requests "
                f"({throttled['statuses'].get(429, 0)} answered 429), client waited "
                f"{throttled['waited_seconds']:.1f} s"
            )

        results["syncs"] = syncs
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


# The report ------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _endpoints(sync: dict) -> str:
    order = ("pipelines list", "builds list", "build timeline", "other")
    parts = [f"{sync['by_endpoint'][k]:,} {k}" for k in order if sync["by_endpoint"].get(k)]
    return ", ".join(parts)


def _runs(sync: dict) -> str:
    runs = sync["result"]["runs"]
    return f"{runs['created']:,} / {runs['updated']:,}"


def render(results: dict) -> str:
    args, facts, seed, syncs = results["args"], results["facts"], results["seed"], results["syncs"]
    load_before = load_average(results["load_before_sync"])
    load_after = load_average(results["load_after"])
    full, again, changed, running = (
        syncs["full"],
        syncs["full_again"],
        syncs["changed"],
        syncs["running"],
    )
    inc = syncs["incremental"]
    inc_median = statistics.median(s["seconds"] for s in inc)
    inc_requests = statistics.median(s["requests"] for s in inc)
    inc_each = ", ".join(f"{s['seconds'] * 1000:.0f}" for s in inc)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(seed["kinds"].items()))
    outcomes = ", ".join(f"{n:,} {k}" for k, n in sorted(seed["results"].items()))
    approvals = ", ".join(f"{n:,} {k}" for k, n in sorted(seed["approvals"].items()))
    new = results["new_runs"]
    lines = [
        f"Run on {results['date']} with:",
        "",
        "```bash",
        results["command"] or ".venv/bin/python bench/pipelines.py",
        "```",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']} memory, "
        f"{facts['os']}; PostgreSQL {facts['postgresql']}, Python {facts['python']}, "
        f"Django {facts['django']}. The ADO simulator runs in the same process (its HTTP "
        "server threads share the interpreter with the sync), over loopback.",
        f"Load average (1, 5, 15 min) before the full sync: {load_before}; "
        f"after the last measurement: {load_after} (the machine is shared: "
        "other work running at the same time shows here).",
        "",
        f"Data: {seed['pipelines']} pipelines ({kinds}) of {results['portal_seed']['catalog']} "
        f"catalog models, {args['runs']} completed runs each: {seed['runs']:,} runs ({outcomes}) "
        f"with {seed['stages']:,} stages, queued every 12 hours over "
        f"{(args['runs'] - 1) / 2 + 3:.0f} days; {sum(seed['approvals'].values()):,} approvals "
        f"({approvals}). Seeded through the simulator's Python API in {seed['seconds']:.1f} s; "
        f"bench database migrated in {results['migrate_seconds']:.1f} s, with "
        f"{results['portal_seed']['versions']:,} model versions for the runs to link to. "
        f"After the first sync {results['linked_pipelines']} pipelines are linked to their "
        f"catalog model and {results['linked_runs']:,} runs (training, scoring, release) to "
        "their model version.",
        "",
        "| sync | time | ADO requests | of which | runs created / updated | SQL queries |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| first full sync | {_ms(full['seconds'])} | {full['requests']:,} | {_endpoints(full)} "
        f"| {_runs(full)} | {full['sql_queries']:,} |",
        f"| full sync again, nothing changed | {_ms(again['seconds'])} | {again['requests']:,} "
        f"| {_endpoints(again)} | {_runs(again)} | {again['sql_queries']:,} |",
        f"| incremental, nothing changed (median of 3: {inc_each} ms) | {_ms(inc_median)} "
        f"| {inc_requests:.0f} | {_endpoints(inc[0])} | 0 / 0 | {inc[0]['sql_queries']:,} |",
        f"| incremental after {new['queued']} new runs were queued and {new['finished']} of them "
        f"finished | {_ms(changed['seconds'])} | {changed['requests']:,} | {_endpoints(changed)} "
        f"| {_runs(changed)} | {changed['sql_queries']:,} |",
        f"| incremental {args['beat_seconds']} s (simulated) later, {results['still_running']} "
        f"of those runs still running | {_ms(running['seconds'])} | {running['requests']:,} "
        f"| {_endpoints(running)} | {_runs(running)} | {running['sql_queries']:,} |",
        "",
        f"Peak memory of the syncing process (max RSS): {results['max_rss_mb']:.0f} MB "
        f"({results['rss_before_mb']:.0f} MB before the first sync, the simulator's state "
        "included).",
        "",
        "Where the first full sync's time goes (wall time measured around each HTTP call and "
        "each SQL query; the HTTP time includes the simulator answering in this process):",
        "",
        "| part | time | count | per call |",
        "| --- | --- | --- | --- |",
    ]
    accounted = 0.0
    for kind in ("build timeline", "builds list", "pipelines list", "other"):
        count = full["http_count"].get(kind, 0)
        if not count:
            continue
        seconds = full["http_seconds"][kind]
        accounted += seconds
        lines.append(
            f"| HTTP: {kind} | {seconds:.1f} s | {count:,} | {seconds / count * 1000:.1f} ms |"
        )
    accounted += full["sql_seconds"] + full["commit_seconds"]
    per_query = full["sql_seconds"] / max(full["sql_queries"], 1)
    per_commit = full["commit_seconds"] / max(full["commits"], 1)
    lines += [
        f"| SQL: queries (PostgreSQL round trips, psycopg) | {full['sql_seconds']:.1f} s "
        f"| {full['sql_queries']:,} queries | {per_query * 1000:.2f} ms |",
        f"| SQL: transaction commits (`atomic` blocks) | {full['commit_seconds']:.1f} s "
        f"| {full['commits']:,} | {per_commit * 1000:.2f} ms |",
        f"| the rest: Python (the ORM building queries and model instances, comparing, "
        f"timestamps, JSON) | {max(0.0, full['seconds'] - accounted):.1f} s | | |",
        "",
    ]
    lines += rate_limit_lines(results, inc_requests)
    return "\n".join(lines)


def rate_limit_lines(results: dict, inc_requests: float) -> list[str]:
    args, syncs = results["args"], results["syncs"]
    beat = args["beat_seconds"]
    cycles = RATE_WINDOW_SECONDS / beat
    full, again = syncs["full"], syncs["full_again"]
    changed, running = syncs["changed"], syncs["running"]
    rows = [
        ("incremental, nothing changed", inc_requests),
        (f"incremental, {results['still_running']} runs running", running["requests"]),
        (
            f"incremental, {results['new_runs']['queued']} new runs "
            f"({results['new_runs']['finished']} finished) in every cycle",
            changed["requests"],
        ),
    ]
    lines = [
        f"Rate limit: ADO allows {RATE_LIMIT_TSTU} TSTU per identity in a sliding 5-minute "
        f"window. The beat runs the incremental sync every {beat} s, {cycles:g} cycles per 5 "
        "minutes:",
        "",
        "| sync cycle | requests per cycle | requests per 5 minutes | per 5 minutes if every "
        f"request cost 1 TSTU (of {RATE_LIMIT_TSTU}) |",
        "| --- | --- | --- | --- |",
    ]
    for label, requests in rows:
        per_window = requests * cycles
        lines.append(
            f"| {label} | {requests:.0f} | {per_window:.1f} "
            f"| {per_window / RATE_LIMIT_TSTU * 100:.1f} % |"
        )
    full_rate = full["requests"] / max(full["seconds"], 1e-9)
    lines += [
        f"| full sync, mirror up to date (`sync_pipelines --full`; timelines of completed runs "
        f"are cached) | {again['requests']:,} | {again['requests']:,} (once) "
        f"| {again['requests'] / RATE_LIMIT_TSTU * 100:.1f} % |",
        f"| first full sync (an empty mirror: once per project) | {full['requests']:,} "
        f"| {full['requests']:,} in {full['seconds']:.0f} s here ({full_rate:.0f} per second) "
        f"| {full['requests'] / RATE_LIMIT_TSTU:.0f}x the budget |",
        "",
        "Requests are not TSTUs. A TSTU (Azure DevOps throughput unit) is ADO's abstract "
        "server-side measure of load (database DTUs, CPU, memory and I/O of its tiers, storage "
        "bandwidth); one TSTU is about what a typical user causes in five minutes, and the limit "
        "is 200 times that. ADO publishes no per-request cost (the organization's Usage page "
        "shows what was actually charged), and the client cannot count TSTUs: what it can count "
        "is requests, and what it can read is the `X-RateLimit-*` and `Retry-After` headers ADO "
        "sends when an identity nears or exceeds the limit. The last column is therefore a "
        "ceiling under a pessimistic assumption, not a measurement. The simulator's rate budget "
        "charges 1 unit per request, for the same reason.",
    ]
    throttled = syncs.get("throttled")
    if throttled:
        budget = throttled["budget"]
        blocked = throttled["statuses"].get(429, 0)
        retried = (
            f"{blocked} request{'s' if blocked != 1 else ''} got a 429 and "
            f"{'were' if blocked != 1 else 'was'} retried after `Retry-After`"
            if blocked
            else "no request got a 429"
        )
        lines += [
            "",
            f"Slowing down: with the simulator's budget set to {budget['limit']} requests per "
            f"{budget['window']:g} s per identity (`X-RateLimit-*` headers from "
            f"{budget['warnBelow']:g} left, 429 with `Retry-After` beyond), an incremental sync "
            f"after {throttled['new_runs']} more runs finished needed "
            f"{throttled['sim_requests']} requests ({_endpoints(throttled)}). It took "
            f"{throttled['seconds']:.1f} s instead of well under a second: the client paused "
            f"{throttled['waited_seconds']:.1f} s in all (`client.waited_seconds`: pacing once "
            "fewer than 10 % of the budget was left, and honouring `Retry-After`), "
            f"{retried}, and the sync completed "
            f"({_runs(throttled)} runs created / updated).",
        ]
    return lines


def write_report(path: Path, report: str) -> None:
    intro = (
        f"{SECTION_TITLE}\n\n`bench/pipelines.py` produces the numbers (how it works and its "
        "options: [bench/README.md](../bench/README.md)); it rewrites only the section "
        "between the `bench:pipelines` markers below."
    )
    report_write(path, report, name="pipelines", intro=intro)


if __name__ == "__main__":
    sys.exit(main())
