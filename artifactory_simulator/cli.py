"""Command line: ``python -m artifactory_simulator --port 0 [--token T] [--user U:P]
[--seed-file repo/path=TEXT]``. Prints ``listening on <url>`` (first line, flushed) and
serves until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from .server import ArtifactorySimulator


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="artifactory_simulator", description="JFrog Artifactory stand-in (a simulator)."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8091, help="0: any free port")
    p.add_argument("--context-path", default="/artifactory")
    p.add_argument("--token", action="append", dest="tokens", default=[], help="accepted bearer")
    p.add_argument("--user", action="append", dest="users", default=[], help="USER:PASSWORD")
    p.add_argument(
        "--seed-file",
        action="append",
        dest="seed_files",
        default=[],
        help="repo/path=CONTENT: deploy CONTENT (UTF-8) at repo/path before serving",
    )
    return p


def build(args: argparse.Namespace) -> ArtifactorySimulator:
    users = dict(u.partition(":")[::2] for u in args.users)
    sim = ArtifactorySimulator(
        args.host, args.port, tokens=args.tokens, users=users, context_path=args.context_path
    )
    for item in args.seed_files:
        location, _, content = item.partition("=")
        repo, _, path = location.partition("/")
        sim.put(repo, path, content.encode())
    return sim


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    sim = build(args).start()
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    print(f"listening on {sim.url} (Artifactory simulator)", flush=True)
    stopped.wait()
    sim.stop()
    sys.stdout.flush()
    return 0
