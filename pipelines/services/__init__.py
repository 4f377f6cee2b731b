"""Everything that changes the pipelines mirror: the ADO sync, run requests, hook intake.

Callers use ``from pipelines import services`` and the names below; the modules are split by
concern: ``sync`` (a project's sync, one run's refresh, their bookkeeping), its steps
``pipelines_apply`` and ``runs_apply`` (with ``common``: the result and shared helpers),
``identity`` (whom the credentials are, "Test connection"), ``hooks`` (service-hook intake),
``run_requests`` (runs the portal queues), ``rollback`` (a release of a version that served
before), ``schedules`` (beat entries) and ``bootstrap``
(the project the environment declares, ``manage.py bootstrap_from_env``).
"""

from .bootstrap import ado_project_bootstrap
from .common import Progress, SyncResult
from .hooks import HookOutcome, hook_deliveries_prune, hook_delivery_accept
from .identity import CHECK_TIMEOUT, project_connection_check, project_service_identity_record
from .pipelines_apply import KIND_SUFFIXES, pipeline_kind_and_model
from .rollback import (
    ROLLBACK_REASON,
    RollbackRefused,
    release_pipeline,
    rollback_check,
    rollback_request,
    rollback_served_check,
)
from .run_requests import (
    REQUEST_KEY_PARAMETER,
    run_request_send,
    run_requests_sweep,
    trigger_run,
)
from .schedules import project_schedule_ensure, project_schedule_remove
from .sync import (
    BUSY,
    CURSOR_OVERLAP,
    LEASE_TTL_SECONDS,
    project_sync,
    project_sync_queue,
    run_refresh,
)

__all__ = [
    "BUSY",
    "CHECK_TIMEOUT",
    "CURSOR_OVERLAP",
    "KIND_SUFFIXES",
    "LEASE_TTL_SECONDS",
    "REQUEST_KEY_PARAMETER",
    "ROLLBACK_REASON",
    "HookOutcome",
    "Progress",
    "RollbackRefused",
    "SyncResult",
    "ado_project_bootstrap",
    "hook_deliveries_prune",
    "hook_delivery_accept",
    "pipeline_kind_and_model",
    "project_connection_check",
    "project_schedule_ensure",
    "project_schedule_remove",
    "project_service_identity_record",
    "project_sync",
    "project_sync_queue",
    "release_pipeline",
    "rollback_check",
    "rollback_request",
    "rollback_served_check",
    "run_refresh",
    "run_request_send",
    "run_requests_sweep",
    "trigger_run",
]
