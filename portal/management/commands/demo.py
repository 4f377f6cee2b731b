"""Seed the embedded demo and run web, worker, beat and a local MLflow server until Ctrl-C.

The MLflow server (SQLite under var/mlflow, loopback, port 5000 unless --mlflow-port) is started
first, in its own session, so it boots while the database migrates; it is seeded with the demo
models only when it holds no registered model yet, mirrored as the source ``central`` by a full
sync, and stopped by its pid with the other processes. A server an earlier demo left running on
the same port and folder (its pid is in var/mlflow/server.pid) is reused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from portal import services

STOP_GRACE_SECONDS = 15
DEFAULT_MLFLOW_PORT = 5000
DEFAULT_ADO_PORT = 8090
ADO_PROJECT = "demo"
ADO_PAT = "simulator-pat"  # the simulator's PAT; nothing real is reachable with it
MLFLOW_START_TIMEOUT = 120
WEB_START_TIMEOUT = 120
CENTRAL_SOURCE = "central"


class Command(BaseCommand):
    help = (
        "Migrate, create one demo user per role (printing their passwords), start a local MLflow "
        "server seeded with demo models and mirrored as the source 'central', and run the web "
        "server, a Celery worker and Celery beat together until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port of the web server")
        parser.add_argument(
            "--seed-only",
            action="store_true",
            help="migrate, create users, seed and sync MLflow, stop the MLflow server, then exit",
        )
        parser.add_argument(
            "--mlflow-port",
            type=int,
            default=DEFAULT_MLFLOW_PORT,
            help=f"port of the local MLflow server on 127.0.0.1 (default {DEFAULT_MLFLOW_PORT})",
        )
        parser.add_argument(
            "--no-mlflow",
            action="store_true",
            help="do not start, seed or sync a local MLflow server",
        )
        parser.add_argument(
            "--ado-port",
            type=int,
            default=DEFAULT_ADO_PORT,
            help=f"port of the ADO simulator on 127.0.0.1 (default {DEFAULT_ADO_PORT})",
        )
        parser.add_argument(
            "--no-ado",
            action="store_true",
            help="do not start the ADO simulator or sync demo pipelines",
        )

    def handle(
        self,
        *args,
        addr: str,
        seed_only: bool,
        mlflow_port: int,
        no_mlflow: bool,
        ado_port: int = DEFAULT_ADO_PORT,
        no_ado: bool = False,
        **options,
    ):
        if not settings.DEBUG:
            raise CommandError(
                "The demo runs only with the local settings (DJANGO_SETTINGS_MODULE="
                "portal.settings.local); it creates accounts with printed passwords."
            )
        var_dir = Path(settings.VAR_DIR)
        var_dir.mkdir(parents=True, exist_ok=True)
        # Boots in the background (it takes seconds) while the database migrates.
        mlflow = None if no_mlflow else DemoMlflowServer(var_dir / "mlflow", mlflow_port).boot()
        ado = None if no_ado else DemoAdoSimulator(var_dir, ado_port, addr).boot()
        try:
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write(self.style.SUCCESS("Database migrated."))
            accounts = self._seed_users(var_dir / "demo-credentials.json")
            self._print_accounts(accounts, addr)
            if mlflow is not None:
                self._mlflow_ready(mlflow)
            else:
                from registry import demo_data

                demo_data.seed_catalog()
            if ado is not None:
                self._ado_ready(ado)
                self._approvals_ready(addr)
            self._maturity_ready(addr)
            if seed_only:
                return
            stopped_cleanly = self._run_processes(addr, var_dir, mlflow, ado)
        except KeyboardInterrupt:  # Ctrl-C before web, worker and beat ran
            raise CommandError("Interrupted while setting up the demo.", returncode=130) from None
        finally:
            if ado is not None:
                ado.stop()
                self.stdout.write(f"ADO simulator (pid {ado.pid}) stopped.")
            if mlflow is not None:
                mlflow.stop()
                self.stdout.write(f"MLflow server (pid {mlflow.pid}) stopped.")
        if not stopped_cleanly:
            raise CommandError("The demo stopped because one of its processes exited.")
        self.stdout.write("Demo stopped.")

    def _mlflow_ready(self, mlflow: DemoMlflowServer) -> None:
        """Wait for the server, seed it if it is empty, mirror it as 'central' (full sync)."""
        from mlflow import MlflowClient

        from registry import demo_data, services
        from registry.models import RegistrySource

        started = time.monotonic()
        mlflow.wait()
        how = "reused from an earlier run" if mlflow.adopted else "started"
        self.stdout.write(
            self.style.SUCCESS(
                f"MLflow server {how} at {mlflow.url} (pid {mlflow.pid}, data in "
                f"{mlflow.workdir}) after {time.monotonic() - started:.1f} s of waiting."
            )
        )
        client = MlflowClient(tracking_uri=mlflow.url)
        if client.search_registered_models(max_results=1):
            self.stdout.write("  it already holds registered models: not seeding it again.")
            demo_data.seed_catalog()
        else:
            seeded = demo_data.seed_registry(client)
            self.stdout.write(
                f"  seeded {len(seeded['models_created'])} registered models with "
                f"{seeded['versions_created']} versions (teams: {', '.join(demo_data.TEAMS)})."
            )
        source, _ = RegistrySource.objects.update_or_create(
            name=CENTRAL_SOURCE,
            defaults={
                "tracking_uri": mlflow.url,
                "registry_uri": "",
                "ui_url": mlflow.url,
                "is_central": True,
                "enabled": True,
            },
            # the demo's registry changes when people try things: mirror it often
            create_defaults={
                "tracking_uri": mlflow.url,
                "ui_url": mlflow.url,
                "is_central": True,
                "sync_interval_seconds": 60,
                "full_sync_interval_seconds": 900,
            },
        )
        result = services.registry_sync(source=source, full=True)
        if not result.ok:
            raise CommandError(
                f"The first sync of {CENTRAL_SOURCE} failed: {result.error or result.skipped}"
            )
        demo_data.catalog_owners_from_tags()
        m, v = result.models, result.versions
        self.stdout.write(
            self.style.SUCCESS(
                f"Synced source '{source.name}' ({result.mode} sync, "
                f"{result.duration_seconds:.2f} s): "
                f"models {m.created} created, {m.updated} updated, {m.deleted} deleted, "
                f"{m.unchanged} unchanged; versions {v.created} created, {v.updated} updated, "
                f"{v.deleted} deleted, {v.unchanged} unchanged; {result.runs_read} runs read."
            )
        )
        self.stdout.write("")

    def _ado_ready(self, ado: DemoAdoSimulator) -> None:
        """Wait for the simulator (it seeds four weeks of runs), mirror it as project 'demo'."""
        from pipelines import services
        from pipelines.models import AdoProject

        ado.wait()
        self.stdout.write(
            self.style.SUCCESS(
                f"ADO simulator (not Azure DevOps) running at {ado.url} (pid {ado.pid}), "
                "seeded with the demo pipelines and four weeks of runs."
            )
        )
        settings.AZURE_DEVOPS_PAT = ADO_PAT
        project, _ = AdoProject.objects.update_or_create(
            name=ADO_PROJECT,
            defaults={"organization_url": ado.org_url, "project": "MLOps", "enabled": True},
            create_defaults={
                "organization_url": ado.org_url,
                "project": "MLOps",
                "sync_interval_seconds": 30,
            },
        )
        result = services.project_sync(project=project, full=True)
        if not result.ok:
            raise CommandError(f"The first pipelines sync failed: {result.error or result.skipped}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Synced ADO project '{project.name}' ({result.duration_seconds:.2f} s): "
                f"{result.pipelines.created} pipelines, {result.runs.created} runs, "
                f"{result.stages.created} stages created; {result.requests} ADO requests."
            )
        )
        self.stdout.write("")

    def _approvals_ready(self, addr: str) -> None:
        """The first approvals poll (beat repeats it every minute), so the inbox is full
        when the portal starts: releases wait at QA and PROD for the demo approver."""
        from approvals import services as approvals
        from approvals.models import (
            OPEN_STATUSES,
            OUTBOX_FINAL_STATES,
            ApprovalRequest,
            DecidedIn,
        )
        from pipelines.models import AdoProject, Environment

        project = AdoProject.objects.get(name=ADO_PROJECT)
        result = approvals.project_approvals_sync(project=project)
        if not result.ok:
            raise CommandError(f"The first approvals poll failed: {result.error}")
        pending = ApprovalRequest.objects.filter(project=project, status__in=OPEN_STATUSES)
        qa = pending.filter(environment=Environment.QA).count()
        prod = pending.filter(environment=Environment.PROD).count()
        self.stdout.write(
            self.style.SUCCESS(
                f"Polled the approvals of '{project.name}': {qa} pending at QA, {prod} pending "
                f"at PROD ({result.created - result.imported} new)"
                + (
                    f", and {result.imported} decided in ADO earlier for the Decided tab"
                    if result.imported
                    else ""
                )
                + ". Sign in as alice to decide them at "
                f"http://{addr}/approvals/; notices are printed by the worker (EMAIL_URL)."
            )
        )
        # The simulator starts from the same history every time; the portal's database keeps
        # what was decided in an earlier demo, so those runs stay where that demo left them.
        earlier = (
            ApprovalRequest.objects.filter(
                project=project,
                ado_status__in=OPEN_STATUSES,
                decided_in=DecidedIn.PORTAL,
                outbox_messages__state__in=OUTBOX_FINAL_STATES,
            )
            .distinct()
            .count()
        )
        if earlier:
            database = settings.DATABASES["default"]
            where = (
                f"delete {database['NAME']}"
                if database["ENGINE"].endswith("sqlite3")
                else "empty the portal's database"
            )
            self.stdout.write(
                f"  {earlier} waiting approval(s) of the fresh simulator were decided in an "
                f"earlier demo and stay decided here; to start afresh, stop the demo and {where}."
            )
        self.stdout.write("")

    def _maturity_ready(self, addr: str) -> None:
        """Half a year of maturity history on the first start (maturity/demo_data.py), then
        an assessment of what the demo holds now, and this week's snapshot."""
        from maturity import demo_data
        from maturity import services as maturity
        from maturity.models import LEVELS, MaturityRecord

        demo_data.seed_history()
        stats = maturity.models_assess(made_by="assessment at demo start")
        maturity.snapshot_take()
        levels = ", ".join(f"L{level} {stats.levels.get(level, 0)}" for level in LEVELS)
        if stats.levels.get(0):
            levels += f", below L1 {stats.levels[0]}"
        first = MaturityRecord.objects.order_by("created_at").values_list("created_at", flat=True)
        oldest = first.first()
        weeks = round((time.time() - oldest.timestamp()) / (7 * 86400)) if oldest else 0
        self.stdout.write(
            self.style.SUCCESS(
                f"Assessed the maturity of {stats.assessed} model"
                f"{'' if stats.assessed == 1 else 's'}: {levels} ({weeks} weeks of history). "
                f"Managers: http://{addr}/maturity/"
            )
        )
        self.stdout.write("")

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

    def _run_processes(
        self,
        addr: str,
        var_dir: Path,
        mlflow: DemoMlflowServer | None,
        ado: DemoAdoSimulator | None = None,
    ) -> bool:
        """Run web, worker and beat until Ctrl-C; False when one of them exited by itself."""
        metrics_dir = Path(settings.PROMETHEUS_MULTIPROC_DIR)
        shutil.rmtree(metrics_dir, ignore_errors=True)  # counters of an earlier run are stale
        metrics_dir.mkdir(parents=True, exist_ok=True)
        env = demo_process_env(
            dict(os.environ), addr=addr, metrics_dir=metrics_dir, mlflow=mlflow, ado=ado
        )
        commands = demo_commands(addr, var_dir)
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR)  # noqa: S603
        exit_code = 0
        problem = wait_until_portal_answers(addr, processes, should_stop=lambda: stopping)
        if problem:
            self.stderr.write(f"{problem}; stopping the rest.")
            exit_code = 1
            stopping = True
        elif not stopping:
            with_mlflow = f", MLflow at {mlflow.url}" if mlflow is not None else ""
            with_mlflow += f", the ADO simulator at {ado.url}" if ado is not None else ""
            self.stdout.write(
                self.style.SUCCESS(
                    f"Portal running at http://{addr}/ with a Celery worker and beat"
                    f"{with_mlflow}. Press Ctrl-C to stop them all."
                )
            )
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
        if mlflow is not None:
            mlflow.terminate()  # stops while the others do; stop() below waits for it
        if ado is not None:
            ado.terminate()
        self._stop_all(processes)
        return not exit_code

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


