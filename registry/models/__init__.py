"""The registry app's models: one module per concern, all importable from here.

``base``: the model catalog and the mirror of one or more MLflow registries. ``history``:
the append-only record of every change the syncs observe in a registry.
"""

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
    "DATABRICKS_SCHEMES",
    "LIVE",
    "CatalogModel",
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
