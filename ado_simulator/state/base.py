"""The state every part of the simulator shares: the lock, the clock, ids, the organization with
its projects and the PATs (identities) it accepts; ``reset`` and ``summary`` over all of it.

The other modules of this package add, as mixins of ``StateBase``, one concern each (pipelines,
runs, the engine, approvals, subscriptions); ``SimulatorState`` in ``__init__`` puts them
together.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime

from ..auth import Identity
from ..clock import SimClock
from ..errors import not_found
from ..events import EventPublisher
from ..hooks import HookDispatcher
from ..mlflow_sink import MlflowSink
from ..model import Approval, ApprovalStep, Pipeline, Project, Run, Subscription
from ..render import Renderer
from ..util import IdSource, log, stable_guid

PIPELINES_NS = "Microsoft.Azure.Pipelines.WebApi"
BUILD_NS = "Microsoft.TeamFoundation.Build.WebApi"
APPROVAL_NS = "Microsoft.Azure.Pipelines.Approval.WebApi"
SIMULATOR_IDENTITY = Identity(stable_guid("system", "simulator"), "ADO simulator", "ado-simulator")


class StateBase(EventPublisher):
    """What every concern of ``SimulatorState`` uses: the lock (one re-entrant lock makes every
    public method thread-safe), the clock, ids, the renderer, the collections, the organization
    with its projects and PATs."""

    def __init__(
        self,
        *,
        org: str = "simorg",
        projects: Iterable[str] = ("MLOps",),
        seed: str | int | None = None,
        start: datetime | None = None,
        speed: float = 0.0,
        pats: dict[str, Identity | str] | None = None,
        base_url: str = "http://127.0.0.1",
        hook_retry_delay: float = 1.0,
        hook_timeout: float = 10.0,
        auto_probation: bool = False,
        mlflow_tracking_uri: str | None = None,
    ):
        self.lock = threading.RLock()
        self.clock = SimClock(start, speed)
        self.ids = IdSource(seed)
        self.org = org
        self.org_id = stable_guid("org", org)
        self.renderer = Renderer(base_url, org, self.org_id, self.clock.now())
        self.projects: dict[str, Project] = {}
        self.pipelines: dict[int, Pipeline] = {}
        self.runs: dict[int, Run] = {}
        self.approvals: dict[str, Approval] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.pats: dict[str, Identity] = {}
        self.patch_log: list[dict] = []
        self.rest_checks: dict = {}  # environment (lower) -> checks.RestCheck
        self.check_runs: dict = {}  # plan id (lower) -> checks.CheckRun
        self.hooks = HookDispatcher(
            retry_delay=hook_retry_delay, timeout=hook_timeout, auto_probation=auto_probation
        )
        # Optional: succeeded live training runs register a model version in this MLflow.
        self.mlflow = MlflowSink(mlflow_tracking_uri) if mlflow_tracking_uri else None
        self._next_pipeline_id = 1
        self._next_run_id = 1
        self._next_notification_id = 1
        self._active: set[int] = set()
        self._quiet = 0
        for name in projects:
            self.add_project(name)
        for pat, who in (pats or {"simulator-pat": "portal-service@simulator.local"}).items():
            self.add_pat(pat, who)

    def _log(self, message: str, *args) -> None:
        """Log a state change (at DEBUG while seeding history quietly, else INFO)."""
        log(message, *args, level=logging.DEBUG if self._quiet else logging.INFO)

    # ==== setup ==================================================================================

    def add_project(self, name: str, project_id: str | None = None) -> Project:
        with self.lock:
            project = Project(project_id or stable_guid("project", self.org, name), name)
            self.projects[name.lower()] = project
            return project

    @property
    def default_project(self) -> Project:
        return next(iter(self.projects.values()))

    def project(self, key: str | Project | None = None) -> Project:
        if isinstance(key, Project):
            return key
        if key is None:
            return self.default_project
        with self.lock:
            found = self.projects.get(key.lower())
            if found is None:
                found = next(
                    (p for p in self.projects.values() if p.id.lower() == key.lower()), None
                )
            if found is None:
                raise not_found(
                    f"TF200016: The following project does not exist: {key}. Verify that the "
                    "name of the project is correct and that the project exists on the specified "
                    "Azure DevOps Server.",
                    "ProjectDoesNotExistWithNameException",
                    "Microsoft.TeamFoundation.Core.WebApi",
                )
            return found

    def add_pat(
        self, pat: str, identity: Identity | str, display_name: str | None = None
    ) -> Identity:
        """Accept ``pat`` in basic auth; calls made with it are attributed to ``identity``."""
        if isinstance(identity, str):
            identity = Identity.user(identity, display_name)
        with self.lock:
            self.pats[pat] = identity
        return identity

    def set_base_url(self, base_url: str) -> None:
        with self.lock:
            self.renderer.base_url = base_url.rstrip("/")

    # ==== reset ==================================================================================

    def reset(self) -> None:
        """Forget pipelines, runs, approvals, subscriptions and logs (projects and PATs stay)."""
        with self.lock:
            self.pipelines.clear()
            self.runs.clear()
            self.approvals.clear()
            self.subscriptions.clear()
            self.patch_log.clear()
            self.rest_checks.clear()
            self.check_runs.clear()
            self.hooks.clear_log()
            if self.mlflow is not None:
                self.mlflow.clear_log()
            self._active.clear()
            self._next_pipeline_id = 1
            self._next_run_id = 1

    def summary(self) -> dict:
        with self.lock:
            self._progress(self.clock.now())
            runs = list(self.runs.values())
            return {
                "organization": self.org,
                "projects": [{"id": p.id, "name": p.name} for p in self.projects.values()],
                "clock": self.clock.to_json(),
                "pipelines": len(self.pipelines),
                "runs": {
                    "total": len(runs),
                    "inProgress": sum(1 for r in runs if r.state != "completed"),
                    "succeeded": sum(1 for r in runs if r.result == "succeeded"),
                    "failed": sum(1 for r in runs if r.result == "failed"),
                    "canceled": sum(1 for r in runs if r.result == "canceled"),
                },
                "approvals": {
                    "total": len(self.approvals),
                    "pending": sum(1 for a in self.approvals.values() if a.status == "pending"),
                },
                "subscriptions": len(self.subscriptions),
                "deliveries": len(self.hooks.log_entries()),
                "patchCalls": len(self.patch_log),
            }

    # ==== provided by the other mixins (declared here so each module reads on its own) ===========

    def _progress(self, now: datetime, only: Run | None = None) -> None:
        """Play every transition due by ``now`` (``state.engine.Engine``)."""
        raise NotImplementedError

    def _complete_run(self, run: Run, t: datetime, result: str) -> None:
        """Complete ``run`` and publish its events (``state.engine.Engine``)."""
        raise NotImplementedError

    def _apply_decision(
        self,
        approval: Approval,
        step: ApprovalStep,
        status: str,
        identity: Identity,
        comment: str | None,
        t: datetime,
    ) -> None:
        """Record one approver's decision (``state.approvals.ApprovalState``)."""
        raise NotImplementedError
