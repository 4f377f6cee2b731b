"""The registry app's models: one module per concern, all importable from here.

``base``: the model catalog and the mirror of one or more MLflow registries. ``history``:
the append-only record of every change the syncs observe in a registry. ``artifacts``: where
each version's binary is in JFrog Artifactory and what the last check found.
"""

from .artifacts import BAD_STATES, ArtifactCheck, ArtifactState, LocationSource
from .base import (
    DATABRICKS_SCHEMES,
    LIVE,
    CatalogModel,
    ModelKind,
    ModelVersion,
    RegisteredModel,
    RegistrySource,
    Serving,
    WebhookDelivery,
    mlflow_uri_problem,
)
from .history import RegistryEvent, RegistryEventKind

__all__ = [
    "BAD_STATES",
    "DATABRICKS_SCHEMES",
    "LIVE",
    "ArtifactCheck",
    "ArtifactState",
    "CatalogModel",
    "LocationSource",
    "ModelKind",
    "ModelVersion",
    "RegisteredModel",
    "RegistryEvent",
    "RegistryEventKind",
    "RegistrySource",
    "Serving",
    "WebhookDelivery",
    "mlflow_uri_problem",
]
