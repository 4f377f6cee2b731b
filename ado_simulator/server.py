"""The HTTP side: ADO REST routes under ``/{org}/{project}/_apis/...``, the control API under
``/_simulator/...``, a home page at ``/``, faults, throttling and the down switch.

``AdoSimulator`` is the simulator state plus a ``ThreadingHTTPServer`` serving it in a thread:
``start()`` binds (port 0 picks a free port), ``.url`` is its address, ``stop()`` ends it.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from .auth import AuthError, Caller, Identity, authenticate
from .errors import (
    RULES,
    VERSION_OPTIONAL,
    ApiError,
    bad_request,
    check_version,
    requested_version,
)
from .events import EVENT_TYPES
from .faults import Faults, RateBudget, blocked_error, throttle_headers
from .model import Decision, StageSpec
from .state import SimulatorState
from .util import fmt_time, log, parse_time

#: Resource locations, as ADO's ``OPTIONS {org}/_apis`` lists them, for the resources simulated:
#: (id, area, resourceName, routeTemplate, resourceVersion, minVersion, maxVersion, released).
#: The azure-devops SDK resolves its routes from these (and the build area from ResourceAreas).
LOCATIONS = (
    ("28e1305e-2afe-47bf-abaf-cbb0e6a91988", "pipelines", "pipelines",
     "{project}/_apis/{resource}/{pipelineId}", 1, 6.0, 7.2, "7.1"),
    ("7859261e-d2e9-4a68-b820-a5d84cc5bb3d", "pipelines", "runs",
     "{project}/_apis/pipelines/{pipelineId}/{resource}/{runId}", 1, 6.0, 7.2, "7.1"),
    ("0cd358e1-9217-4d94-8269-1c1ee6f93dcf", "build", "builds",
     "{project}/_apis/build/{resource}/{buildId}", 7, 2.0, 7.2, "7.1"),
    ("8baac422-4c6e-4de5-8532-db96d92acffa", "build", "Timeline",
     "{project}/_apis/build/builds/{buildId}/{resource}/{timelineId}", 2, 2.0, 7.2, "7.1"),
    ("fc50d02a-849f-41fb-8af1-0a5216103269", "hooks", "subscriptions",
     "_apis/{area}/{resource}/{subscriptionId}", 1, 1.0, 7.2, "7.1"),
    ("e81700f7-3be2-46de-8624-2eb35882fcaa", "Location", "ResourceAreas",
     "_apis/{resource}/{areaId}", 1, 3.2, 7.2, "0.0"),
)  # fmt: skip
BUILD_AREA_ID = "965220d5-5bb9-42cf-8d67-9b146df2a5a4"
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
MAX_BODY = 4 * 1024 * 1024
MASKED_PASSWORD = "********"  # noqa: S105 - how ADO (and the renderer) mask basicAuthPassword


@dataclass
class Response:
    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]  # lower-cased keys, last value wins
    raw_query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased keys
    body: bytes

    def json(self) -> object:
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise bad_request(
                f"The request body is not valid JSON: {exc}",
                "VssRequestContentException",
                "Microsoft.VisualStudio.Services.WebApi",
            ) from exc


# ==== the HTTP server ===========================================================================


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, sim: AdoSimulator):
        self.sim = sim
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request_thread(self, request, client_address):
        with self.sockets_lock:
            self.open_sockets.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.sockets_lock:
                self.open_sockets.discard(request)

    def drop_connections(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; do not wait 40 ms
    server_version = "ADO-simulator"
    sys_version = ""
    timeout = 60
    server: _Server

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PATCH(self):
        self._handle("PATCH")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    def do_OPTIONS(self):
        self._handle("OPTIONS")

    def log_message(self, format, *args):
        pass  # one line per request is logged by the simulator itself

    def _handle(self, method: str) -> None:
        sim = self.server.sim
        parts = urlsplit(self.path)
        raw_query = parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            response = Response(413, {"message": "request body too large"})
            body = b""
        else:
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=method,
                path=unquote(parts.path),
                query={k.lower(): v[-1] for k, v in raw_query.items()},
                raw_query=raw_query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            response = sim.handle(request)
        payload = response.payload()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-ADO-Simulator", "true")
            self.send_header("ActivityId", str(uuid.uuid4()))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


# ==== the simulator =============================================================================


class AdoSimulator(SimulatorState):
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
        self._server: _Server | None = None
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
        log("stopped")

    def __enter__(self) -> AdoSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _listen(self) -> None:
        server = _Server((self.host, self.port), _Handler, self)
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

    # ---- faults, throttling, outage -----------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        path: str | None = None,
        method: str | None = None,
    ):
        """Answer the next ``count`` matching ADO requests with ``status``."""
        return self.faults.add(status, count, path=path, method=method)

    def throttle_next(
        self,
        count: int = 1,
        retry_after: int = 1,
        *,
        path: str | None = None,
        method: str | None = None,
    ):
        """Answer the next ``count`` ADO requests with 429, ``Retry-After``, ``X-RateLimit-*``."""
        return self.faults.add(429, count, path=path, method=method, retry_after=retry_after)

    def slow_next(
        self,
        count: int = 1,
        seconds: float = 30.0,
        *,
        path: str | None = None,
        method: str | None = None,
        after: bool = False,
    ):
        """Hold the next ``count`` matching ADO requests ``seconds`` (or until the returned
        rule's ``release()`` or ``stop()``) before handling them; with ``after``, handle them
        first and hold the answer. ``rule.hits`` counts the requests it caught."""
        return self.faults.add(0, count, path=path, method=method, delay=seconds, after=after)

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_rate_limit(
        self,
        limit: int = 200,
        window: float = 300.0,
        *,
        cost: float = 1.0,
        warn_below: float = 20.0,
        delay: float = 0.0,
    ) -> RateBudget:
        """Give every identity a budget of ``limit`` units per ``window`` real seconds."""
        self.budget = RateBudget(
            limit=limit, window=window, cost=cost, warn_below=warn_below, delay=delay
        )
        return self.budget

    def clear_rate_limit(self) -> None:
        self.budget = None

    def go_down(self, mode: str = "refuse", seconds: float | None = None) -> None:
        """``refuse``: stop listening (connections are refused); ``503``: answer 503 to ADO
        routes. With ``seconds`` it comes back up by itself."""
        if mode not in ("refuse", "503"):
            raise ValueError("mode is 'refuse' or '503'")
        with self._listen_lock:
            if mode == "503":
                self.down_mode = "503"
            else:
                self.down_mode = "refuse"
                self._close()
            if self._up_timer is not None:
                self._up_timer.cancel()
            if seconds is not None:
                self._up_timer = threading.Timer(seconds, self.come_up)
                self._up_timer.daemon = True
                self._up_timer.start()
        log("down (%s)%s", mode, f" for {seconds} s" if seconds is not None else "")

    def come_up(self) -> None:
        with self._listen_lock:
            self.down_mode = None
            if self._running and self._server is None:
                for _ in range(50):  # the port was just released; retry briefly
                    try:
                        self._listen()
                        break
                    except OSError:
                        time.sleep(0.1)
                else:
                    log("could not listen on port %s again", self.port)
                    return
        log("up again on %s", self.url)

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

    def _ado_answer(self, request: Request, seen: dict) -> Response:
        if self.down_mode == "503":
            seen["note"] = "down"
            raise ApiError(
                503,
                "Service Unavailable (simulated outage).",
                "ServiceUnavailableException",
                headers={"Retry-After": "5"},
            )
        try:
            caller = authenticate(request.headers.get("authorization"), self.pats)
        except AuthError as exc:
            seen["note"] = str(exc)
            return self._unauthorized(str(exc))
        seen["caller"] = caller
        rule = self.faults.take(request.method, request.path)
        if rule is not None and rule.delay and not rule.after:
            seen["note"] = f"held by fault {rule.id}"
            self._hold(rule)
        if rule is not None and rule.status:
            seen["note"] = f"fault {rule.id}"
            raise self._fault_error(rule, caller)
        extra: dict[str, str] = {}
        if self.budget is not None:
            try:
                extra, delay = self.budget.consume(caller.identity.unique_name)
            except ApiError:
                seen["note"] = "rate limit"
                raise
            if delay:
                time.sleep(delay)
        response = self._route(request, caller)
        response.headers.update(extra)
        if rule is not None and rule.delay and rule.after:
            seen["note"] = f"answer held by fault {rule.id}"
            self._hold(rule)
        return response

    def _hold(self, rule) -> None:
        deadline = time.monotonic() + rule.delay
        while not rule.released.is_set() and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            rule.released.wait(min(remaining, 0.1))

    def _fault_error(self, rule, caller: Caller) -> ApiError:
        if rule.status == 429:
            reset = time.time() + rule.retry_after
            return blocked_error(
                caller.identity.unique_name, rule.retry_after, throttle_headers(200, 0, reset)
            )
        if rule.status == 503:
            return ApiError(
                503,
                "Service Unavailable (simulated fault).",
                "ServiceUnavailableException",
                headers={"Retry-After": str(rule.retry_after)},
            )
        if rule.status >= 500:
            return ApiError(
                rule.status,
                "VS30063: simulated server error.",
                "SimulatedServerException",
                event_id=0,
            )
        return ApiError(rule.status, f"Simulated HTTP {rule.status}.", "SimulatedFaultException")

    def _unauthorized(self, reason: str) -> Response:
        page = (
            "<!DOCTYPE html><html><head><title>Access Denied (ADO simulator)</title></head><body>"
            "<h1>401 - Unauthorized</h1><p>ADO simulator: this is a simulator of Azure DevOps, "
            f"not Azure DevOps. {html.escape(reason)}.</p></body></html>"
        )
        return Response(
            401,
            page,
            {
                "WWW-Authenticate": f'Basic realm="{self.url}/"',
                "X-TFS-FedAuthRealm": self.url,
                "X-VSS-ResourceTenant": "00000000-0000-0000-0000-000000000000",
            },
            content_type="text/html; charset=utf-8",
        )

    # ---- ADO routes ---------------------------------------------------------------------------

    def _routes(self) -> list[tuple[re.Pattern, str, dict[str, Callable]]]:
        p = r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis"
        o = r"^/(?P<org>[^/]+)/_apis"
        routes = [
            (
                p + r"/pipelines/approvals/?$",
                "approvals",
                {"GET": self._approvals_list, "PATCH": self._approvals_patch},
            ),
            (
                p + rf"/pipelines/approvals/(?P<approval>{GUID})/?$",
                "approvals",
                {"GET": self._approval_get},
            ),
            (p + r"/pipelines/?$", "pipelines", {"GET": self._pipelines_list}),
            (p + r"/pipelines/(?P<pipeline>\d+)/?$", "pipelines", {"GET": self._pipeline_get}),
            (
                p + r"/pipelines/(?P<pipeline>\d+)/runs/?$",
                "runs",
                {"GET": self._runs_list, "POST": self._run_queue},
            ),
            (
                p + r"/pipelines/(?P<pipeline>\d+)/runs/(?P<run>\d+)/?$",
                "runs",
                {"GET": self._run_get},
            ),
            (p + r"/build/builds/?$", "builds", {"GET": self._builds_list}),
            (p + r"/build/builds/(?P<build>\d+)/?$", "builds", {"GET": self._build_get}),
            (
                p + rf"/build/builds/(?P<build>\d+)/timeline(?:/(?P<timeline>{GUID}))?/?$",
                "timeline",
                {"GET": self._timeline_get},
            ),
            (o + r"/?$", None, {"OPTIONS": self._locations}),
            (o + r"/ResourceAreas/?$", "resourceareas", {"GET": self._resource_areas}),
            (
                o + rf"/ResourceAreas/(?P<area>{GUID})/?$",
                "resourceareas",
                {"GET": self._resource_areas},
            ),
            (
                o + r"/hooks/subscriptions/?$",
                "subscriptions",
                {"GET": self._subs_list, "POST": self._subs_create},
            ),
            (
                o + rf"/hooks/subscriptions/(?P<subscription>{GUID})/?$",
                "subscriptions",
                {"GET": self._subs_get, "PUT": self._subs_replace, "DELETE": self._subs_delete},
            ),
            (o + r"/projects/(?P<project>[^/]+)/?$", "projects", {"GET": self._project_get}),
            (
                o + r"/connectionData/?$",
                "connectiondata",
                {"GET": self._connection_data},
            ),
        ]
        return [
            (re.compile(pattern, re.IGNORECASE), rule, methods) for pattern, rule, methods in routes
        ]

    def _route(self, request: Request, caller: Caller) -> Response:
        for pattern, rule_name, methods in self._routes():
            match = pattern.match(request.path)
            if not match:
                continue
            params = match.groupdict()
            if params["org"].lower() != self.org.lower():
                raise ApiError(
                    404,
                    f"VS800075: The organization '{params['org']}' does not exist (the simulator "
                    f"serves '{self.org}').",
                    "OrganizationNotFoundException",
                )
            handler = methods.get(request.method)
            if handler is None:
                raise ApiError(
                    405,
                    f"The requested resource does not support http method '{request.method}'.",
                    "HttpMethodNotAllowedException",
                )
            version = None
            asked = requested_version(request.raw_query, request.headers.get("accept"))
            if rule_name is not None and (asked or rule_name not in VERSION_OPTIONAL):
                version = check_version(asked, RULES[rule_name], request.method)
            if "project" in params:
                params["project"] = self.project(params["project"]).name
            with self.lock:
                self._progress(self.clock.now())
                response = handler(
                    request, caller, **{k: v for k, v in params.items() if k != "org"}
                )
            if version:
                response.content_type = f"application/json; charset=utf-8; api-version={version}"
            return response
        raise ApiError(
            404,
            f"The resource '{request.path}' is not simulated (or does not exist).",
            "VssResourceNotFoundException",
        )

    @staticmethod
    def _collection(items: list, token: str | None = None) -> Response:
        headers = {"x-ms-continuationtoken": token} if token else {}
        return Response(200, {"count": len(items), "value": items}, headers)

    def _pipelines_list(self, request: Request, caller: Caller, project: str) -> Response:
        items, token = self.list_pipelines(
            project,
            top=_int(request.query, "$top"),
            token=request.query.get("continuationtoken"),
            order_by=request.query.get("orderby"),
        )
        return self._collection(
            [self.renderer.pipeline(p, configuration=False) for p in items], token
        )

    def _pipeline_get(
        self, request: Request, caller: Caller, project: str, pipeline: str
    ) -> Response:
        return Response(200, self.renderer.pipeline(self.pipeline(int(pipeline), project)))

    def _runs_list(self, request: Request, caller: Caller, project: str, pipeline: str) -> Response:
        return self._collection(
            [self.renderer.run(r) for r in self.list_runs(project, int(pipeline))]
        )

    def _run_get(
        self, request: Request, caller: Caller, project: str, pipeline: str, run: str
    ) -> Response:
        self.pipeline(int(pipeline), project)
        return Response(200, self.renderer.run(self.run(int(run), int(pipeline))))

    def _run_queue(self, request: Request, caller: Caller, project: str, pipeline: str) -> Response:
        pipe = self.pipeline(int(pipeline), project)
        body = request.json()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise bad_request("The run parameters must be a JSON object.")
        if body.get("previewRun"):
            raise bad_request(
                "previewRun is not simulated by the ADO simulator.", "PipelineValidationException"
            )
        params = body.get("templateParameters") or {}
        variables = body.get("variables") or {}
        if not isinstance(params, dict) or not isinstance(variables, dict):
            raise bad_request("templateParameters and variables must be JSON objects.")
        for name, value in variables.items():
            if not isinstance(value, dict):
                raise bad_request(f"The variable '{name}' must be an object with a 'value'.")
        repo = ((body.get("resources") or {}).get("repositories") or {}).get("self") or {}
        run = self.queue_run(
            pipe,
            template_parameters=params,
            variables=variables,
            branch=repo.get("refName"),
            commit=repo.get("version"),
            reason="manual",
            requested_for=caller.identity,
            stages_to_skip=body.get("stagesToSkip") or (),
        )
        return Response(200, self.renderer.run(run))

    def _builds_list(self, request: Request, caller: Caller, project: str) -> Response:
        items, token = self.list_builds(project, request.query)
        return self._collection([self.renderer.build(r) for r in items], token)

    def _build_get(self, request: Request, caller: Caller, project: str, build: str) -> Response:
        run = self.run(int(build))
        if run.project is not self.project(project):
            raise ApiError(
                404, f"The requested build {build} could not be found.", "BuildNotFoundException"
            )
        return Response(200, self.renderer.build(run))

    def _timeline_get(
        self,
        request: Request,
        caller: Caller,
        project: str,
        build: str,
        timeline: str | None = None,
    ) -> Response:
        run = self.run(int(build))
        if run.project is not self.project(project) or (
            timeline and timeline.lower() != run.timeline_id
        ):
            raise ApiError(
                404,
                f"The timeline {timeline or ''} of build {build} could not be found.",
                "TimelineNotFoundException",
            )
        return Response(200, self.renderer.timeline(run))

    @staticmethod
    def _expand(request: Request) -> set[str]:
        return {
            x.strip().lower() for x in (request.query.get("$expand") or "").split(",") if x.strip()
        }

    def _approvals_list(self, request: Request, caller: Caller, project: str) -> Response:
        expand = self._expand(request)
        items, token = self.list_approvals(project, request.query)
        rendered = [
            self.renderer.approval(a, steps="steps" in expand, permissions="permissions" in expand)
            for a in items
        ]
        return self._collection(rendered, token)

    def _approval_get(
        self, request: Request, caller: Caller, project: str, approval: str
    ) -> Response:
        found = self.approval(approval)
        if found.run.project is not self.project(project):
            self.approval("00000000-0000-0000-0000-000000000000")  # raises not found
        expand = self._expand(request)
        return Response(
            200,
            self.renderer.approval(
                found, steps="steps" in expand, permissions="permissions" in expand
            ),
        )

    def _approvals_patch(self, request: Request, caller: Caller, project: str) -> Response:
        entry: dict = {
            "id": len(self.patch_log) + 1,
            "at": datetime.now(UTC).isoformat(),
            "simulatedAt": fmt_time(self.clock.now()),
            "scheme": caller.scheme,
            "identity": caller.identity.summary(),
            "apiVersion": requested_version(request.raw_query, request.headers.get("accept")),
            "body": None,
            "status": None,
        }
        if caller.claims is not None:
            entry["claims"] = caller.to_json()["claims"]
        self.patch_log.append(entry)
        try:
            body = request.json()
            entry["body"] = body
            approvals = self.update_approvals(body, caller.identity, project)
        except ApiError as exc:
            entry["status"] = exc.status
            entry["error"] = exc.message
            raise
        entry["status"] = 200
        rendered = [self.renderer.approval(a, steps=True) for a in approvals]
        return self._collection(rendered)

    def _locations(self, request: Request, caller: Caller) -> Response:
        """What ``OPTIONS {org}/_apis`` answers: the resource locations (for the SDK)."""
        keys = (
            "id",
            "area",
            "resourceName",
            "routeTemplate",
            "resourceVersion",
            "minVersion",
            "maxVersion",
            "releasedVersion",
        )
        return self._collection([dict(zip(keys, loc, strict=True)) for loc in LOCATIONS])

    def _resource_areas(
        self, request: Request, caller: Caller, area: str | None = None
    ) -> Response:
        areas = [
            {"id": BUILD_AREA_ID, "name": "build", "locationUrl": f"{self.renderer.org_url}/"},
        ]
        if area is not None:
            found = [a for a in areas if a["id"] == area.lower()]
            if not found:
                raise ApiError(
                    404, f"The resource area {area} is not simulated.", "VssServiceException"
                )
            return Response(200, found[0])
        return self._collection(areas)

    def _subs_list(self, request: Request, caller: Caller) -> Response:
        return self._collection(
            [self.renderer.subscription(s) for s in self.subscriptions.values()]
        )

    def _subs_get(self, request: Request, caller: Caller, subscription: str) -> Response:
        return Response(200, self.renderer.subscription(self.subscription(subscription)))

    def _subs_delete(self, request: Request, caller: Caller, subscription: str) -> Response:
        self.remove_subscription(subscription)
        return Response(204, None)

    @staticmethod
    def _subscription_body(request: Request) -> dict:
        """The fields of a subscription POSTed or PUT with ADO's documented body."""
        body = request.json()
        if not isinstance(body, dict):
            raise bad_request("The subscription must be a JSON object.")
        event_type = body.get("eventType")
        if event_type not in EVENT_TYPES:
            raise bad_request(
                f"The event type '{event_type}' is not simulated; one of {', '.join(EVENT_TYPES)}.",
                "ServiceHookException",
            )
        if (body.get("consumerId") or "webHooks") != "webHooks" or (
            body.get("consumerActionId") or "httpRequest"
        ) != "httpRequest":
            raise bad_request(
                "Only the webHooks / httpRequest consumer is simulated.", "ServiceHookException"
            )
        inputs = {str(k): str(v) for k, v in (body.get("consumerInputs") or {}).items()}
        if not inputs.get("url"):
            raise bad_request("The consumer input 'url' is required.", "ServiceHookException")
        headers = {}
        for line in (inputs.get("httpHeaders") or "").splitlines():
            key, _, value = line.partition(":")
            if key.strip():
                headers[key.strip()] = value.strip()
        return {
            "url": inputs["url"],
            "username": inputs.get("basicAuthUsername"),
            "password": inputs.get("basicAuthPassword"),
            "event_types": [event_type],
            "headers": headers,
            "publisher_inputs": {
                str(k): str(v) for k, v in (body.get("publisherInputs") or {}).items()
            },
            "resource_version": body.get("resourceVersion"),
            "consumer_inputs": inputs,
            "publisher_id": body.get("publisherId"),
        }

    def _subs_create(self, request: Request, caller: Caller) -> Response:
        fields = self._subscription_body(request)
        publisher_id = fields.pop("publisher_id")
        sub = self.add_subscription(fields.pop("url"), created_by=caller.identity, **fields)
        sub.publisher_id = publisher_id or sub.publisher_id
        return Response(200, self.renderer.subscription(sub))

    def _subs_replace(self, request: Request, caller: Caller, subscription: str) -> Response:
        """``PUT .../subscriptions/{id}`` (the SDK's ``replace_subscription``): same id, new
        settings. A ``basicAuthPassword`` sent back masked (``********``) keeps the old one."""
        sub = self.subscription(subscription)
        fields = self._subscription_body(request)
        if fields["password"] == MASKED_PASSWORD:
            fields["password"] = sub.password
            fields["consumer_inputs"]["basicAuthPassword"] = sub.password or ""
        sub.url = fields["url"]
        sub.username = fields["username"]
        sub.password = fields["password"]
        sub.event_types = tuple(fields["event_types"])
        sub.headers = fields["headers"]
        sub.publisher_inputs = fields["publisher_inputs"]
        sub.resource_version = fields["resource_version"]
        sub.consumer_inputs = fields["consumer_inputs"]
        sub.publisher_id = fields["publisher_id"] or sub.publisher_id
        log("subscription %s replaced: %s to %s", sub.id, ", ".join(sub.event_types), sub.url)
        return Response(200, self.renderer.subscription(sub))

    def _project_get(self, request: Request, caller: Caller, project: str) -> Response:
        """``GET {org}/_apis/projects/{name or id}`` (core): the id service hooks filter on."""
        found = self.project(project)
        return Response(
            200,
            {
                "id": found.id,
                "name": found.name,
                "url": f"{self.renderer.org_url}/_apis/projects/{found.id}",
                "state": "wellFormed",
                "revision": 1,
                "visibility": "private",
                "lastUpdateTime": fmt_time(self.clock.now()),
            },
        )

    def _connection_data(self, request: Request, caller: Caller) -> Response:
        """``GET {org}/_apis/connectionData``: the identity the call's PAT (or token) belongs
        to, which is whom ADO records the portal's approvals as."""
        return Response(200, self.renderer.connection_data(caller.identity))

    # ---- home page ----------------------------------------------------------------------------

    def _home(self) -> Response:
        info = self.summary()
        project = self.default_project
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(json.dumps(v))}</code></td></tr>"
            for k, v in info.items()
        )
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ADO simulator</title></head>
<body>
<h1>ADO simulator</h1>
<p><strong>This is a simulator of Azure DevOps, not Azure DevOps.</strong> It is part of the
MLOps Portal and serves, with the documented JSON shapes, the subset of the Azure DevOps REST API
the portal uses, so the demo runs offline and the tests exercise the real HTTP client code.</p>
<p>Organization URL: <code>{html.escape(self.org_url)}</code>; project
<code>{html.escape(project.name)}</code> (<code>{project.id}</code>).</p>
<table>{rows}</table>
<p>Scripting: the JSON control API under <a href="/_simulator">/_simulator</a>
(see docs/ado-simulator.md).</p>
</body></html>"""
        return Response(200, page, content_type="text/html; charset=utf-8")

    # ---- control API --------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        path = request.path.rstrip("/")[len("/_simulator") :].lower() or "/"
        method = request.method
        body = request.json() if request.body else {}
        if body is None:
            body = {}
        try:
            if path == "/deliveries/wait":  # must not hold the lock while it waits
                result = self._control_dispatch(method, path, request, body)
            else:
                with self.lock:
                    result = self._control_dispatch(method, path, request, body)
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(400, f"Bad control request: {exc}", "SimulatorControlException") from exc
        if isinstance(result, Response):
            return result
        return Response(200, result)

    def _control_dispatch(self, method: str, path: str, request: Request, body: dict):
        q = request.query
        segments = [s for s in path.split("/") if s]
        if path == "/" and method == "GET":
            return {
                "simulator": "ADO simulator (not Azure DevOps)",
                "url": self.url,
                "orgUrl": self.org_url,
                **self.summary(),
                "faults": [r.to_json() for r in self.faults.rules()],
                "rateLimit": self.budget.to_json() if self.budget else None,
                "down": self.down_mode,
                "requestCount": self.request_count,
            }
        if path == "/reset" and method == "POST":
            self.reset()
            self.clear_faults()
            self.clear_rate_limit()
            return {"reset": True}
        if path == "/seed" and method == "POST":
            from .seed import seed

            return seed(self, body.get("name", "demo"))
        if path == "/clock" and method == "GET":
            return self.clock.to_json()
        if path == "/clock/advance" and method == "POST":
            self.advance(float(body.get("seconds", 0)))
            return self.clock.to_json()
        if path == "/clock/speed" and method == "POST":
            self.set_speed(float(body["speed"]))
            return self.clock.to_json()
        if path == "/pats" and method == "POST":
            who = Identity(
                body.get("id") or Identity.user(body["uniqueName"]).id,
                body.get("displayName") or body["uniqueName"],
                body["uniqueName"],
            )
            self.add_pat(body["pat"], who)
            return {"pat": "********", "identity": who.summary()}
        if segments[:1] == ["pipelines"]:
            if len(segments) == 1 and method == "GET":
                return [self._control_pipeline(p) for p in self.pipelines.values()]
            if len(segments) == 1 and method == "POST":
                pipe = self.create_pipeline(
                    body["name"],
                    body.get("kind", "ci"),
                    folder=body.get("folder"),
                    model=body.get("model"),
                    project=body.get("project"),
                    stages=[_stage_from_json(s) for s in body["stages"]]
                    if body.get("stages")
                    else None,
                    stage_seconds=body.get("stageSeconds"),
                    approvers=body.get("approvers"),
                    approval_timeout_minutes=body.get("approvalTimeoutMinutes"),
                    min_required_approvers=body.get("minRequiredApprovers"),
                    execution_order=body.get("executionOrder"),
                    blocked_approvers=body.get("blockedApprovers"),
                    parameters=body.get("parameters"),
                    pipeline_id=body.get("id"),
                    repository=body.get("repository"),
                )
                return self._control_pipeline(pipe)
        if segments[:1] == ["runs"]:
            if len(segments) == 1 and method == "GET":
                pipeline_id = q.get("pipelineid")
                return [
                    self._control_run(r)
                    for r in self.runs.values()
                    if pipeline_id is None or str(r.pipeline.id) == pipeline_id
                ]
            if len(segments) == 1 and method == "POST":
                decisions = {
                    stage: Decision(
                        float(d.get("seconds", 0)),
                        d.get("status", "approved"),
                        _identity_from_json(d.get("approver")),
                        d.get("comment", ""),
                    )
                    for stage, d in (body.get("decisions") or {}).items()
                }
                run = self.queue_run(
                    int(body["pipelineId"]),
                    template_parameters=body.get("templateParameters"),
                    variables=body.get("variables"),
                    branch=body.get("branch"),
                    commit=body.get("commit"),
                    reason=body.get("reason", "manual"),
                    requested_for=_identity_from_json(body.get("requestedFor")),
                    stages_to_skip=body.get("stagesToSkip") or (),
                    fail_stage=body.get("failStage"),
                    time_out_stage=body.get("timeOutStage"),
                    decisions=decisions,
                    stage_seconds=body.get("stageSeconds"),
                    queue_seconds=float(body.get("queueSeconds", 0)),
                    at=parse_time(body["at"]) if body.get("at") else None,
                    quiet=bool(body.get("quiet")),
                    trigger_info=body.get("triggerInfo"),
                )
                return self._control_run(run)
            if len(segments) == 2 and method == "GET":
                return self._control_run(self.run(int(segments[1])))
            if len(segments) == 3 and segments[2] == "cancel" and method == "POST":
                return self._control_run(self.cancel_run(int(segments[1])))
        if segments[:1] == ["approvals"]:
            if len(segments) == 1 and method == "GET":
                status = request.query.get("status")
                return [
                    {
                        **self.renderer.approval(a, steps=True),
                        "runId": a.run.id,
                        "stage": a.stage.identifier,
                    }
                    for a in self.approvals.values()
                    if status in (None, "", a.status)
                ]
            if len(segments) == 2 and method == "POST":
                approval = self.decide(
                    segments[1],
                    body.get("status", "approved"),
                    _identity_from_json(body.get("approver")),
                    body.get("comment", ""),
                )
                return self.renderer.approval(approval, steps=True)
        if path == "/faults":
            if method == "GET":
                return [r.to_json() for r in self.faults.rules()]
            if method == "POST":
                rule = self.faults.add(
                    int(body.get("status", 500)),
                    int(body.get("count", 1)),
                    path=body.get("path"),
                    method=body.get("method"),
                    retry_after=int(body.get("retryAfter", 1)),
                    delay=float(body.get("delay", 0)),
                    after=bool(body.get("after", False)),
                )
                return rule.to_json()
            if method == "DELETE":
                self.clear_faults()
                return {"cleared": True}
        if path == "/rate-limit":
            if method == "GET":
                return self.budget.to_json() if self.budget else None
            if method == "POST":
                budget = self.set_rate_limit(
                    int(body.get("limit", 200)),
                    float(body.get("window", 300)),
                    cost=float(body.get("cost", 1)),
                    warn_below=float(body.get("warnBelow", 20)),
                    delay=float(body.get("delay", 0)),
                )
                return budget.to_json()
            if method == "DELETE":
                self.clear_rate_limit()
                return {"cleared": True}
        if path == "/down" and method == "POST":
            mode = str(body.get("mode", "503"))
            seconds = body.get("seconds")
            if mode == "refuse":
                if seconds is None:
                    raise ValueError(
                        "mode 'refuse' needs 'seconds' (nothing could bring it back up)"
                    )
                timer = threading.Timer(
                    0.05, self.go_down, kwargs={"mode": "refuse", "seconds": float(seconds)}
                )
                timer.daemon = True
                timer.start()
            else:
                self.go_down(mode, float(seconds) if seconds is not None else None)
            return {"down": mode, "seconds": seconds}
        if path == "/up" and method == "POST":
            self.come_up()
            return {"down": None}
        if segments[:1] == ["subscriptions"]:
            if len(segments) == 1 and method == "GET":
                return [self._control_subscription(s) for s in self.subscriptions.values()]
            if len(segments) == 1 and method == "POST":
                sub = self.add_subscription(
                    body["url"],
                    username=body.get("username"),
                    password=body.get("password"),
                    event_types=body.get("eventTypes"),
                    headers=body.get("headers"),
                    publisher_inputs=body.get("publisherInputs"),
                    resource_version=body.get("resourceVersion"),
                    approval_event_detail=body.get("approvalEventDetail", "sparse"),
                )
                return self._control_subscription(sub)
            if len(segments) == 2 and method == "DELETE":
                self.remove_subscription(segments[1])
                return {"deleted": segments[1]}
            if len(segments) == 3 and segments[2] == "probation" and method == "POST":
                return self._control_subscription(
                    self.set_probation(segments[1], bool(body.get("on", True)))
                )
        if segments[:1] == ["deliveries"]:
            if len(segments) == 1 and method == "GET":
                with_payload = q.get("payload", "1") not in ("0", "false")
                return [
                    d.to_json(payload=with_payload)
                    for d in self.deliveries(q.get("eventtype") or None)
                ]
            if len(segments) == 2 and segments[1] == "wait" and method == "POST":
                return {"idle": self.wait_for_deliveries(float(body.get("timeout", 10)))}
            if len(segments) == 3 and segments[2] == "redeliver" and method == "POST":
                return self.redeliver(int(segments[1])).to_json()
        if path == "/patch-log":
            if method == "GET":
                return list(self.patch_log)
            if method == "DELETE":
                self.patch_log.clear()
                return {"cleared": True}
        if path == "/requests" and method == "GET":
            return {
                "count": self.request_count,
                "requests": self.request_log(int(q.get("since", 0))),
            }
        raise ApiError(
            404, f"No control endpoint {method} /_simulator{path}.", "SimulatorControlException"
        )

    def _control_pipeline(self, pipe) -> dict:
        data = self.renderer.pipeline(pipe)
        data["simulator"] = {
            "kind": pipe.kind,
            "model": pipe.model,
            "project": pipe.project.name,
            "stages": [
                {
                    "identifier": s.identifier,
                    "name": s.name,
                    "seconds": s.seconds,
                    "environment": s.environment,
                    "approvers": [a.summary() for a in s.approvers],
                    "timeoutMinutes": s.timeout_minutes if s.has_approval else None,
                }
                for s in pipe.stages
            ],
        }
        return data

    def _control_run(self, run) -> dict:
        return {
            "id": run.id,
            "name": run.name,
            "pipelineId": run.pipeline.id,
            "pipeline": run.pipeline.name,
            "kind": run.pipeline.kind,
            "model": run.pipeline.model,
            "state": run.state,
            "result": run.result,
            "reason": run.reason,
            "requestedFor": run.requested_for.summary(),
            "queueTime": fmt_time(run.queue_time),
            "startTime": fmt_time(run.start_time),
            "finishTime": fmt_time(run.finish_time),
            "templateParameters": run.template_parameters,
            "stages": [
                {
                    "identifier": s.identifier,
                    "name": s.name,
                    "state": s.state,
                    "result": s.result,
                    "eventResult": s.event_result,
                    "startTime": fmt_time(s.start_time),
                    "finishTime": fmt_time(s.finish_time),
                    "approvalId": s.approval.id if s.approval else None,
                    "approvalStatus": s.approval.status if s.approval else None,
                }
                for s in run.stages
            ],
        }

    def _control_subscription(self, sub) -> dict:
        return {
            "id": sub.id,
            "url": sub.url,
            "eventTypes": list(sub.event_types),
            "status": sub.status,
            "username": sub.username,
            "publisherInputs": sub.publisher_inputs,
            "approvalEventDetail": sub.approval_event_detail,
        }


def _int(query: dict[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise bad_request(f"The value '{raw}' of '{name}' is not a valid integer.") from exc


def _identity_from_json(value) -> Identity | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Identity.user(value)
    unique = value.get("uniqueName") or value.get("upn")
    base = Identity.user(unique, value.get("displayName"))
    return Identity(value.get("id") or base.id, value.get("displayName") or unique, unique)


def _stage_from_json(value: dict) -> StageSpec:
    approvers = tuple(
        a for a in (_identity_from_json(x) for x in value.get("approvers") or ()) if a is not None
    )
    return StageSpec(
        identifier=value["identifier"],
        name=value.get("name") or value["identifier"],
        seconds=float(value.get("seconds", 60)),
        job=value.get("job", "Job"),
        environment=value.get("environment"),
        approvers=approvers,
        min_required_approvers=int(value.get("minRequiredApprovers", 1)),
        execution_order=value.get("executionOrder", "anyOrder"),
        instructions=value.get("instructions", ""),
        timeout_minutes=float(value.get("timeoutMinutes", 43200)),
    )
