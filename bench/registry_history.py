"""Benchmark of the registry history: a full sweep that finds no change writes no history row.

    .venv/bin/python bench/registry_history.py [--models 5000 --versions 2]

What it does, every time from scratch:

1. starts a fresh `mlflow server` (registry.devserver.MlflowServer: SQLite, loopback, a free port)
   and seeds N registered models x V versions through MLflow's REST API (bench/registry.py's
   seeding: tags, a description, a source run per version, a `champion` alias per model);
2. creates a PostgreSQL database of its own (default `portal_bench_history`, never the test
   database), migrates it and adds a RegistrySource;
3. runs a first full sync (it records the first look: model_created, version_created and
   alias_set per model), then `--sweeps` (3) full sweeps with nothing changed, checking that
   each writes no RegistryEvent row (the count before and after, and the sync's own count),
   and reports their times (median);
4. then changes `--changes` (50) models upstream (moves their `champion` alias and sets a
   version tag), sweeps once more and checks that exactly two events per changed model were
   written, no more;
5. writes the results into docs/performance.md (between the `bench:registry-history` markers)
   and drops the database. Every process it starts is stopped by its own pid.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# This file is in bench/: its folder must not shadow the `registry` app.
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
from bench.registry import MlflowRest, mlflow_model_count, seed_mlflow  # noqa: E402

INTRO = """## Registry history: a full sweep of 5,000 models with no change

`bench/registry_history.py` produces the numbers (what it does and its options: its docstring,
`--help`, [bench/README.md](../bench/README.md)); it rewrites only the section between the
`bench:registry-history` markers below. The target (issue 17): a full sweep of 5,000 models
that finds no change writes no history row."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=5000, help="registered models to seed")
    parser.add_argument("--versions", type=int, default=2, help="versions per model")
    parser.add_argument("--sweeps", type=int, default=3, help="no-change full sweeps timed")
    parser.add_argument("--changes", type=int, default=50, help="models changed upstream")
    parser.add_argument("--threads", type=int, default=8, help="threads seeding MLflow")
    parser.add_argument("--db-name", default="portal_bench_history", help="bench database")
    parser.add_argument(
        "--output",
        default=str(BASE_DIR / "docs" / "performance.md"),
        help="Markdown file whose bench section is (re)written",
    )
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the bench database")
    parser.add_argument(
        "--mlflow-dir",
        help="keep the MLflow store in this folder: seeded when empty, reused otherwise "
        "(it must then hold --models models, unchanged: step 4 changes them, so reuse a "
        "folder only with --changes 0)",
    )
    return parser.parse_args(argv)