def demo_process_env(
    base: dict[str, str],
    *,
    addr: str,
    metrics_dir: Path,
    mlflow: DemoMlflowServer | None = None,
    ado: DemoAdoSimulator | None = None,
) -> dict[str, str]:
    """The environment of the demo's web, worker and beat.

    DEBUG is off (unless DJANGO_DEBUG says otherwise), so a mistyped address shows the
    portal's own error pages as in production, not Django's debug page; the local settings
    still serve the static files (WhiteNoise reads them from the static folders).
    """
    env = {**base, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), "PYTHONUNBUFFERED": "1"}
    env.setdefault("DJANGO_DEBUG", "false")
    if mlflow is not None:
        env["MLFLOW_TRACKING_URI"] = mlflow.url
    if ado is not None:
        env.update(
            AZURE_DEVOPS_ORG_URL=ado.org_url,
            AZURE_DEVOPS_PROJECT="MLOps",
            AZURE_DEVOPS_PAT=ADO_PAT,
            ADO_HOOK_SECRET=ado.hook_secret,
        )
    # Links in the approval notices point at this demo's web server.
    env.setdefault("PORTAL_BASE_URL", f"http://{addr}")
    return env


def demo_commands(addr: str, var_dir: Path) -> dict[str, list[str]]:
    """The command lines of the demo's web server, Celery worker and Celery beat."""
    python = sys.executable
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    celery = [python, "-m", "celery", "-A", "portal"]
    return {
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


def wait_until_portal_answers(
    addr: str,
    processes: dict[str, subprocess.Popen],
    *,
    timeout: float = WEB_START_TIMEOUT,
    should_stop=lambda: False,
) -> str | None:
    """Poll the web server's /healthz until it answers 200, so "Portal running" is said only
    when a browser can open it. Returns what went wrong instead (a process exited first, or
    no answer in time), else None.
    """
    import urllib.error
    import urllib.request

    url = f"http://{addr}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not should_stop():
        for name, process in processes.items():
            if process.poll() is not None:
                return f"{name} exited with code {process.returncode} before the portal answered"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return None
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    if should_stop():
        return None
    return f"the portal did not answer at {url} within {timeout:.0f} s"


class DemoMlflowServer:
    """The demo's `mlflow server`: started here, or reused when an earlier demo left it running.

    ``boot()`` checks the port and starts the server in a background thread; ``wait()`` returns
    once it answers (or raises CommandError); ``stop()`` stops it by its pid (its own session,
    so its uvicorn worker goes too) and forgets the pid file.
    """

    def __init__(self, workdir: Path, port: int):
        from registry.devserver import MlflowServer

        self.workdir = Path(workdir)
        self.port = port
        self.server = MlflowServer(self.workdir, port=port)
        self.pid_file = self.workdir / "server.pid"
        self.adopted = False
        self.pid: int | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def boot(self) -> DemoMlflowServer:
        if _port_taken(self.port):
            pid = _leftover_server_pid(self.pid_file, self.workdir, self.port)
            if pid is None or not self.server.healthy():
                raise CommandError(
                    f"Port {self.port} on 127.0.0.1 is taken by another program, not this demo's "
                    f"MLflow server. Stop that program, or pick a free port for the demo's MLflow "
                    f"server: manage.py demo --mlflow-port {self.port + 1}"
                )
            self.adopted, self.pid = True, pid
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._start, name="mlflow-boot", daemon=True)
        self._thread.start()
        return self

    def _start(self) -> None:
        try:
            self.server.start(timeout=MLFLOW_START_TIMEOUT)
        except BaseException as exc:
            self._error = exc

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise CommandError(f"The demo's MLflow server did not start: {self._error}")
        if not self.adopted:
            self.pid = self.server.process.pid
            self.pid_file.write_text(f"{self.pid}\n")

    def terminate(self) -> None:
        """Ask the server to stop, without waiting (``stop()`` waits)."""
        pid = self.pid if self.adopted else (self.server.process and self.server.process.pid)
        if pid and (self.adopted or self.server.process.poll() is None):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():  # Ctrl-C while it was booting
            self.terminate()  # start() then sees the process exit and gives up
            self._thread.join(timeout=MLFLOW_START_TIMEOUT)
        if self.adopted:
            _stop_process_group(self.pid)
        else:
            self.server.stop()
            self.pid = self.pid or (self.server.process.pid if self.server.process else None)
        self.pid_file.unlink(missing_ok=True)


