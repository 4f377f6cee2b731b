"""ADO-style error bodies and the api-version rules of each simulated endpoint.

ADO answers a bad request with a JSON body such as::

    {"$id": "1", "innerException": null, "message": "...", "typeName": "...",
     "typeKey": "...", "errorCode": 0, "eventId": 3000}

``ApiError`` carries the HTTP status and that body; the server turns it into the response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

WEBAPI = "Microsoft.VisualStudio.Services.WebApi"


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type_key: str,
        type_name: str | None = None,
        *,
        event_id: int = 3000,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type_key = type_key
        self.type_name = type_name or f"{WEBAPI}.{type_key}, {WEBAPI}"
        self.event_id = event_id
        self.headers = headers or {}

    def body(self) -> dict:
        return {
            "$id": "1",
            "innerException": None,
            "message": self.message,
            "typeName": self.type_name,
            "typeKey": self.type_key,
            "errorCode": 0,
            "eventId": self.event_id,
        }


def not_found(message: str, type_key: str, namespace: str) -> ApiError:
    return ApiError(404, message, type_key, f"{namespace}.{type_key}, {namespace}")


def bad_request(
    message: str, type_key: str = "ArgumentException", namespace: str = "System"
) -> ApiError:
    return ApiError(400, message, type_key, f"{namespace}.{type_key}, mscorlib")


# --- api-version -----------------------------------------------------------------------------

#: REST API versions the service knows, oldest first; 7.2 is the newest (preview only).
KNOWN_VERSIONS = ("4.1", "5.0", "5.1", "6.0", "6.1", "7.0", "7.1", "7.2")
LATEST = "7.2"
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)(-preview(?:\.(\d+))?)?$", re.IGNORECASE)


def _v(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


@dataclass(frozen=True)
class VersionRule:
    """Which api-versions one resource accepts.

    ``released``: versions at which the resource is GA (accepted without ``-preview``).
    ``preview``: versions at which ``-preview`` / ``-preview.N`` is accepted, with the highest
    resource version ``N`` the service has at that version.
    """

    area: str
    resource: str
    released: frozenset[str]
    preview: dict[str, int] = field(default_factory=dict)

    def supported(self) -> str:
        parts = sorted(self.released, key=_v) + [
            f"{v}-preview.{n}" for v, n in sorted(self.preview.items(), key=lambda kv: _v(kv[0]))
        ]
        return ", ".join(parts)


_BUILD_RELEASED = frozenset({"4.1", "5.0", "5.1", "6.0", "7.0", "7.1"})

RULES: dict[str, VersionRule] = {
    # SPEC pipelines/6.0 and 6.1 are preview, 7.0 and 7.1 GA, 7.2 preview (7.2-preview.1).
    "pipelines": VersionRule(
        "pipelines",
        "pipelines",
        frozenset({"7.0", "7.1"}),
        {"6.0": 1, "6.1": 1, "7.0": 1, "7.1": 1, "7.2": 1},
    ),
    "runs": VersionRule(
        "pipelines",
        "runs",
        frozenset({"7.0", "7.1"}),
        {"6.0": 1, "6.1": 1, "7.0": 1, "7.1": 1, "7.2": 1},
    ),
    # SPEC approvalsAndChecks/6.1 preview, 7.0 and 7.1 GA (docs also show 7.1-preview.1),
    # 7.2-preview.2 the newest preview.
    "approvals": VersionRule(
        "approval",
        "approvals",
        frozenset({"7.0", "7.1"}),
        {"6.1": 1, "7.0": 1, "7.1": 1, "7.2": 2},
    ),
    # SPEC build: GA at every release; the SDK sends 7.1-preview.7 (builds), 7.1-preview.2
    # (timeline); 7.2 previews are .8 and .3.
    "builds": VersionRule(
        "build",
        "builds",
        _BUILD_RELEASED,
        {"4.1": 4, "5.0": 5, "5.1": 5, "6.0": 6, "6.1": 6, "7.0": 7, "7.1": 7, "7.2": 8},
    ),
    "timeline": VersionRule(
        "build",
        "timeline",
        _BUILD_RELEASED,
        {"4.1": 2, "5.0": 2, "5.1": 2, "6.0": 2, "6.1": 2, "7.0": 2, "7.1": 2, "7.2": 3},
    ),
    # Location service (the azure-devops SDK asks it where each resource area lives).
    "resourceareas": VersionRule(
        "Location",
        "ResourceAreas",
        frozenset(),
        {v: 1 for v in KNOWN_VERSIONS},
    ),
    "subscriptions": VersionRule(
        "hooks",
        "subscriptions",
        _BUILD_RELEASED,
        {v: 1 for v in KNOWN_VERSIONS},
    ),
    # Location service's connectionData ("who am I"): preview only, at every version; ADO
    # also answers it without any api-version (``VERSION_OPTIONAL``).
    "connectiondata": VersionRule(
        "Location",
        "connectionData",
        frozenset(),
        {v: 1 for v in KNOWN_VERSIONS},
    ),
    # Distributed task plan events (a REST check's TaskCompleted): ADO's docs for the Invoke
    # REST API check post them with 2.0-preview.1; preview .1 at every version.
    "planevents": VersionRule(
        "distributedtask",
        "events",
        frozenset(),
        {"2.0": 1, **{v: 1 for v in KNOWN_VERSIONS}},
    ),
    # The timeline record feed (a check's log lines): GA in the SDKs since 4.0.
    "timelinefeed": VersionRule(
        "distributedtask",
        "feed",
        _BUILD_RELEASED,
        {v: 1 for v in KNOWN_VERSIONS},
    ),
    # Core projects (GET one): GA at every release, previews up to .4.
    "projects": VersionRule(
        "core",
        "projects",
        _BUILD_RELEASED,
        {v: 4 for v in KNOWN_VERSIONS},
    ),
}


#: Resources ADO answers without an api-version (one given is still checked).
VERSION_OPTIONAL = frozenset({"connectiondata"})


def requested_version(query: dict[str, list[str]], accept: str | None) -> str | None:
    """The api-version of a request: the query parameter, else the Accept header's parameter."""
    values = query.get("api-version")
    if values:
        return values[-1].strip()
    for part in (accept or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "api-version" and value.strip():
            return value.strip()
    return None


def check_version(version: str | None, rule: VersionRule, method: str) -> str:
    """Return the accepted version, or raise ``ApiError`` (HTTP 400) the way ADO words it."""
    if not version:
        raise ApiError(
            400,
            f'No api-version was supplied for the "{method}" request. The version must be '
            'supplied either as part of the Accept header (e.g. "application/json; '
            'api-version=1.0") or as a query parameter (e.g. "?api-version=1.0").',
            "VssVersionNotSpecifiedException",
        )
    match = _VERSION_RE.match(version)
    if not match:
        raise ApiError(
            400,
            f"The api-version '{version}' is not in a valid format. Specify a version such as "
            f"'7.1' or '7.1-preview.1'.",
            "VssInvalidApiVersionException",
        )
    major, minor, preview, resource_version = match.groups()
    base = f"{int(major)}.{int(minor)}"
    if _v(base) > _v(LATEST):
        raise ApiError(
            400,
            f"The requested REST API version of {version} is out of range for this server. "
            f"The latest REST API version this server supports is {LATEST}.",
            "VssVersionOutOfRangeException",
        )
    if base not in rule.released and base not in rule.preview:
        raise ApiError(
            400,
            f"The requested REST API version of {version} is not supported by the resource "
            f"'{rule.area}/{rule.resource}'. Supported versions: {rule.supported()}.",
            "VssVersionOutOfRangeException",
        )
    if not preview:
        if base not in rule.released:
            raise ApiError(
                400,
                f'The requested version "{version}" of the resource is under preview. The '
                "-preview flag must be supplied in the api-version for such requests. For "
                f'example: "{base}-preview"',
                "VssInvalidPreviewVersionException",
            )
        return version
    if base not in rule.preview:
        raise ApiError(
            400,
            f"The requested REST API version of {version} is not supported by the resource "
            f"'{rule.area}/{rule.resource}'. Supported versions: {rule.supported()}.",
            "VssVersionOutOfRangeException",
        )
    if resource_version is not None and int(resource_version) > rule.preview[base]:
        raise ApiError(
            400,
            f"The requested resource version {int(resource_version)} of the resource "
            f"'{rule.area}/{rule.resource}' is out of range for api-version {base}. The latest "
            f"resource version is {rule.preview[base]}.",
            "VssVersionOutOfRangeException",
        )
    return version
