"""Where a version's binary is (the tag convention of docs/artifactory.md) and what to show of
its last Artifactory check: one ``BinaryStatus`` for the version page, the approval page, the
model page's flags and the API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings

from ..artifactory_client import is_configured, ui_url
from ..models import BAD_STATES, ArtifactCheck, ArtifactState, LocationSource, ModelVersion

SHA256_LENGTH = 64
_UNREAD = object()


@dataclass(frozen=True)
class ArtifactLocation:
    """repo and path in Artifactory, the sha256 the tags promise, and a URL tag (if any)."""

    repo: str
    path: str
    expected_sha256: str
    url: str
    source: str  # LocationSource

    @property
    def repo_path(self) -> str:
        return f"{self.repo}/{self.path}"


def _tag(tags, key: str) -> str:
    value = tags.get(key) if isinstance(tags, dict) else None
    return str(value).strip() if value not in (None, "") else ""


def _from_url(url: str) -> str:
    """repo/path from a URL tag under ARTIFACTORY_URL (or its API storage URL); else ""."""
    base = (settings.ARTIFACTORY_URL or "").rstrip("/")
    if not base or not url.startswith(base + "/"):
        return ""
    rest = url[len(base) + 1 :]
    return rest.removeprefix("api/storage/")


def artifact_location(version: ModelVersion) -> ArtifactLocation | None:
    """The binary's location by the convention: the version's tags, else its source run's
    tags (ARTIFACTORY_PATH_TAG "repo/path", ARTIFACTORY_SHA256_TAG, ARTIFACTORY_URL_TAG);
    a URL tag under ARTIFACTORY_URL stands in for a missing path tag. None: none names one."""
    for tags, source in (
        (version.tags, LocationSource.VERSION_TAGS),
        (version.run_tags, LocationSource.RUN_TAGS),
    ):
        url = _tag(tags, settings.ARTIFACTORY_URL_TAG)
        repo_path = _tag(tags, settings.ARTIFACTORY_PATH_TAG) or _from_url(url)
        repo, _, path = repo_path.strip("/").partition("/")
        if repo and path:
            return ArtifactLocation(
                repo=repo,
                path=path,
                expected_sha256=_tag(tags, settings.ARTIFACTORY_SHA256_TAG).lower(),
                url=url,
                source=source,
            )
    return None


@dataclass(frozen=True)
class BinaryStatus:
    """What the pages and the API say of a version's binary."""

    state: str  # an ArtifactState, or "" when configured but never checked
    location: ArtifactLocation | None
    found_sha256: str = ""
    size: int | None = None
    checked_at: dt.datetime | None = None
    message: str = ""
    link: str = ""

    @property
    def configured(self) -> bool:
        return self.state != ArtifactState.NOT_CONFIGURED

    @property
    def is_bad(self) -> bool:
        return self.state in BAD_STATES

    @property
    def label(self) -> str:
        return ArtifactState(self.state).label if self.state else "Not checked yet"

    @property
    def tone(self) -> str:
        """The badge's Bootstrap colour (UI.md: red for a problem, amber pending, grey n/a)."""
        return {
            ArtifactState.OK: "success",
            ArtifactState.MISSING: "danger",
            ArtifactState.DIFFERS: "danger",
            ArtifactState.UNREACHABLE: "warning",
        }.get(self.state, "secondary")

    @property
    def expected_sha256(self) -> str:
        return self.location.expected_sha256 if self.location else ""


def binary_status(version: ModelVersion, check=_UNREAD) -> BinaryStatus:
    """The binary of ``version`` as the pages show it: the location from its tags now, and
    the last check's findings (``check``: given when read in bulk; else read here)."""
    location = artifact_location(version)
    link = ""
    if location is not None:
        link = location.url or (
            ui_url(settings.ARTIFACTORY_URL, location.repo, location.path)
            if is_configured()
            else ""
        )
    if not is_configured():
        return BinaryStatus(ArtifactState.NOT_CONFIGURED, location, link=link)
    if check is _UNREAD:
        check = ArtifactCheck.objects.filter(model_version=version).first()
    if location is None:
        return BinaryStatus(
            ArtifactState.NO_LOCATION, None, checked_at=check.checked_at if check else None
        )
    checked = (check.repo, check.path, check.expected_sha256) if check else None
    if checked != (location.repo, location.path, location.expected_sha256):
        return BinaryStatus("", location, link=link)  # the tags changed since: not checked
    return BinaryStatus(
        check.state,
        location,
        found_sha256=check.found_sha256,
        size=check.size,
        checked_at=check.checked_at,
        message=check.message,
        link=link,
    )


def binary_statuses(versions: list[ModelVersion]) -> dict[int, BinaryStatus]:
    """Per version pk, its BinaryStatus, with the checks read in one query."""
    checks = {
        c.model_version_id: c for c in ArtifactCheck.objects.filter(model_version__in=versions)
    }
    return {v.pk: binary_status(v, checks.get(v.pk)) for v in versions}