class DemoAdoSimulator:
    """The ADO simulator as a child process in its own session, stopped by its pid.

    Its clock follows real time (speed 1), so timestamps on the pages are true; the seeded
    history ends now, with runs waiting at QA and PROD approvals and a training running.
    Service-hook events go to the portal's hook endpoint with a secret made for this run.
    """

    def __init__(self, var_dir: Path, port: int, portal_addr: str):
        import secrets

        self.port = port
        self.log_path = var_dir / "ado-simulator.log"
        self.hook_secret = secrets.token_urlsafe(24)
        self.hook_url = f"http://{portal_addr}/pipelines/hooks/ado/{ADO_PROJECT}/"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def org_url(self) -> str:
        return f"{self.url}/simorg"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def boot(self) -> DemoAdoSimulator:
        if _port_taken(self.port):
            raise CommandError(
                f"Port {self.port} on 127.0.0.1 is taken by another program; start the demo "
                f"with another port for the ADO simulator: manage.py demo --ado-port "
                f"{self.port + 1} (make demo DEMO_ARGS='--ado-port {self.port + 1}')."
            )
        command = [
            sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "run_ado_simulator",
            "--port", str(self.port), "--seed", "demo", "--speed", "1",
            "--pat", f"{ADO_PAT}=portal-demo@example.com",
            "--hook-url", self.hook_url, "--hook-username", "ado-hook",
            f"--hook-password={self.hook_secret}",  # a secret may start with "-"
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR,
                start_new_session=True,
            )  # fmt: skip
        return self

    def wait(self, timeout: float = 60) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CommandError(
                    f"The ADO simulator exited (code {self.process.returncode}); "
                    f"see {self.log_path}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/", timeout=2) as response,  # noqa: S310
            ):
                if response.status == 200:
                    return
            time.sleep(0.3)
        raise CommandError(
            f"The ADO simulator did not answer within {timeout:.0f} s; see {self.log_path}"
        )

    def terminate(self) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            _stop_process_group(self.process.pid)
            self.process.wait()


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _leftover_server_pid(pid_file: Path, workdir: Path, port: int) -> int | None:
    """The pid of an `mlflow server` an earlier demo started on this port and folder, if alive."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        try:
            args = subprocess.run(  # noqa: S603 - no /proc (macOS): ask ps
                ["ps", "-o", "args=", "-p", str(pid)],  # noqa: S607
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        except (OSError, subprocess.CalledProcessError):
            return None
    ours = (
        "server" in args
        and any(a.endswith("mlflow") for a in args)
        and str(port) in args
        and any(str(workdir) in a for a in args)
    )
    return pid if ours else None


def _stop_process_group(pid: int | None, timeout: float = STOP_GRACE_SECONDS) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies waiting for their parent do not)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ")"
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
