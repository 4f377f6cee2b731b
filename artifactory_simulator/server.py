"""The stand-in's HTTP server: an in-memory store of files keyed by (repo, path).

Shapes follow JFrog's REST API documentation ("Get File Info", "Deploy Artifact"):

- ``GET /api/storage/{repo}/{path}``: ``{"repo", "path", "created", "createdBy",
  "lastModified", "modifiedBy", "lastUpdated", "downloadUri", "mimeType", "size" (a string of
  bytes), "checksums" {"sha1", "md5", "sha256"}, "originalChecksums" {...}, "uri"}``; 404 with
  ``{"errors": [{"status": 404, "message": ...}]}`` when missing.
- ``PUT /{repo}/{path}``: stores the body, 201 with the same info (plus ``checksums``).
- ``GET /{repo}/{path}``: the bytes.
- 401 ``{"errors": [...]}`` without credentials, or with wrong ones, when any are configured.

Control endpoints for tests and the demo, under ``/_simulator/`` (same authentication):
``POST /_simulator/replace/{repo}/{path}`` replaces the bytes without updating
``originalChecksums`` (a binary overwritten behind the registry's back), ``DELETE
/_simulator/files/{repo}/{path}`` removes a file, ``GET /_simulator/files`` lists them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

STORAGE_PREFIX = "/api/storage/"
CONTROL_PREFIX = "/_simulator/"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"


def checksums_of(content: bytes) -> dict[str, str]:
    return {
        "sha1": hashlib.sha1(content).hexdigest(),  # noqa: S324 - Artifactory reports it
        "md5": hashlib.md5(content).hexdigest(),  # noqa: S324 - Artifactory reports it
        "sha256": hashlib.sha256(content).hexdigest(),
    }


@dataclass
class StoredFile:
    content: bytes
    created_by: str = "simulator"
    created: str = field(default_factory=_now)
    last_modified: str = field(default_factory=_now)
    original_checksums: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if not self.original_checksums:
            self.original_checksums = checksums_of(self.content)


def _split(rest: str) -> tuple[str, str]:
    repo, _, path = unquote(rest).strip("/").partition("/")
    return repo, path


class ArtifactorySimulator:
    """``start()`` binds (port 0: any free port) and serves in a thread; ``stop()`` ends it.

    ``tokens``: accepted bearer tokens; ``users``: accepted basic-auth {user: password}. With
    neither, every request is allowed (anonymous read, as an Artifactory may be set up).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tokens: list[str] | tuple[str, ...] = (),
        users: dict[str, str] | None = None,
        context_path: str = "/artifactory",
    ):
        self.host = host
        self.port = port
        self.tokens = set(tokens)
        self.users = dict(users or {})
        self.context_path = "/" + context_path.strip("/") if context_path.strip("/") else ""
        self.files: dict[tuple[str, str], StoredFile] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- the store ------------------------------------------------------------------------

    def put(self, repo: str, path: str, content: bytes, *, by: str = "simulator") -> StoredFile:
        """Deploy ``content`` at repo/path (what an upload by the workflow does)."""
        with self.lock:
            stored = StoredFile(content, created_by=by)
            self.files[(repo, path.strip("/"))] = stored
            return stored

    def replace(self, repo: str, path: str, content: bytes) -> StoredFile:
        """Overwrite the bytes, keeping ``originalChecksums`` (the checksum now differs)."""
        with self.lock:
            key = (repo, path.strip("/"))
            old = self.files.get(key)
            stored = StoredFile(
                content, original_checksums=dict(old.original_checksums) if old else {}
            )
            if old is not None:
                stored.created = old.created
            self.files[key] = stored
            return stored

    def delete(self, repo: str, path: str) -> bool:
        with self.lock:
            return self.files.pop((repo, path.strip("/")), None) is not None

    def info(self, repo: str, path: str) -> dict | None:
        with self.lock:
            stored = self.files.get((repo, path.strip("/")))
        if stored is None:
            return None
        path = path.strip("/")
        return {
            "uri": f"{self.url}/api/storage/{repo}/{path}",
            "downloadUri": f"{self.url}/{repo}/{path}",
            "repo": repo,
            "path": f"/{path}",
            "created": stored.created,
            "createdBy": stored.created_by,
            "lastModified": stored.last_modified,
            "modifiedBy": stored.created_by,
            "lastUpdated": stored.last_modified,
            "size": str(len(stored.content)),
            "mimeType": "application/octet-stream",
            "checksums": checksums_of(stored.content),
            "originalChecksums": dict(stored.original_checksums),
        }

    # --- the server -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL the portal's ARTIFACTORY_URL names (with the context path)."""
        return f"http://{self.host}:{self.port}{self.context_path}"

    def start(self) -> ArtifactorySimulator:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="artifactory-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def authorized(self, header: str) -> bool:
        if not self.tokens and not self.users:
            return True
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() in self.tokens
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except ValueError:
                return False
            return user in self.users and self.users[user] == password
        return False


