"""The demo's binaries in the Artifactory stand-in (docs/artifactory.md): every demo version's
binary uploaded and named by its version tags in MLflow (mirrored by a sync), one version in
PROD overwritten afterwards so its checksum differs, and a first check of them all."""

from __future__ import annotations

import hashlib

from django.conf import settings

from pipelines import selectors as pipelines_selectors
from registry import services as registry
from registry.models import LIVE, CatalogModel, ModelVersion, RegistrySource

from .servers import DemoArtifactory, DemoMlflowServer

REPO = "ml-models"


def _repo_path(version: ModelVersion) -> str:
    return f"{REPO}/{version.registered_model.name}/{version.version}/model.tar.gz"


def _content(version: ModelVersion) -> bytes:
    return f"{version.registered_model.name} v{version.version} (demo binary)\n".encode()


def _prod_version() -> ModelVersion | None:
    """A version deployed to PROD now (the first of the first model that has one)."""
    found = pipelines_selectors.deployments_for_catalog(
        list(CatalogModel.objects.order_by("name").values_list("pk", flat=True))
    )
    for per_env in found.values():
        for deployment in per_env.get("PROD", []):
            if deployment.version is not None:
                return deployment.version
    return None


def artifacts_ready(
    command, mlflow: DemoMlflowServer, artifactory: DemoArtifactory, source: RegistrySource
) -> None:
    """Upload, tag (in MLflow, then a full sync), overwrite one PROD binary, check all."""
    from mlflow import MlflowClient  # seconds to import: only when the demo needs it

    artifactory.wait()
    client = MlflowClient(tracking_uri=mlflow.url)
    versions = list(
        ModelVersion.objects.filter(LIVE, registered_model__source=source).select_related(
            "registered_model"
        )
    )
    for version in versions:
        content = _content(version)
        artifactory.upload(_repo_path(version), content)
        tags = {
            settings.ARTIFACTORY_PATH_TAG: _repo_path(version),
            settings.ARTIFACTORY_SHA256_TAG: hashlib.sha256(content).hexdigest(),
        }
        for key, value in tags.items():
            if version.tags.get(key) != value:
                client.set_model_version_tag(
                    version.registered_model.name, str(version.version), key, value
                )
    registry.registry_sync(source=source, full=True)
    overwritten = _prod_version()
    if overwritten is not None:
        artifactory.upload(
            _repo_path(overwritten), b"overwritten after registration\n", replace=True
        )
    # This seeding, and the portal's processes (demo_process_env passes them on), use it.
    settings.ARTIFACTORY_URL = artifactory.url
    settings.ARTIFACTORY_TOKEN = artifactory.token
    result = registry.artifact_check_many(version_ids=[v.pk for v in versions])
    states = ", ".join(f"{n} {state}" for state, n in sorted(result.get("states", {}).items()))
    command.stdout.write(
        command.style.SUCCESS(
            f"Artifactory stand-in (not Artifactory) at {artifactory.url} (pid "
            f"{artifactory.pid}): {len(versions)} demo binaries uploaded and checked ({states})."
        )
    )
    if overwritten is not None:
        command.stdout.write(
            f"  The binary of {overwritten.registered_model.name} v{overwritten.version} (in "
            "PROD) was overwritten after registration: its version page flags it."
        )
    command.stdout.write("")
