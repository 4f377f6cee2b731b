"""What approvals tell the registry's Artifactory check (docs/artifactory.md): the versions of
open approval requests (``REGISTRY_ARTIFACT_CHECK_SCOPE``), and on the approval page a flag on
the version being approved (``APPROVALS_DETAIL_SECTIONS``)."""

from __future__ import annotations

from django.urls import reverse

from registry import selectors as registry_selectors
from registry.sections import Section

from .models import OPEN_STATUSES, ApprovalRequest


def open_approval_versions() -> list[int]:
    """The pks of the versions of approval requests still open (pending, deferred...)."""
    return sorted(
        set(
            ApprovalRequest.objects.filter(
                status__in=OPEN_STATUSES, model_version__isnull=False
            ).values_list("model_version_id", flat=True)
        )
    )


def approval_binary(request, approval) -> Section | None:
    """ "Binary in Artifactory": a red warning when the binary of the version being approved
    is missing or differs, its state otherwise; None when the request names no version."""
    version = approval.model_version
    if version is None:
        return None
    status = registry_selectors.binary_status(version)
    registration = version.registered_model
    version_url = reverse(
        "registry:version-detail",
        kwargs={
            "source": registration.source.name,
            "name": registration.name,
            "version": version.version,
        },
    )
    return Section(
        "Binary in Artifactory",
        "approvals/_binary.html",
        {"binary": status, "version": version, "version_url": version_url},
        order=5 if status.is_bad else 30,
    )
