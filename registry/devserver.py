"""A local `mlflow server` (SQLite, loopback) for the demo, the tests and the benchmarks.

Needs the full `mlflow` package (the dev extra); the portal itself only needs mlflow-skinny.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """Start with ``start()``, stop with ``stop()``: the process is stopped by its own pid."""

    def __init__(self, workdir: Path, port: int | None = None, webhook_encryption_key: str = ""):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.webhook_encryption_key = webhook_encryption_key
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / "mlflow-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> MlflowServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        mlflow = Path(sys.executable).with_name("mlflow")
        env = {
            **os.environ,
            # Lean: one uvicorn worker and no job runner (see docs/decisions in the reference).
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # Webhooks to a portal on loopback over plain HTTP (local development only).
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        }
        if self.webhook_encryption_key:
            env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"] = self.webhook_encryption_key
        command = [
            str(mlflow), "server",
            "--backend-store-uri", f"sqlite:///{self.workdir / 'mlflow.db'}",
            "--artifacts-destination", str(self.workdir / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{self.log_path.read_text()[-3000:]}")
            if self.healthy():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"mlflow server not healthy after {timeout}s:\n{self.log_path.read_text()[-3000:]}"
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # The server was started in its own session: its uvicorn worker goes down with it.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
