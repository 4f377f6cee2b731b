"""The ADO simulator: a small HTTP server that stands in for Azure DevOps.

It serves, with the documented JSON shapes and api-version handling, the subset of the ADO REST
API the portal uses (pipelines, runs, builds, build timeline, approvals, service-hook
subscriptions) and delivers service-hook events. It says so on every page and log line. It
imports nothing from Django, so it also runs as ``python -m ado_simulator``; the
management command ``run_ado_simulator`` is a thin wrapper. See docs/ado-simulator.md.
"""

from .auth import Identity
from .control import ControlError, RemoteSimulator
from .errors import ApiError
from .events import (
    APPROVAL_COMPLETED,
    APPROVAL_PENDING,
    BUILD_COMPLETE,
    EVENT_TYPES,
    RUN_EVENT,
    STAGE_EVENT,
)
from .model import PIPELINE_KINDS, Decision, StageSpec
from .server import AdoSimulator
from .state import SimulatorState

__all__ = [
    "APPROVAL_COMPLETED",
    "APPROVAL_PENDING",
    "BUILD_COMPLETE",
    "EVENT_TYPES",
    "PIPELINE_KINDS",
    "RUN_EVENT",
    "STAGE_EVENT",
    "AdoSimulator",
    "ApiError",
    "ControlError",
    "Decision",
    "Identity",
    "RemoteSimulator",
    "SimulatorState",
    "StageSpec",
]
