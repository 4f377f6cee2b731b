"""The registry app's models: one module per concern, all importable from here.

``base``: the model catalog and the mirror of one or more MLflow registries. ``history``:
the append-only record of every change the syncs observe in a registry. ``preferences``:
per-team choices of the registry pages (the headline alias).
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
from .preferences import TeamPreference

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
    "TeamPreference",
    "WebhookDelivery",
    "mlflow_uri_problem",
]
