"""Rollback: put back a version that served before, through the same gates as any release.

``rollback_request`` queues the model's release pipeline for the older version through the
exactly-once run-request path (``trigger_run``, reason "rollback"); the run then stops at its
QA and PROD approvals like every release, and the approvals pages mark it as a rollback
(``RunRequest.rollback_of`` / ``rollback_to``: which version it replaces, which it restores).

Only a version that served before may be put back: one with a DeploymentRecord of the model,
and not the one serving now in that environment (the latest record of each target).
"""

from __future__ import annotations

from core.errors import PortalError
from registry.models import CatalogModel, ModelVersion

from .. import selectors_history
from ..models import Environment, Pipeline, PipelineKind, RunRequest
from .run_requests import trigger_run

ROLLBACK_REASON = "rollback"
REASON_MAX_LENGTH = 2000


class RollbackRefused(PortalError):
    code = "rollback_refused"
    http_status = 400


def release_pipeline(catalog_model: CatalogModel) -> Pipeline | None:
    """The model's release pipeline (the latest seen, if the project has several)."""
    return (
        Pipeline.objects.filter(
            catalog_model=catalog_model,
            kind=PipelineKind.RELEASE,
            deleted_upstream_at__isnull=True,
            project__enabled=True,
        )
        .select_related("project", "catalog_model")
        .order_by("-last_synced_at", "-pk")
        .first()
    )


def rollback_served_check(*, catalog_model: CatalogModel, version: ModelVersion) -> None:
    """Refuse a version that never served: there is nothing to roll back to."""
    if not selectors_history.served_before(catalog_model, version):
        raise RollbackRefused(
            f"v{version.version} never served in QA or PROD, so there is nothing to roll back "
            "to: release it as a new version instead.",
            code="never_served",
        )


def rollback_check(
    *, catalog_model: CatalogModel, version: ModelVersion, environment: str
) -> tuple[ModelVersion | None, str]:
    """Refuse what cannot be rolled back to; else (the version serving now, its target)."""
    if environment not in (Environment.QA, Environment.PROD):
        raise RollbackRefused("Choose QA or PROD.", code="invalid_environment")
    if version.registered_model.catalog_model_id != catalog_model.pk:
        raise RollbackRefused(
            f"Version {version.version} is not a version of {catalog_model.name}.",
            code="wrong_model",
        )
    rollback_served_check(catalog_model=catalog_model, version=version)
    now = selectors_history.latest_per_target(catalog_model, environment)
    serving_targets = sorted(t for t, r in now.items() if r.model_version_id == version.pk)
    if serving_targets:
        raise RollbackRefused(
            f"v{version.version} is what serves now in {environment} "
            f"({', '.join(serving_targets)}).",
            code="serving_now",
        )
    if not now:
        return None, ""
    current = max(now.values(), key=lambda r: (r.started_at, r.pk))
    replaced = (
        ModelVersion.objects.filter(pk=current.model_version_id).first()
        if current.model_version_id
        else None
    )
    return replaced, current.target


def rollback_request(
    *,
    catalog_model: CatalogModel,
    version: ModelVersion,
    environment: str,
    reason: str,
    user,
) -> RunRequest:
    """Queue the release pipeline for ``version``, marked as a rollback of what serves now."""
    reason = (reason or "").strip()
    if not reason:
        raise RollbackRefused(
            "Say why you roll back: a reason is required.", code="reason_required"
        )
    if len(reason) > REASON_MAX_LENGTH:
        raise RollbackRefused(
            f"Keep the reason under {REASON_MAX_LENGTH} characters.", code="reason_too_long"
        )
    replaced, target = rollback_check(
        catalog_model=catalog_model, version=version, environment=environment
    )
    pipeline = release_pipeline(catalog_model)
    if pipeline is None:
        raise RollbackRefused(
            f"{catalog_model.name} has no release pipeline in an enabled ADO project, so the "
            "portal cannot queue a rollback.",
            code="no_release_pipeline",
        )
    parameters = {
        "modelVersion": str(version.version),
        "registrySource": version.registered_model.source.name,
    }
    if target and target != "default":
        parameters["deployTarget"] = target
    request = trigger_run(
        pipeline=pipeline,
        parameters=parameters,
        reason=ROLLBACK_REASON,
        note=reason,
        acting_user=user,
        allow_release=True,
    )
    RunRequest.objects.filter(pk=request.pk).update(rollback_of=replaced, rollback_to=version)
    request.rollback_of, request.rollback_to = replaced, version
    return request
