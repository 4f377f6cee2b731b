"""What pipelines tell the registry's Artifactory check (docs/artifactory.md), through the
registry's hook settings: which versions run in QA or PROD now
(``REGISTRY_ARTIFACT_CHECK_SCOPE``), and a flag in the model page's versions table on those
whose binary is missing or differs (``REGISTRY_VERSION_LIST_ANNOTATORS``)."""

from __future__ import annotations

from registry import selectors as registry_selectors
from registry.models import CatalogModel
from registry.sections import ColumnItem

from . import selectors
from .sections import _deployments_now


def deployed_versions() -> list[int]:
    """The pks of every version deployed now to QA or PROD, any model, any target."""
    catalog_ids = list(CatalogModel.objects.values_list("pk", flat=True))
    found = selectors.deployments_for_catalog(catalog_ids)
    return sorted(
        {
            d.version.pk
            for environments in found.values()
            for deployments in environments.values()
            for d in deployments
            if d.version is not None
        }
    )


def version_binary_flags(
    catalog_model: CatalogModel, versions: list
) -> dict[int, list[ColumnItem]]:
    """A red "Binary missing / differs" item in the Deployed cell of a version in QA or PROD
    whose last Artifactory check found it so."""
    environments: dict[int, list[str]] = {}
    for environment, deployments in _deployments_now(catalog_model).items():
        for d in deployments:
            if d.version is not None:
                environments.setdefault(d.version.pk, []).append(environment)
    deployed = [v for v in versions if v.pk in environments]
    if not deployed:
        return {}
    cells: dict[int, list[ColumnItem]] = {}
    for pk, status in registry_selectors.binary_statuses(deployed).items():
        if not status.is_bad:
            continue
        where = " and ".join(sorted(set(environments[pk])))
        cells[pk] = [
            ColumnItem(
                text=f"Binary {status.label.lower()}",
                title=f"In {where}, and its binary in Artifactory ({status.location.repo_path}) "
                f"is {status.label.lower()}",
                tone="danger",
            )
        ]
    return cells
