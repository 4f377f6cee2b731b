"""``AdoSimulator``: the simulator state plus a ``ThreadingHTTPServer`` serving it in a thread.

``start()`` binds (port 0 picks a free port), ``.url`` is its address, ``stop()`` ends it.
``handle`` sends a request to the home page, the control API (``control_api``) or, through the
gate (``gate``: authentication, faults, throttling, the down switch), to the ADO routes
(``routes``), and logs every ADO request.
"""

from __future__ import annotations

import threading
import traceback
from collections import deque
from datetime import UTC, datetime

from ..auth import Caller
from ..errors import ApiError
from ..faults import Faults, RateBudget
from ..util import log
from .control_api import ControlApi
from .gate import Gate
from .httpd import Handler, Request, Response, Server
from .routes import AdoRoutes


class AdoSimulator(Gate, AdoRoutes, ControlApi):
    """The ADO simulator: state, engine and HTTP server.

    In-process (tests, the demo)::

        sim = AdoSimulator().start()          # binds 127.0.0.1 on a free port
        pipe = sim.create_pipeline("risk-fraud-detector-release", "release", model="fraud-detector")
        run = sim.queue_run(pipe)
        sim.advance(120)                      # Build done, QA waits for its approval
        ...
        sim.stop()
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        tick_interval: float = 0.2,
        **state_options,
    ):
        super().__init__(**state_options)
        self.host = host
        self.port = port
        self.public_url = public_url
        self.tick_interval = tick_interval
        self.faults = Faults()
        self.budget: RateBudget | None = None
        self.down_mode: str | None = None
        self._requests: deque[dict] = deque(maxlen=100_000)
        self._request_count = 0
        self._requests_lock = threading.Lock()
        self._server: Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._running = False
        self._stopping = threading.Event()
        self._up_timer: threading.Timer | None = None
        self._listen_lock = threading.Lock()

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> AdoSimulator:
        with self._listen_lock:
            if self._running:
                return self
            self._listen()
            self._running = True
            self._stopping.clear()
        self._ticker = threading.Thread(
            target=self._tick_loop, name="ado-simulator-clock", daemon=True
        )
        self._ticker.start()
        log(
            "listening on %s (organization %s, projects %s)",
            self.url,
            self.org,
            ", ".join(p.name for p in self.projects.values()),
        )
        return self

    def stop(self) -> None:
        with self._listen_lock:
            self._running = False
            self._stopping.set()
            if self._up_timer is not None:
                self._up_timer.cancel()
                self._up_timer = None
            self._close()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        self.hooks.stop()
        if self.mlflow is not None:
            self.mlflow.stop()
        log("stopped")

    def __enter__(self) -> AdoSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _listen(self) -> None:
        server = Server((self.host, self.port), Handler, self)
        self.port = server.server_address[1]
        self._server = server
        self._serve_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="ado-simulator-http",
            daemon=True,
        )
        self._serve_thread.start()
        self.set_base_url(self.public_url or self.url)

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.drop_connections()
        server.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(timeout=5)
            self._serve_thread = None

    def _tick_loop(self) -> None:
        while not self._stopping.wait(self.tick_interval):
            if self.clock.speed:
                try:
                    self.tick()
                except Exception:
                    log("clock tick failed:\n%s", traceback.format_exc())

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def org_url(self) -> str:
        """What the portal's ``AZURE_DEVOPS_ORG_URL`` points at."""
        return f"{self.url}/{self.org}"

    @property
    def is_listening(self) -> bool:
        return self._server is not None

    # ---- request log --------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """ADO requests answered so far (control API and home page not counted)."""
        return self._request_count

    def request_log(self, since: int = 0) -> list[dict]:
        with self._requests_lock:
            return [r for r in self._requests if r["n"] > since]

    def _record(
        self, request: Request, status: int, caller: Caller | None, note: str | None
    ) -> None:
        with self._requests_lock:
            self._request_count += 1
            entry = {
                "n": self._request_count,
                "at": datetime.now(UTC).isoformat(),
                "method": request.method,
                "path": request.path,
                "query": {k: v for k, v in request.query.items()},
                "status": status,
                "identity": caller.identity.unique_name if caller else None,
                "note": note,
            }
            self._requests.append(entry)
        log(
            "%s %s -> %s%s%s",
            request.method,
            request.path,
            status,
            f" ({caller.identity.unique_name})" if caller else "",
            f" [{note}]" if note else "",
        )

    # ---- dispatch -----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            if request.path in ("", "/"):
                return self._home()
            if request.path.rstrip("/").lower().startswith("/_simulator"):
                return self._control(request)
            return self._ado(request)
        except ApiError as exc:
            return self._error(exc)
        except Exception:
            log("internal error:\n%s", traceback.format_exc())
            return self._error(
                ApiError(500, "Internal error in the ADO simulator.", "SimulatorException")
            )

    def _error(self, exc: ApiError) -> Response:
        return Response(exc.status, exc.body(), dict(exc.headers))

    def _ado(self, request: Request) -> Response:
        seen: dict = {"caller": None, "note": None}
        try:
            response = self._ado_answer(request, seen)
        except ApiError as exc:
            response = self._error(exc)
        except Exception:
            log("internal error:\n%s", traceback.format_exc())
            response = self._error(
                ApiError(500, "Internal error in the ADO simulator.", "SimulatorException")
            )
        self._record(request, response.status, seen["caller"], seen["note"])
        return response
