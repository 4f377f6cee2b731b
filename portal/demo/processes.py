"""The demo's web server, Celery worker and Celery beat: started together, watched until
Ctrl-C (or until one of them exits), then stopped with a grace period."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

from pipelines import demo_data as pipelines_demo
from portal.queues import all_queues

from .servers import ADO_PAT, STOP_GRACE_SECONDS, DemoAdoSimulator, DemoMlflowServer

WEB_START_TIMEOUT = 120
# The shared secret of the generic signal endpoint in the demo (manage.py send_signal signs with
# it), kept under var/ like the demo's passwords so it survives a restart.
SIGNAL_KEY_FILE = "demo-signal-key"
# The processes the demo restarts when they die (web and beat dying stop the demo).
RESTARTED = ("worker",)
MAX_RESTARTS_PER_MINUTE = 5


def run_processes(
    command,
    addr: str,
    var_dir: Path,
    mlflow: DemoMlflowServer | None,
    ado: DemoAdoSimulator | None = None,
) -> bool:
    """Run web, worker and beat until Ctrl-C; False when one of them exited by itself.

    ``command`` is the management command, whose stdout, stderr and style report progress.
    """
    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    processes, launch = _start(addr, var_dir, mlflow, ado)
    restarts: list[float] = []
    exit_code = 0
    problem = wait_until_portal_answers(addr, processes, should_stop=lambda: stopping)
    if problem:
        command.stderr.write(f"{problem}; stopping the rest.")
        exit_code = 1
        stopping = True
    elif not stopping:
        with_mlflow = f", MLflow at {mlflow.url}" if mlflow is not None else ""
        with_mlflow += f", the ADO simulator at {ado.url}" if ado is not None else ""
        command.stdout.write(
            command.style.SUCCESS(
                f"Portal running at http://{addr}/ with a Celery worker and beat"
                f"{with_mlflow}. Press Ctrl-C to stop them all."
            )
        )
    while not stopping:
        exited = supervise(command, processes, launch, restarts)
        if exited:
            command.stderr.write(f"{exited}; stopping the rest.")
            exit_code = 1
            stopping = True
        time.sleep(0.5)
    if mlflow is not None:
        mlflow.terminate()  # stops while the others do; stop() waits for it
    if ado is not None:
        ado.terminate()
    _stop_all(command, processes)
    return not exit_code


def _start(
    addr: str, var_dir: Path, mlflow: DemoMlflowServer | None, ado: DemoAdoSimulator | None
) -> tuple[dict[str, subprocess.Popen], Callable[[str], subprocess.Popen]]:
    """Start web, worker and beat, with fresh Prometheus counters (an earlier run's are stale);
    also returns how to start one of them again (the supervisor restarts the worker)."""
    metrics_dir = Path(settings.PROMETHEUS_MULTIPROC_DIR)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env = demo_process_env(
        dict(os.environ),
        addr=addr,
        metrics_dir=metrics_dir,
        mlflow=mlflow,
        ado=ado,
        signal_key=demo_signal_key(var_dir),
    )
    commands = demo_commands(addr, var_dir)

    def launch(name: str) -> subprocess.Popen:
        return subprocess.Popen(commands[name], env=env, cwd=settings.BASE_DIR)  # noqa: S603

    return {name: launch(name) for name in commands}, launch


def supervise(
    command,
    processes: dict[str, subprocess.Popen],
    launch: Callable[[str], subprocess.Popen],
    restarts: list[float],
) -> str | None:
    """Restart the worker when it died (saying so), up to ``MAX_RESTARTS_PER_MINUTE``: what it
    held is not lost (late acks; the outbox sweep re-queues a delivery a dead worker held).
    Returns what exited for good instead: another process, or a worker that keeps dying."""
    for name, process in list(processes.items()):
        if process.poll() is None:
            continue
        if name not in RESTARTED:
            return f"{name} exited with code {process.returncode}"
        now = time.monotonic()
        restarts[:] = [at for at in restarts if now - at < 60]
        if len(restarts) >= MAX_RESTARTS_PER_MINUTE:
            return (
                f"{name} exited with code {process.returncode}, {len(restarts)} times in a minute"
            )
        restarts.append(now)
        command.stderr.write(
            f"{name} exited with code {process.returncode}; restarting it "
            "(the outbox sweep delivers what it held)"
        )
        processes[name] = launch(name)
    return None


def _first_exited(processes: dict[str, subprocess.Popen]) -> str | None:
    """ "<name> exited with code N" for the first process that exited, else None."""
    for name, process in processes.items():
        if process.poll() is not None:
            return f"{name} exited with code {process.returncode}"
    return None


def _stop_all(command, processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for name, process in processes.items():
        remaining = max(0.1, deadline - time.monotonic())
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            command.stderr.write(f"{name} did not stop in {STOP_GRACE_SECONDS}s; killing it.")
            process.kill()
            process.wait()


def demo_process_env(
    base: dict[str, str],
    *,
    addr: str,
    metrics_dir: Path,
    mlflow: DemoMlflowServer | None = None,
    ado: DemoAdoSimulator | None = None,
    signal_key: str | None = None,
) -> dict[str, str]:
    """The environment of the demo's web, worker and beat.

    ``PORTAL_DEMO`` is on (the demo-only buttons show), and with ``signal_key`` the generic
    signal endpoint takes it as its shared secret (``OPERATIONS_SIGNAL_SECRETS``), besides the
    secrets the environment already sets.

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
            AZURE_DEVOPS_PROJECT=pipelines_demo.ADO_PROJECT,
            AZURE_DEVOPS_PAT=ADO_PAT,
            ADO_HOOK_SECRET=ado.hook_secret,
        )
    if settings.ARTIFACTORY_URL and not env.get("ARTIFACTORY_URL"):
        # the demo's Artifactory stand-in (portal/demo/artifacts.py)
        env.update(ARTIFACTORY_URL=settings.ARTIFACTORY_URL)
        env.update(ARTIFACTORY_TOKEN=settings.ARTIFACTORY_TOKEN)
    env["PORTAL_DEMO"] = "true"
    if signal_key:
        secrets_text = env.get("OPERATIONS_SIGNAL_SECRETS", "").strip().strip(",")
        parts = [p for p in secrets_text.split(",") if p.strip()]
        generic = [p for p in parts if p.partition("=")[0].strip() == "generic"]
        if generic:  # the operator's generic secrets stay; the demo's key is one more
            parts = [p for p in parts if p not in generic]
            parts.append(f"{generic[0]}|{signal_key}")
        else:
            parts.append(f"generic={signal_key}")
        env["OPERATIONS_SIGNAL_SECRETS"] = ",".join(parts)
    # Links in the approval notices point at this demo's web server.
    env.setdefault("PORTAL_BASE_URL", f"http://{addr}")
    return env


def demo_signal_key(var_dir: Path, *, create: bool = True) -> str | None:
    """The demo's generic signal secret from ``var_dir``, made (0600) on the first start."""
    path = Path(var_dir) / SIGNAL_KEY_FILE
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return key
    if not create:
        return None
    key = secrets.token_urlsafe(24)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


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
            ",".join(all_queues()),  # one worker for all of them: deliveries, syncs, maintenance
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
    url = f"http://{addr}/healthz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not should_stop():
        exited = _first_exited(processes)
        if exited:
            return f"{exited} before the portal answered"
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
