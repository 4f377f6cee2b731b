"""Seed the embedded demo and run web, worker and beat together until Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from portal import services

STOP_GRACE_SECONDS = 15


class Command(BaseCommand):
    help = (
        "Migrate, create one demo user per role (printing their passwords) and run the web "
        "server, a Celery worker and Celery beat together until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port of the web server")
        parser.add_argument(
            "--seed-only", action="store_true", help="migrate and create users, then exit"
        )

    def handle(self, *args, addr: str, seed_only: bool, **options):
        if not settings.DEBUG:
            raise CommandError(
                "The demo runs only with the local settings (DJANGO_SETTINGS_MODULE="
                "portal.settings.local); it creates accounts with printed passwords."
            )
        var_dir = Path(settings.VAR_DIR)
        var_dir.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write(self.style.SUCCESS("Database migrated."))
        accounts = self._seed_users(var_dir / "demo-credentials.json")
        self._print_accounts(accounts, addr)
        if seed_only:
            return
        self._run_processes(addr, var_dir)

    def _seed_users(self, credentials_file: Path) -> list[services.DemoAccount]:
        known: dict[str, str] = {}
        if credentials_file.is_file():
            try:
                known = json.loads(credentials_file.read_text())
            except ValueError:
                self.stderr.write(f"Ignoring unreadable {credentials_file}; new passwords follow.")
        accounts = services.demo_users_ensure(passwords=known)
        credentials_file.write_text(
            json.dumps({a.username: a.password for a in accounts}, indent=2)
        )
        credentials_file.chmod(0o600)
        return accounts

    def _print_accounts(self, accounts, addr: str) -> None:
        self.stdout.write("")
        self.stdout.write(self.style.MIGRATE_HEADING("Demo users (local accounts, one per role):"))
        for account in accounts:
            roles = ", ".join(account.roles)
            self.stdout.write(
                f"  {account.username:<8} password: {account.password:<18} role: {roles}"
            )
        self.stdout.write(f"  (kept in {Path(settings.VAR_DIR) / 'demo-credentials.json'})")
        self.stdout.write("")

    def _run_processes(self, addr: str, var_dir: Path) -> None:
        metrics_dir = Path(settings.PROMETHEUS_MULTIPROC_DIR)
        shutil.rmtree(metrics_dir, ignore_errors=True)  # counters of an earlier run are stale
        metrics_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PYTHONUNBUFFERED": "1"}
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        celery = [python, "-m", "celery", "-A", "portal"]
        commands = {
            "web": [python, manage, "runserver", addr, "--noreload"],
            "worker": [
                *celery,
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--queues",
                settings.CELERY_TASK_DEFAULT_QUEUE,
                "--hostname",
                "demo-worker@%h",
            ],
            "beat": [
                *celery,
                "beat",
                "--loglevel",
                "INFO",
                "--pidfile",
                "",
                "--schedule",
                str(var_dir / "celerybeat-schedule"),
            ],
        }
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR)  # noqa: S603
        self.stdout.write(
            self.style.SUCCESS(
                f"Portal running at http://{addr}/ with a Celery worker and beat. "
                "Press Ctrl-C to stop them all."
            )
        )
        exit_code = 0
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(
                        f"{name} exited with code {process.returncode}; stopping the rest."
                    )
                    exit_code = 1
                    stopping = True
                    break
            time.sleep(0.5)
        self._stop_all(processes)
        if exit_code:
            raise CommandError("The demo stopped because one of its processes exited.")
        self.stdout.write("Demo stopped.")

    def _stop_all(self, processes: dict[str, subprocess.Popen]) -> None:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, process in processes.items():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in {STOP_GRACE_SECONDS}s; killing it.")
                process.kill()
                process.wait()
