"""The only module that speaks HTTP to JFrog Artifactory (docs/artifactory.md).

One call: "Get File Info", ``GET {ARTIFACTORY_URL}/api/storage/{repo}/{path}``, whose JSON
carries ``checksums`` {sha1, md5, sha256}, ``originalChecksums``, ``size`` (bytes, as a
string), ``downloadUri``, ``created`` and ``lastModified``; 404 when there is no such item.

Authentication: an access token (``Authorization: Bearer``, ARTIFACTORY_TOKEN) or a user name
and password (basic; ARTIFACTORY_USERNAME / ARTIFACTORY_PASSWORD); neither: anonymous.
Like the other clients, the GET is retried on a 5xx, a connection error or a timeout, with a
short backoff; what is left is raised as an ``ArtifactoryError`` (a ``PortalError``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import quote

import requests
from django.conf import settings

from core.clients import http_session
from core.errors import PortalError

RETRY_BACKOFF_SECONDS = 0.25
NOT_RETRIED_5XX = frozenset({501, 505})


class ArtifactoryError(PortalError):
    """Artifactory failed or refused: ``status`` is its HTTP status (None: no response)."""

    code = "artifactory_error"
    http_status = 502

    def __init__(self, message: str, status: int | None = None, request: str = ""):
        super().__init__(message)
        self.status = status
        self.request = request

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no response"
        return f"{self.message} ({where}{', ' + self.request if self.request else ''})"


class ArtifactoryAuthError(ArtifactoryError):
    """401 / 403: the token or the user name and password were refused."""

    code = "artifactory_auth"


class ArtifactoryNotFound(ArtifactoryError):
    """404: no such repository or item."""

    code = "artifactory_not_found"


@dataclass(frozen=True)
class FileInfo:
    """What Artifactory says of one stored file."""

    repo: str
    path: str
    sha256: str
    sha1: str
    md5: str
    original_sha256: str
    size: int | None
    download_uri: str
    last_modified: str

    @classmethod
    def from_json(cls, body: dict) -> FileInfo:
        checksums = body.get("checksums") or {}
        original = body.get("originalChecksums") or {}
        try:
            size = int(body.get("size")) if body.get("size") not in (None, "") else None
        except (TypeError, ValueError):
            size = None
        return cls(
            repo=str(body.get("repo") or ""),
            path=str(body.get("path") or "").lstrip("/"),
            sha256=str(checksums.get("sha256") or "").lower(),
            sha1=str(checksums.get("sha1") or "").lower(),
            md5=str(checksums.get("md5") or "").lower(),
            original_sha256=str(original.get("sha256") or "").lower(),
            size=size,
            download_uri=str(body.get("downloadUri") or ""),
            last_modified=str(body.get("lastModified") or ""),
        )


def is_configured() -> bool:
    return bool(settings.ARTIFACTORY_URL)


def ui_url(base_url: str, repo: str, path: str) -> str:
    """The item in Artifactory's web UI (the JFrog Platform's UI lives beside /artifactory)."""
    platform = base_url.rstrip("/")
    if platform.endswith("/artifactory"):
        platform = platform[: -len("/artifactory")]
    return f"{platform}/ui/repos/tree/General/{quote(repo)}/{quote(path)}"


class ArtifactoryClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str = "",
        username: str = "",
        password: str = "",
        verify: bool | str = True,
        timeout: float = 10.0,
        retries: int = 2,
    ):
        self.base_url = base_url.rstrip("/")
        self.retries = max(0, retries)
        self.session = http_session(timeout=(min(5.0, timeout), timeout), verify=verify, retries=0)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        elif username:
            self.session.auth = (username, password)
        self.session.headers["Accept"] = "application/json"

    @classmethod
    def from_settings(cls) -> ArtifactoryClient | None:
        """The configured client; None when ARTIFACTORY_URL is unset."""
        if not is_configured():
            return None
        return cls(
            settings.ARTIFACTORY_URL,
            token=settings.ARTIFACTORY_TOKEN,
            username=settings.ARTIFACTORY_USERNAME,
            password=settings.ARTIFACTORY_PASSWORD,
            verify=settings.ARTIFACTORY_VERIFY,
            timeout=settings.ARTIFACTORY_TIMEOUT_SECONDS,
            retries=settings.ARTIFACTORY_RETRIES,
        )

    def file_info(self, repo: str, path: str) -> FileInfo:
        """File Info of repo/path; raises ``ArtifactoryNotFound`` when it is not there."""
        url = f"{self.base_url}/api/storage/{quote(repo)}/{quote(path.lstrip('/'))}"
        response = self._get(url)
        try:
            body = response.json()
        except ValueError:
            raise ArtifactoryError(
                "Artifactory answered something that is not JSON", response.status_code, url
            ) from None
        if not isinstance(body, dict) or "checksums" not in body:
            raise ArtifactoryError(
                "Artifactory's answer has no checksums (a folder, or not File Info)",
                response.status_code,
                f"GET {url}",
            )
        return FileInfo.from_json(body)

    def _get(self, url: str) -> requests.Response:
        described = f"GET {url}"
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.session.get(url)
            except requests.RequestException as exc:
                if last:
                    raise ArtifactoryError(
                        f"Artifactory could not be reached: {exc.__class__.__name__}",
                        None,
                        described,
                    ) from exc
            else:
                status = response.status_code
                if status < 500 or status in NOT_RETRIED_5XX or last:
                    return _checked(response, described)
            time.sleep(RETRY_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover


def _message(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return str(errors[0].get("message") or "")
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""


def _checked(response: requests.Response, described: str) -> requests.Response:
    status = response.status_code
    if status == 200:
        return response
    said = _message(response)
    if status in (401, 403):
        raise ArtifactoryAuthError(
            f"Artifactory refused the credentials{': ' + said if said else ''}", status, described
        )
    if status == 404:
        raise ArtifactoryNotFound(said or "No such item in Artifactory", status, described)
    raise ArtifactoryError(
        f"Artifactory answered HTTP {status}{': ' + said if said else ''}", status, described
    )