def change_upstream(url: str, models: int, changes: int, versions: int) -> list[str]:
    """Move the `champion` alias of ``changes`` models (spread over the registry) to version 1
    (or 2 when it is on 1) and set a version tag: two history events each."""
    rest = MlflowRest(url)
    step = max(1, models // max(1, changes))
    names = [f"bench-model-{i:05d}" for i in range(0, models, step)][:changes]
    champion = max(1, versions - 1)
    target = 2 if champion == 1 and versions > 1 else 1

    def change(name: str) -> None:
        rest.post(
            "registered-models/alias", {"name": name, "alias": "champion", "version": str(target)}
        )
        rest.post(
            "model-versions/set-tag",
            {"name": name, "version": "1", "key": "reviewed", "value": "yes"},
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(change, names))
    return names


def _sweep(source):
    from registry import services

    source.refresh_from_db()
    started = time.perf_counter()
    result = services.registry_sync(source=source, full=True)
    seconds = time.perf_counter() - started
    check(result.ok and result.mode == "full", result.as_dict())
    return result, seconds


def measure(args, server_url: str, results: dict) -> None:
    from django.core.management import call_command
    from django.db.models import Max

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    results["migrate_seconds"] = time.perf_counter() - started

    from registry.client import RegistryClient
    from registry.models import RegistryEvent, RegistryEventKind, RegistrySource

    source = RegistrySource.objects.create(name="bench", tracking_uri=server_url, is_central=True)
    RegistryClient.for_source(source)  # import MLflow once, as a worker has before its sync
    results["load_before"] = os.getloadavg()

    print("First full sync...")
    first, seconds = _sweep(source)
    results["first"] = {"seconds": seconds, "events": first.events}
    expected_first = args.models * (2 + args.versions)  # model + versions + champion
    check(first.events == expected_first, f"first sync wrote {first.events} events")
    counted = RegistryEvent.objects.count()
    check(counted == expected_first, f"{counted} event rows after the first sync")
    print(f"  {seconds:.1f} s, {first.events:,} events")

    sweeps = []
    for n in range(args.sweeps):
        before = RegistryEvent.objects.count()
        result, seconds = _sweep(source)
        after = RegistryEvent.objects.count()
        check(result.models.changed == 0 and result.versions.changed == 0, result.as_dict())
        check(result.events == 0 and after == before, f"sweep {n + 1} wrote {after - before}")
        sweeps.append(seconds)
        print(f"  no-change sweep {n + 1}: {seconds:.2f} s, {after - before} events")
    results["sweeps"] = sweeps
    results["events_total"] = RegistryEvent.objects.count()

    if args.changes:
        names = change_upstream(server_url, args.models, args.changes, args.versions)
        last_pk = RegistryEvent.objects.aggregate(last=Max("pk"))["last"]
        result, seconds = _sweep(source)
        written = RegistryEvent.objects.filter(pk__gt=last_pk)
        kinds = sorted(set(written.values_list("kind", flat=True)))
        check(result.events == 2 * len(names), f"changed sweep wrote {result.events}")
        check(
            kinds == sorted([RegistryEventKind.ALIAS_SET, RegistryEventKind.VERSION_TAG_SET]),
            kinds,
        )
        results["changed"] = {"models": len(names), "events": result.events, "seconds": seconds}
        print(f"  sweep after {len(names)} changes: {seconds:.2f} s, {result.events} events")
    results["load_after"] = os.getloadavg()


def main(argv=None) -> int:
    args = parse_args(argv)
    db_url = bench_database_url(args.db_name)
    command = " ".join([".venv/bin/python bench/registry_history.py", *(argv or sys.argv[1:])])
    from registry.devserver import MlflowServer

    print(f"Bench database: {urllib.parse.urlsplit(db_url).path.lstrip('/')} (recreated)")
    pg_version = database_recreate(db_url)
    workdir = Path(args.mlflow_dir or tempfile.mkdtemp(prefix="portal-bench-history-"))
    server = None
    results: dict = {"args": vars(args), "command": command}
    try:
        print("Starting mlflow server...")
        server = MlflowServer(workdir).start()
        held = mlflow_model_count(server.url)
        if held and held != args.models:
            raise SystemExit(f"{workdir} holds {held} models, not {args.models}")
        if held:
            results["seed_seconds"] = None
        else:
            print(f"Seeding {args.models} models x {args.versions} versions into {server.url}")
            results["seed_seconds"] = seed_mlflow(
                server.url, args.models, args.versions, args.threads
            )
        django_setup_on_bench_database(db_url)
        measure(args, server.url, results)
        import mlflow

        results["facts"] = {**machine_facts(pg_version), "mlflow": mlflow.__version__}
        results["date"] = dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        report = render(results)
        print()
        print(report)
        if not args.no_write:
            report_write(Path(args.output), report, name="registry-history", intro=INTRO)
            print(f"Written to {args.output}")
    finally:
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
    return 0


def render(results: dict) -> str:
    args, facts = results["args"], results["facts"]
    sweeps = results["sweeps"]
    median = statistics.median(sweeps)
    seeded = (
        f"seeded over REST in {results['seed_seconds']:.0f} s ({args['threads']} threads)"
        if results["seed_seconds"] is not None
        else f"reused from an MLflow store seeded earlier ({args['mlflow_dir']})"
    )
    first = results["first"]
    lines = [
        f"Run on {results['date']} with:",
        "",
        "```bash",
        results["command"],
        "```",
        "",
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['memory']} memory, "
        f"{facts['os']}; PostgreSQL {facts['postgresql']}, Python {facts['python']}, "
        f"Django {facts['django']}, MLflow {facts['mlflow']} (server: SQLite, 1 uvicorn worker, "
        "same machine). Load average (1, 5, 15 min) before the first sync: "
        f"{load_average(results['load_before'])}; at the end: "
        f"{load_average(results['load_after'])} (the machine is shared).",
        "",
        f"Data: {args['models']:,} registered models x {args['versions']} versions, each model "
        f"with 3 tags, a description and a `champion` alias, {seeded}.",
        "",
        "| measurement | result |",
        "| --- | --- |",
        f"| first full sync (the first look: {first['events']:,} events written) "
        f"| {first['seconds']:.1f} s |",
        f"| full sweep, nothing changed (median of {len(sweeps)}: "
        f"{', '.join(f'{s:.2f}' for s in sweeps)} s) | {median:.2f} s |",
        f"| history rows written by those {len(sweeps)} sweeps | 0 (checked: the table's "
        f"count before and after each, {results['events_total']:,}, and each sync's own count) |",
    ]
    if "changed" in results:
        changed = results["changed"]
        lines.append(
            f"| full sweep after {changed['models']} models changed upstream (alias moved, "
            f"version tag set) | {changed['seconds']:.2f} s, {changed['events']} events "
            "(2 per model, checked) |"
        )
    met = "**met**" if results["events_total"] == first["events"] else "**not met**"
    lines += [
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
        f"| a full sweep of {args['models']:,} models with no change writes no history row "
        f"| 0 rows in {len(sweeps)} sweeps | {met} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
