"""Fixtures for the ADO simulator tests: a started simulator (``mlflow_sim``: one that registers
model versions in the session's real `mlflow server`), an authenticated HTTP session speaking to
it, a local service-hook receiver and unsigned JWTs. No database is used."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ado_simulator import AdoSimulator

PAT = "test-pat-0123456789"
PAT_USER = "portal-service@example.com"
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class Ado:
    """An HTTP client for the simulated ADO project: paths are relative to ``_apis/``."""

    def __init__(self, sim: AdoSimulator, auth=(("", PAT)), project: str = "MLOps"):
        self.sim = sim
        self.session = requests.Session()
        if isinstance(auth, tuple):
            self.session.auth = auth
        elif auth is not None:
            self.session.headers["Authorization"] = auth
        self.base = f"{sim.org_url}/{project}/_apis/"
        self.org_base = f"{sim.org_url}/_apis/"

    def url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def request(self, method: str, path: str, *, version: str | None = "7.1", org=False, **kw):
        params = dict(kw.pop("params", None) or {})
        if version is not None:
            params.setdefault("api-version", version)
        base = self.org_base if org else self.base
        return self.session.request(
            method, base + path.lstrip("/"), params=params, timeout=10, **kw
        )

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw):
        return self.request("PATCH", path, **kw)

    def ok(self, method: str, path: str, **kw) -> dict:
        response = self.request(method, path, **kw)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()


@pytest.fixture
def sim():
    simulator = AdoSimulator(
        seed="tests", start=START, pats={PAT: PAT_USER}, hook_retry_delay=0.05, hook_timeout=5
    ).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def ado(sim) -> Ado:
    return Ado(sim)


@pytest.fixture
def mlflow_sim(mlflow_server):
    """A started simulator whose succeeded live training runs register model versions in the
    session's `mlflow server` (``--mlflow-tracking-uri``)."""
    simulator = AdoSimulator(
        seed="tests",
        start=START,
        pats={PAT: PAT_USER},
        hook_retry_delay=0.05,
        hook_timeout=5,
        mlflow_tracking_uri=mlflow_server.url,
    ).start()
    yield simulator
    simulator.stop()


def make_jwt(claims: dict) -> str:
    """An unsigned-looking JWT (the simulator decodes, never verifies)."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class Receiver:
    """A local HTTP server that records service-hook deliveries (port 0, its own thread)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []  # statuses to answer next, then 200
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": json.loads(body) if body else None,
                            "status": status,
                        }
                    )
                    receiver._lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ado/hooks/"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
            return list(self.requests)

    def bodies(self, event_type: str | None = None) -> list[dict]:
        with self._lock:
            return [
                r["body"]
                for r in self.requests
                if r["status"] == 200 and event_type in (None, r["body"]["eventType"])
            ]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()
