"""Command line of the standalone simulator, shared by ``python -m ado_simulator`` and
``manage.py run_ado_simulator``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .auth import Identity
from .seed import seed as run_seed
from .server import AdoSimulator
from .util import log

DEFAULT_PORT = 8090


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)"
    )
    parser.add_argument("--org", default="simorg", help="organization name (default simorg)")
    parser.add_argument(
        "--project",
        action="append",
        dest="projects",
        help="project name; repeat for several (default MLOps)",
    )
    parser.add_argument(
        "--pat",
        action="append",
        dest="pats",
        help="accepted PAT, as PAT or PAT=user@example.com (the identity it acts as); repeat for "
        "several (default: $AZURE_DEVOPS_PAT, else 'simulator-pat')",
    )
    parser.add_argument("--seed", default=None, help="seed the state: 'demo' (default: empty)")
    parser.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="follow real time this many times faster (0: the clock moves only when advanced)",
    )
    parser.add_argument(
        "--public-url", default=None, help="base URL used in links (default: the bound address)"
    )
    parser.add_argument("--hook-url", default=None, help="deliver service-hook events to this URL")
    parser.add_argument("--hook-username", default=None, help="basic-auth user for --hook-url")
    parser.add_argument(
        "--hook-password",
        default=None,
        help="basic-auth password for --hook-url (default: $ADO_HOOK_SECRET)",
    )
    parser.add_argument(
        "--hook-detail",
        choices=("sparse", "full"),
        default="sparse",
        help="approval events as the ADO docs sample (sparse: run/stage null) or filled in (full)",
    )
    parser.add_argument(
        "--mlflow-tracking-uri",
        default=None,
        help="register a model version in this MLflow server (REST API) when a training run "
        "queued live succeeds (default: none; the seeded history never registers)",
    )


def build(options: dict) -> AdoSimulator:
    pats: dict[str, Identity | str] = {}
    for item in options.get("pats") or [os.environ.get("AZURE_DEVOPS_PAT") or "simulator-pat"]:
        pat, _, who = item.partition("=")
        pats[pat] = who or "portal-service@simulator.local"
    sim = AdoSimulator(
        host=options.get("host") or "127.0.0.1",
        port=int(options.get("port") if options.get("port") is not None else DEFAULT_PORT),
        org=options.get("org") or "simorg",
        projects=options.get("projects") or ["MLOps"],
        pats=pats,
        seed=options.get("seed") or None,
        public_url=options.get("public_url"),
        mlflow_tracking_uri=options.get("mlflow_tracking_uri") or None,
    )
    if options.get("seed"):
        result = run_seed(sim, options["seed"])
        log(
            "seeded %r: %s pipelines, %s runs", options["seed"], result["pipelines"], result["runs"]
        )
    if options.get("hook_url"):
        sim.add_subscription(
            options["hook_url"],
            username=options.get("hook_username"),
            password=options.get("hook_password") or os.environ.get("ADO_HOOK_SECRET"),
            approval_event_detail=options.get("hook_detail") or "sparse",
        )
    return sim


def serve(sim: AdoSimulator, speed: float = 0.0) -> None:
    """Start, print where, and serve until SIGTERM or SIGINT; then stop cleanly."""
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        sim.start()
        if speed:
            sim.set_speed(speed)
        log(
            "This is a simulator of Azure DevOps, not Azure DevOps. Organization URL: %s, "
            "project(s): %s, clock speed: %s",
            sim.org_url,
            ", ".join(p.name for p in sim.projects.values()),
            speed or "manual (advance through /_simulator/clock/advance)",
        )
        if sim.mlflow is not None:
            log(
                "succeeded training runs register model versions in MLflow %s",
                sim.mlflow.tracking_uri,
            )
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ado_simulator",
        description="ADO simulator: a stand-in for the Azure DevOps REST API (not Azure DevOps).",
    )
    add_arguments(parser)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(message)s", stream=sys.stdout
    )
    options = vars(args)
    serve(build(options), options.get("speed") or 0.0)
    return 0
