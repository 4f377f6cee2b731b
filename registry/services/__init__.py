"""Everything that changes the registry mirror and the catalog, by concern:

- ``sync``: reading a source and recording how each sync went (and queueing one);
- ``apply``: writing an upstream snapshot to the mirror, differences only;
- ``catalog``: the catalog entries the sync links and derives, and the edits people make;
- ``cards``: model card edits, submissions, reviews and archiving (audited);
- ``preferences``: the headline alias chosen per model and per team;
- ``schedules``: the source's beat entries;
- ``bootstrap``: the sources the environment declares (``manage.py bootstrap_from_env``);
- ``artifacts``: checking each version's binary in JFrog Artifactory.

Callers use this package's names (``from registry import services``), never a module's
private helper.
"""

from .apply import MODEL_FIELDS, RUN_FIELDS, VERSION_FIELDS, snapshot_apply
from .artifacts import (
    artifact_check,
    artifact_check_many,
    artifact_check_queue,
    artifact_check_scope,
    artifact_check_sweep,
)
from .bootstrap import registry_sources_bootstrap
from .cards import (
    REVIEW_APPROVE,
    REVIEW_RETURN,
    CardRefused,
    card_archive,
    card_review,
    card_submit,
    card_update,
)
from .catalog import (
    EDITABLE_FIELDS,
    FORBIDDEN_NAME_CHARACTERS,
    KIND_VALUES,
    SERVING_VALUES,
    catalog_model_create,
    catalog_model_update,
    catalog_name_for,
    catalog_name_validate,
    category_from_tags,
)
from .common import Progress, SyncResult
from .preferences import headline_alias_clean, team_preference_set
from .schedules import source_schedule_ensure, source_schedule_remove
from .sync import (
    BUSY,
    CHECK_TIMEOUT_SECONDS,
    LEASE_TTL_SECONDS,
    registered_model_sync,
    registered_model_sync_queue,
    registry_connection_check,
    registry_sync,
    registry_sync_queue,
)

__all__ = [
    "BUSY",
    "CHECK_TIMEOUT_SECONDS",
    "EDITABLE_FIELDS",
    "FORBIDDEN_NAME_CHARACTERS",
    "KIND_VALUES",
    "LEASE_TTL_SECONDS",
    "MODEL_FIELDS",
    "REVIEW_APPROVE",
    "REVIEW_RETURN",
    "RUN_FIELDS",
    "SERVING_VALUES",
    "VERSION_FIELDS",
    "CardRefused",
    "Progress",
    "SyncResult",
    "artifact_check",
    "artifact_check_many",
    "artifact_check_queue",
    "artifact_check_scope",
    "artifact_check_sweep",
    "card_archive",
    "card_review",
    "card_submit",
    "card_update",
    "catalog_model_create",
    "catalog_model_update",
    "catalog_name_for",
    "catalog_name_validate",
    "category_from_tags",
    "headline_alias_clean",
    "registered_model_sync",
    "registered_model_sync_queue",
    "registry_connection_check",
    "registry_sources_bootstrap",
    "registry_sync",
    "registry_sync_queue",
    "snapshot_apply",
    "source_schedule_ensure",
    "source_schedule_remove",
    "team_preference_set",
]
