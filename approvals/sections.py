"""What approvals add to the registry's pages, through the registry's hook settings
(``REGISTRY_MODEL_PAGE_SECTIONS``, ``REGISTRY_VERSION_PAGE_SECTIONS``; see registry/sections.py):
the registry calls these without importing this app."""

from __future__ import annotations

from registry.models import CatalogModel, ModelVersion
from registry.sections import Section

from . import selectors


def model_page(request, catalog_model: CatalogModel) -> list[Section]:
    """ "Waiting for approval": the model's open QA / PROD approval requests, oldest first."""
    waiting = list(
        selectors.approval_list(filters=selectors.ApprovalFilters(model=catalog_model.name))
    )
    for approval in waiting:
        approval.overdue = selectors.is_overdue(approval)
    return [
        Section(
            "Waiting for approval",
            "approvals/_model_waiting.html",
            {"catalog_model": catalog_model, "approvals": waiting},
            order=15,
        )
    ]


def version_page(request, version: ModelVersion) -> list[Section]:
    """ "Approvals": every QA / PROD approval request that concerns this version."""
    approvals = selectors.approvals_for_version(version)
    for approval in approvals:
        approval.overdue = selectors.is_overdue(approval)
    return [
        Section(
            "Approvals",
            "approvals/_version_approvals.html",
            {"version": version, "approvals": approvals},
            order=20,
        )
    ]