def _handler_for(sim: ArtifactorySimulator):
    class Handler(_Handler):
        simulator = sim

    return Handler


class _Handler(BaseHTTPRequestHandler):
    simulator: ArtifactorySimulator
    server_version = "ArtifactorySimulator/1.0"

    def log_message(self, format, *args):
        return

    def _send(self, status: int, body: dict | bytes | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
        self.send_response(status)
        content_type = "application/octet-stream" if isinstance(body, bytes) else "application/json"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Simulator", "artifactory")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"errors": [{"status": status, "message": message}]})

    def _route(self) -> str | None:
        """The path after the context path; None (answered 404) outside it."""
        sim = self.simulator
        path = urlsplit(self.path).path
        sim.requests.append((self.command, path))
        if sim.context_path:
            if not path.startswith(sim.context_path + "/"):
                self._error(404, "Not under the Artifactory context path")
                return None
            path = path[len(sim.context_path) :]
        if not sim.authorized(self.headers.get("Authorization", "")):
            self._error(401, "Bad credentials")
            return None
        return path

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        path = self._route()
        if path is None:
            return
        sim = self.simulator
        if path.startswith(STORAGE_PREFIX):
            repo, item = _split(path[len(STORAGE_PREFIX) :])
            info = sim.info(repo, item) if repo and item else None
            if info is None:
                return self._error(404, "Unable to find item")
            return self._send(200, info)
        if path == CONTROL_PREFIX + "files":
            with sim.lock:
                keys = sorted(sim.files)
            return self._send(200, {"files": [f"{r}/{p}" for r, p in keys], "simulator": True})
        repo, item = _split(path)
        with sim.lock:
            stored = sim.files.get((repo, item))
        if stored is None:
            return self._error(404, "File not found.")
        return self._send(200, stored.content)

    def do_PUT(self):
        path = self._route()
        if path is None:
            return
        repo, item = _split(path)
        if not repo or not item or path.startswith(("/api/", CONTROL_PREFIX)):
            return self._error(400, "Deploy needs /{repo}/{path}")
        self.simulator.put(repo, item, self._body())
        return self._send(201, self.simulator.info(repo, item))

    def do_POST(self):
        path = self._route()
        if path is None:
            return
        prefix = CONTROL_PREFIX + "replace/"
        if not path.startswith(prefix):
            return self._error(404, "No such endpoint")
        repo, item = _split(path[len(prefix) :])
        if not repo or not item:
            return self._error(400, "Replace needs /{repo}/{path}")
        self.simulator.replace(repo, item, self._body())
        return self._send(200, self.simulator.info(repo, item))

    def do_DELETE(self):
        path = self._route()
        if path is None:
            return
        prefix = CONTROL_PREFIX + "files/"
        if path.startswith(prefix):
            repo, item = _split(path[len(prefix) :])
        else:
            repo, item = _split(path)
        if not self.simulator.delete(repo, item):
            return self._error(404, "Unable to find item")
        self.send_response(204)
        self.send_header("X-Simulator", "artifactory")
        self.send_header("Content-Length", "0")
        self.end_headers()
