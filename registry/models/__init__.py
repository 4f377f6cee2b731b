"""The registry app's models: one module per concern, all importable from here.

``base``: the model catalog and the mirror of one or more MLflow registries. ``history``:
the append-only record of every change the syncs observe in a registry. ``cards``: model
cards and their append-only revisions. ``artifacts``: where each version's binary is in JFrog
Artifactory and what the last check found. ``preferences``: per-team choices of the registry
pages (the headline alias).
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
from .cards import (
    CARD_FIELDS,
    CardAction,
    CardStatus,
    ModelCard,
    ModelCardRevision,
    RiskRating,
)
from .history import RegistryEvent, RegistryEventKind
from .preferences import TeamPreference

__all__ = [
    "BAD_STATES",
    "CARD_FIELDS",
    "DATABRICKS_SCHEMES",
    "LIVE",
    "ArtifactCheck",
    "ArtifactState",
    "CardAction",
    "CardStatus",
    "CatalogModel",
    "LocationSource",
    "ModelCard",
    "ModelCardRevision",
    "ModelKind",
    "ModelVersion",
    "RegisteredModel",
    "RegistryEvent",
    "RegistryEventKind",
    "RegistrySource",
    "RiskRating",
    "Serving",
    "TeamPreference",
    "WebhookDelivery",
    "mlflow_uri_problem",
]
