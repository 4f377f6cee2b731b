"""Checking model binaries in JFrog Artifactory (docs/artifactory.md).

``artifact_check``: one version (its location from the tags, File Info from Artifactory, the
state they add up to, written to its one ArtifactCheck row). ``artifact_check_sweep``: every
version the apps above say matters (in QA or PROD, waiting for approval), through the
``REGISTRY_ARTIFACT_CHECK_SCOPE`` hooks; beat runs it every ARTIFACTORY_CHECK_INTERVAL_SECONDS.
Without ARTIFACTORY_URL nothing is asked and the pages say "not configured".
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from core.tasks import enqueue_after_commit

from ..artifactory_client import (
    ArtifactoryClient,
    ArtifactoryError,
    ArtifactoryNotFound,
)
from ..models import LIVE, ArtifactCheck, ArtifactState, ModelVersion
from ..selectors.artifacts import artifact_location

logger = logging.getLogger(__name__)

CHECK_TASK = "registry.check_artifact"


def _findings(version: ModelVersion, client: ArtifactoryClient | None) -> dict:
    """The fields of the version's check row, asking Artifactory when there is something to ask."""
    location = artifact_location(version)
    fields = {
        "repo": location.repo if location else "",
        "path": location.path if location else "",
        "url": location.url if location else "",
        "location_source": location.source if location else "",
        "expected_sha256": location.expected_sha256 if location else "",
        "found_sha256": "",
        "size": None,
        "download_uri": "",
        "message": "",
    }
    if client is None:
        return {**fields, "state": ArtifactState.NOT_CONFIGURED}
    if location is None:
        return {**fields, "state": ArtifactState.NO_LOCATION}
    try:
        info = client.file_info(location.repo, location.path)
    except ArtifactoryNotFound as exc:
        return {**fields, "state": ArtifactState.MISSING, "message": str(exc)}
    except ArtifactoryError as exc:
        return {**fields, "state": ArtifactState.UNREACHABLE, "message": str(exc)[:2000]}
    fields.update(found_sha256=info.sha256, size=info.size, download_uri=info.download_uri)
    expected = location.expected_sha256
    if expected and info.sha256 != expected:
        state, message = ArtifactState.DIFFERS, "Artifactory's sha256 is not the one the tags name."
    elif not expected:
        state, message = ArtifactState.OK, "The tags name no sha256: only its presence is checked."
    else:
        state, message = ArtifactState.OK, ""
    return {**fields, "state": state, "message": message}


def artifact_check(
    *, version: ModelVersion, client: ArtifactoryClient | None = None
) -> ArtifactCheck:
    """Check ``version``'s binary now and record what was found (its one row, in place)."""
    if client is None:
        client = ArtifactoryClient.from_settings()
    findings = _findings(version, client)
    check, _ = ArtifactCheck.objects.update_or_create(
        model_version=version, defaults={**findings, "checked_at": timezone.now()}
    )
    if check.is_bad:
        logger.warning(
            "binary of %s is %s in Artifactory: %s/%s", version, check.state, check.repo, check.path
        )
    return check


def artifact_check_scope() -> list[int]:
    """The pks of the versions the configured hooks name (QA / PROD now, open approvals)."""
    pks: set[int] = set()
    for dotted in getattr(settings, "REGISTRY_ARTIFACT_CHECK_SCOPE", None) or []:
        pks.update(int(pk) for pk in import_string(dotted)() or [] if pk is not None)
    return sorted(pks)


def artifact_check_many(*, version_ids: list[int]) -> dict:
    """Check each live version of ``version_ids``; a count per state found."""
    client = ArtifactoryClient.from_settings()
    if client is None:
        return {"skipped": "Artifactory is not configured (ARTIFACTORY_URL)"}
    counts: dict[str, int] = {}
    versions = ModelVersion.objects.filter(LIVE, pk__in=version_ids).select_related(
        "registered_model__source"
    )
    for version in versions:
        state = artifact_check(version=version, client=client).state
        counts[state] = counts.get(state, 0) + 1
    return {"checked": sum(counts.values()), "states": counts}


def artifact_check_sweep() -> dict:
    """The periodic check: every version in scope (nothing asked when not configured)."""
    if ArtifactoryClient.from_settings() is None:
        return {"skipped": "Artifactory is not configured (ARTIFACTORY_URL)"}
    return artifact_check_many(version_ids=artifact_check_scope())


def artifact_check_queue(*, version_ids: list[int]) -> None:
    """Queue the check of these versions once the transaction commits ("Check now", a new
    approval request); nothing when Artifactory is not configured or there is none."""
    version_ids = sorted({pk for pk in version_ids if pk is not None})
    if version_ids and settings.ARTIFACTORY_URL:
        enqueue_after_commit(CHECK_TASK, *version_ids)
