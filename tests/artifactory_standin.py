"""The Artifactory stand-in as a process (``python -m artifactory_simulator --port 0``), for
the tests: started once per session, stopped by its pid, spoken to over real HTTP."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

TOKEN = "artifactory-test-token-5f3a"
ROOT = Path(__file__).resolve().parent.parent


class ArtifactoryProcess:
    def __init__(self, token: str = TOKEN):
        self.token = token
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> ArtifactoryProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "artifactory_simulator", "--port", "0", "--token", self.token],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"Artifactory stand-in did not start: {line!r}")
        self.url = line.split()[2]
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def upload(self, repo_path: str, content: bytes) -> str:
        """Deploy ``content`` (PUT, as the workflow does); its sha256."""
        response = requests.put(
            f"{self.url}/{repo_path}", data=content, headers=self.headers, timeout=10
        )
        assert response.status_code == 201, response.text
        return hashlib.sha256(content).hexdigest()

    def replace(self, repo_path: str, content: bytes) -> None:
        """Overwrite the bytes behind the registry's back (the checksum now differs)."""
        response = requests.post(
            f"{self.url}/_simulator/replace/{repo_path}", data=content, headers=self.headers,
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 200, response.text
