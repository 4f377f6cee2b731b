"""The HTTP plumbing: a request and a response as the simulator sees them, the threading server
(which can drop its open connections, for the ``refuse`` outage) and the request handler, plus
the small helpers every route shares (a collection answer, integer and ``$expand`` parameters).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import bad_request

MAX_BODY = 4 * 1024 * 1024


class Handles(Protocol):
    """What the HTTP server hands each request to (the AdoSimulator, which imports this)."""

    def handle(self, request: Request) -> Response: ...


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


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, sim: Handles):
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


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; do not wait 40 ms
    server_version = "ADO-simulator"
    sys_version = ""
    timeout = 60
    server: Server

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


def collection(items: list, token: str | None = None) -> Response:
    """ADO's ``{count, value}`` list, with the next page's token in ``x-ms-continuationtoken``."""
    headers = {"x-ms-continuationtoken": token} if token else {}
    return Response(200, {"count": len(items), "value": items}, headers)


def expand_options(request: Request) -> set[str]:
    """The ``$expand`` options asked for, lower-cased."""
    return {x.strip().lower() for x in (request.query.get("$expand") or "").split(",") if x.strip()}


def query_int(query: dict[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise bad_request(f"The value '{raw}' of '{name}' is not a valid integer.") from exc
