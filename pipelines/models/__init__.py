"""The pipelines app's models: one module per concern, all importable from here.

``base``: ADO projects, pipelines, their runs and stages, hook deliveries and the run requests
the portal sends. ``deployments``: the append-only record of what started serving where.
"""

from .base import (
    AdoProject,
    Environment,
    HookDelivery,
    Pipeline,
    PipelineKind,
    PipelineRun,
    RunRequest,
    RunResult,
    RunStage,
    RunState,
)
from .deployments import DeploymentRecord

__all__ = [
    "AdoProject",
    "DeploymentRecord",
    "Environment",
    "HookDelivery",
    "Pipeline",
    "PipelineKind",
    "PipelineRun",
    "RunRequest",
    "RunResult",
    "RunStage",
    "RunState",
]
