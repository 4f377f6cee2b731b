"""The servers the demo boots before it migrates: a local MLflow server, the ADO simulator and
the Artifactory stand-in (``python -m artifactory_simulator``, docs/artifactory.md).

The MLflow server (SQLite under var/mlflow, loopback) starts in its own session, so it boots
while the database migrates; a server an earlier demo left running on the same port and folder
(its pid is in var/mlflow/server.pid) is reused. The simulator runs as ``manage.py
run_ado_simulator`` in its own session. Both are stopped by their process group.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from pipelines.demo_data import PROJECT_NAME as ADO_PROJECT
from registry.devserver import MlflowServer

STOP_GRACE_SECONDS = 15
DEFAULT_MLFLOW_PORT = 5000
DEFAULT_ADO_PORT = 8090
ADO_PAT = "simulator-pat"  # the simulator's PAT; nothing real is reachable with it
MLFLOW_START_TIMEOUT = 120
DEFAULT_ARTIFACTORY_PORT = 8091
ARTIFACTORY_TOKEN = "artifactory-demo-token"  # noqa: S105 - the stand-in's, nothing real


class DemoMlflowServer:
    """The demo's `mlflow server`: started here, or reused when an earlier demo left it running.

    ``boot()`` checks the port and starts the server in a background thread; ``wait()`` returns
    once it answers (or raises CommandError); ``stop()`` stops it by its pid (its own session,
    so its uvicorn worker goes too) and forgets the pid file.
    """

    def __init__(self, workdir: Path, port: int):
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
    Service-hook events go to the portal's hook endpoint with a secret made for this run. With
    ``mlflow_url`` (the demo's MLflow server), a training run queued live that succeeds
    registers a model version there, as a real training pipeline would.
    """

    def __init__(self, var_dir: Path, port: int, portal_addr: str, mlflow_url: str | None = None):
        self.port = port
        self.mlflow_url = mlflow_url
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
        if self.mlflow_url:
            command += ["--mlflow-tracking-uri", self.mlflow_url]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR,
                start_new_session=True,
            )  # fmt: skip
        return self

    def wait(self, timeout: float = 60) -> None:
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


class DemoArtifactory:
    """The Artifactory stand-in (a process in its own session, stopped by its pid)."""

    def __init__(self, var_dir: Path, port: int):
        self.port = port
        self.log_path = var_dir / "artifactory-simulator.log"
        self.token = ARTIFACTORY_TOKEN
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/artifactory"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def boot(self) -> DemoArtifactory:
        if _port_taken(self.port):
            raise CommandError(
                f"Port {self.port} on 127.0.0.1 is taken by another program; start the demo "
                f"with another port for the Artifactory stand-in: manage.py demo "
                f"--artifactory-port {self.port + 1}."
            )
        command = [
            sys.executable, "-m", "artifactory_simulator",
            "--port", str(self.port), "--token", self.token,
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR,
                start_new_session=True,
            )  # fmt: skip
        return self

    def wait(self, timeout: float = 30) -> None:
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/_simulator/files", headers={"Authorization": f"Bearer {self.token}"}
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CommandError(f"The Artifactory stand-in exited; see {self.log_path}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(request, timeout=2) as response,  # noqa: S310
            ):
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise CommandError(f"The Artifactory stand-in did not answer; see {self.log_path}")

    def upload(self, repo_path: str, content: bytes, *, replace: bool = False) -> None:
        """Deploy ``content`` (PUT), or overwrite it keeping its original checksums."""
        url = f"{self.url}/_simulator/replace/{repo_path}" if replace else f"{self.url}/{repo_path}"
        request = urllib.request.Request(  # noqa: S310
            url,
            data=content,
            method="POST" if replace else "PUT",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

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
