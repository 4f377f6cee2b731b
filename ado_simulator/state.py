"""The simulator's state and engine, with no HTTP in it: the Python scripting API.

Runs move through their stages on the simulated clock. A stage with an approval check pauses at
a checkpoint; approving moves it on, rejecting fails the stage and the run, and a check that is
not decided within its timeout times out (the approval becomes ``timedOut``, the stage is
skipped and the run fails). Every transition happens at its own simulated time, in time order
across runs, and publishes the service-hook events ADO would.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from .auth import Identity
from .clock import SimClock
from .errors import ApiError, bad_request, not_found
from .events import (
    APPROVAL_COMPLETED,
    APPROVAL_PENDING,
    BUILD_COMPLETE,
    EVENT_TYPES,
    EventPublisher,
)
from .hooks import Delivery, HookDispatcher
from .model import (
    PIPELINE_KINDS,
    Approval,
    ApprovalStep,
    Decision,
    Pipeline,
    Project,
    Run,
    RunScript,
    StageRun,
    StageSpec,
    Subscription,
    default_stages,
    stage_seconds,
)
from .render import Renderer
from .util import IdSource, decode_token, encode_token, fmt_time, log, parse_time, stable_guid

BUILD_REASONS = (
    "manual",
    "individualCI",
    "batchedCI",
    "schedule",
    "scheduleForced",
    "userCreated",
    "pullRequest",
    "buildCompletion",
    "resourceTrigger",
    "triggered",
)
APPROVAL_STATUSES = (
    "undefined",
    "uninitiated",
    "pending",
    "approved",
    "rejected",
    "skipped",
    "canceled",
    "timedOut",
    "failed",
    "completed",
    "all",
)
BUILD_ORDERS = {
    "finishtimeascending": ("finish_time", False),
    "finishtimedescending": ("finish_time", True),
    "queuetimeascending": ("queue_time", False),
    "queuetimedescending": ("queue_time", True),
    "starttimeascending": ("start_time", False),
    "starttimedescending": ("start_time", True),
}
DEFAULT_PAGE = 1000
PIPELINES_NS = "Microsoft.Azure.Pipelines.WebApi"
BUILD_NS = "Microsoft.TeamFoundation.Build.WebApi"
APPROVAL_NS = "Microsoft.Azure.Pipelines.Approval.WebApi"
SIMULATOR_IDENTITY = Identity(stable_guid("system", "simulator"), "ADO simulator", "ado-simulator")


class SimulatorState(EventPublisher):
    """Everything the simulator knows, and the Python API to script it.

    All public methods are thread-safe (one re-entrant lock); the HTTP server calls the same
    methods as tests do.
    """

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
        self.hooks = HookDispatcher(
            retry_delay=hook_retry_delay, timeout=hook_timeout, auto_probation=auto_probation
        )
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

    # ==== pipelines ==============================================================================

    def create_pipeline(
        self,
        name: str,
        kind: str = "ci",
        *,
        folder: str | None = None,
        model: str | None = None,
        project: str | Project | None = None,
        stages: list[StageSpec] | None = None,
        stage_seconds: float | dict[str, float] | None = None,
        approvers: dict[str, list[Identity | str]] | None = None,
        approval_timeout_minutes: float | None = None,
        min_required_approvers: int | None = None,
        execution_order: str | None = None,
        blocked_approvers: dict[str, list[Identity | str]] | None = None,
        parameters: Iterable[str] | None = None,
        pipeline_id: int | None = None,
        repository: str | None = None,
    ) -> Pipeline:
        """Create a pipeline of ``kind`` (ci, data-cleansing, training, scoring, release).

        ``model`` is simulator metadata (ADO has no such field; the portal links pipelines to
        models by configuration or convention); ``folder`` defaults to ``\\<model>``.
        ``stage_seconds`` sets the simulated time of every stage (a number) or of some (a dict
        keyed by stage identifier or name); ``approvers`` replaces the approvers of approval
        stages (``{"Deploy_QA": ["alice@example.com"]}``); ``blocked_approvers`` lists, per
        stage, identities shown as not allowed to approve (not enforced).
        """
        if kind not in PIPELINE_KINDS:
            raise ValueError(f"unknown pipeline kind {kind!r}; one of {', '.join(PIPELINE_KINDS)}")
        with self.lock:
            proj = self.project(project)
            specs = list(stages) if stages is not None else default_stages(kind, proj.name)
            specs = [
                _tune_stage(
                    spec,
                    stage_seconds,
                    approvers,
                    approval_timeout_minutes,
                    min_required_approvers,
                    execution_order,
                    blocked_approvers,
                )
                for spec in specs
            ]
            if pipeline_id is None:
                pipeline_id = self._next_pipeline_id
            if pipeline_id in self.pipelines:
                raise ValueError(f"pipeline id {pipeline_id} exists")
            self._next_pipeline_id = max(self._next_pipeline_id, pipeline_id + 1)
            repo = repository or (model or name)
            pipeline = Pipeline(
                id=pipeline_id,
                project=proj,
                name=name,
                folder=_folder(folder if folder is not None else (f"\\{model}" if model else "\\")),
                kind=kind,
                model=model,
                stages=specs,
                repository_id=stable_guid("repo", proj.id, repo),
                repository_name=repo,
                parameters=tuple(parameters) if parameters is not None else None,
            )
            self.pipelines[pipeline_id] = pipeline
            self._log("created %s pipeline %s %r in %s", kind, pipeline_id, name, proj.name)
            return pipeline

    def pipeline(self, pipeline: int | Pipeline, project: str | Project | None = None) -> Pipeline:
        if isinstance(pipeline, Pipeline):
            return pipeline
        with self.lock:
            found = self.pipelines.get(int(pipeline))
            if found is None or (
                project is not None and found.project is not self.project(project)
            ):
                raise not_found(
                    f"Pipeline with id {pipeline} does not exist or you do not have permissions "
                    "to access it.",
                    "PipelineNotFoundException",
                    PIPELINES_NS,
                )
            return found

    # ==== runs ===================================================================================

    def queue_run(
        self,
        pipeline: int | Pipeline,
        *,
        template_parameters: dict | None = None,
        variables: dict | None = None,
        branch: str | None = None,
        commit: str | None = None,
        reason: str = "manual",
        requested_for: Identity | str | None = None,
        stages_to_skip: Iterable[str] = (),
        fail_stage: str | None = None,
        time_out_stage: str | None = None,
        decisions: dict[str, Decision | str] | None = None,
        stage_seconds: dict[str, float] | None = None,
        queue_seconds: float = 0.0,
        at: datetime | None = None,
        quiet: bool = False,
        trigger_info: dict | None = None,
    ) -> Run:
        """Queue a run. Script it with ``fail_stage`` (that stage's job fails),
        ``time_out_stage`` (that stage's approval times out as soon as it opens) and
        ``decisions`` (``{"Deploy_QA": Decision(600, "approved", alice)}``, or just
        ``"approved"`` / ``"rejected"`` to decide at once).

        ``at`` queues it at an earlier simulated time (history); ``quiet`` publishes no hook
        events for it (seeding history).
        """
        if reason not in BUILD_REASONS:
            raise ValueError(f"unknown build reason {reason!r}; one of {', '.join(BUILD_REASONS)}")
        if isinstance(requested_for, str):
            requested_for = Identity.user(requested_for)
        with self.lock:
            pipe = self.pipeline(pipeline)
            self._check_parameters(pipe, template_parameters or {})
            skip = tuple(stages_to_skip)
            for key in skip:
                if pipe.stage(key) is None:
                    raise bad_request(
                        f"Stage {key} is not found in the pipeline {pipe.name}.",
                        "PipelineValidationException",
                        PIPELINES_NS,
                    )
            now = self.clock.now()
            queued = at or now
            if queued > now:
                raise ValueError("a run cannot be queued in the future")
            run_id = self._next_run_id
            self._next_run_id += 1
            day = queued.strftime("%Y%m%d")
            pipe.runs_per_day[day] = pipe.runs_per_day.get(day, 0) + 1
            script = RunScript(
                fail_stage=fail_stage,
                time_out_stage=time_out_stage,
                decisions={
                    key: (value if isinstance(value, Decision) else Decision(0, value))
                    for key, value in (decisions or {}).items()
                },
                queue_seconds=queue_seconds,
                stage_seconds=dict(stage_seconds or {}),
            )
            who = requested_for or next(iter(self.pats.values()), SIMULATOR_IDENTITY)
            run = Run(
                id=run_id,
                pipeline=pipe,
                name=f"{day}.{pipe.runs_per_day[day]}",
                queue_time=queued,
                reason=reason,
                requested_for=who,
                requested_by=who,
                source_branch=branch or pipe.default_branch,
                source_version=commit or self.ids.hex(40),
                template_parameters=dict(template_parameters or {}),
                variables={k: dict(v) for k, v in (variables or {}).items()},
                stages=[
                    StageRun(
                        spec,
                        self.ids.guid(),
                        self.ids.guid(),
                        self.ids.guid(),
                        self.ids.guid(),
                        10 + i,
                    )
                    for i, spec in enumerate(pipe.stages)
                ],
                stages_to_skip=skip,
                script=script,
                plan_id=self.ids.guid(),
                timeline_id=self.ids.guid(),
                last_changed=queued,
                trigger_info=dict(trigger_info or {}),
            )
            self.runs[run_id] = run
            self._active.add(run_id)
            self._log("queued run %s (%s) of pipeline %s %r", run.id, run.name, pipe.id, pipe.name)
            if quiet:
                self._quiet += 1
                try:
                    self._progress(now, only=run)
                finally:
                    self._quiet -= 1
            else:
                self._progress(now)
            return run

    def _check_parameters(self, pipe: Pipeline, parameters: dict) -> None:
        if pipe.parameters is None:
            return
        unknown = [k for k in parameters if k not in pipe.parameters]
        if unknown:
            raise bad_request(
                f"Unexpected parameter '{unknown[0]}'",
                "PipelineValidationException",
                PIPELINES_NS,
            )

    def run(self, run_id: int, pipeline: int | None = None) -> Run:
        with self.lock:
            run = self.runs.get(int(run_id))
            if run is None or (pipeline is not None and run.pipeline.id != int(pipeline)):
                if pipeline is None:
                    raise not_found(
                        f"The requested build {run_id} could not be found.",
                        "BuildNotFoundException",
                        BUILD_NS,
                    )
                raise not_found(
                    f"Run with id {run_id} for pipeline {pipeline} does not exist.",
                    "PipelineRunNotFoundException",
                    PIPELINES_NS,
                )
            return run

    def cancel_run(self, run_id: int) -> Run:
        with self.lock:
            run = self.run(run_id)
            if run.state == "completed":
                return run
            t = self.clock.now()
            for stage in run.stages:
                if stage.state == "completed":
                    continue
                if stage.approval is not None and stage.approval.status == "pending":
                    stage.approval.status = "canceled"
                    stage.approval.last_modified_on = t
                    stage.checkpoint_finish = t
                started = stage.state in ("waiting", "running")
                stage.state, stage.result = "completed", "canceled" if started else "skipped"
                stage.event_result = stage.result
                stage.finish_time = t if started else None
                stage.last_modified = t
            self._complete_run(run, t, "canceled")
            return run

    @contextlib.contextmanager
    def quietly(self):
        """Publish no service-hook events inside the block (seeding history)."""
        with self.lock:
            self._quiet += 1
            try:
                yield self
            finally:
                self._quiet -= 1

    def advance_to(self, when: datetime) -> datetime:
        """Advance the clock to ``when`` (no-op if it is already later)."""
        with self.lock:
            delta = (when - self.clock.now()).total_seconds()
            return self.advance(delta) if delta > 0 else self.clock.now()

    # ==== clock ==================================================================================

    def advance(self, seconds: float) -> datetime:
        """Move the simulated clock and play every transition due by then, in time order."""
        with self.lock:
            now = self.clock.advance(seconds)
            self._progress(now)
            return now

    def tick(self) -> None:
        """Play the transitions due by the clock's current time (real-time mode calls it)."""
        with self.lock:
            self._progress(self.clock.now())

    def set_speed(self, speed: float) -> None:
        with self.lock:
            self._progress(self.clock.now())
            self.clock.set_speed(speed)

    # ==== approvals ==============================================================================

    def approval(self, approval_id: str) -> Approval:
        with self.lock:
            found = self.approvals.get(str(approval_id).lower())
            if found is None:
                raise not_found(
                    f"Approval with id {approval_id} does not exist.",
                    "ApprovalNotFoundException",
                    APPROVAL_NS,
                )
            return found

    def pending_approvals(self, run: Run | int | None = None) -> list[Approval]:
        with self.lock:
            self._progress(self.clock.now())
            run_id = run.id if isinstance(run, Run) else run
            return [
                a
                for a in self.approvals.values()
                if a.status == "pending" and (run_id is None or a.run.id == run_id)
            ]

    def decide(
        self,
        approval_id: str,
        status: str,
        identity: Identity | str | None = None,
        comment: str = "",
    ) -> Approval:
        """Approve or reject as ``identity`` (what a PATCH does)."""
        if isinstance(identity, str):
            identity = Identity.user(identity)
        return self.update_approvals(
            [{"approvalId": approval_id, "status": status, "comment": comment}],
            identity or SIMULATOR_IDENTITY,
        )[0]

    def update_approvals(
        self, updates: list, identity: Identity, project: str | Project | None = None
    ) -> list[Approval]:
        """Apply a PATCH body (a list of ``{approvalId, status, comment}``); all or nothing."""
        if not isinstance(updates, list) or not updates:
            raise bad_request(
                "Value cannot be null. Parameter name: updateParameters", "ArgumentNullException"
            )
        with self.lock:
            now = self.clock.now()
            self._progress(now)
            planned = []
            for item in updates:
                if not isinstance(item, dict) or not item.get("approvalId"):
                    raise bad_request(
                        "Value cannot be null. Parameter name: approvalId", "ArgumentNullException"
                    )
                approval = self.approval(item["approvalId"])
                if project is not None and approval.run.project is not self.project(project):
                    self.approval("00000000-0000-0000-0000-000000000000")  # not in this project
                status = str(item.get("status", ""))
                if status not in ("approved", "rejected"):
                    raise bad_request(
                        f"The status '{status}' is not valid for an approval update; use "
                        "'approved' or 'rejected'.",
                        "InvalidApprovalStatusException",
                        APPROVAL_NS,
                    )
                if approval.status != "pending":
                    raise ApiError(
                        400,
                        f"Approval {approval.id} cannot be updated: it is already "
                        f"'{approval.status}'.",
                        "ApprovalAlreadyCompletedException",
                        f"{APPROVAL_NS}.ApprovalAlreadyCompletedException, {APPROVAL_NS}",
                    )
                step = _step_for(approval, identity)
                if step is None:
                    raise ApiError(
                        400,
                        f"Approval {approval.id} has no step {identity.display_name} can act on.",
                        "ApprovalStepNotActionableException",
                        f"{APPROVAL_NS}.ApprovalStepNotActionableException, {APPROVAL_NS}",
                    )
                planned.append((approval, step, status, item.get("comment")))
            for approval, step, status, comment in planned:
                self._apply_decision(approval, step, status, identity, comment, now)
            self._progress(now)
            return [a for a, *_ in planned]

    def _apply_decision(
        self,
        approval: Approval,
        step: ApprovalStep,
        status: str,
        identity: Identity,
        comment: str | None,
        t: datetime,
    ) -> None:
        step.status = status
        step.actual = identity
        step.comment = comment if comment is not None else ""
        step.last_modified_on = t
        step.last_modified_by = identity
        approval.last_modified_on = t
        if status == "rejected":
            approval.status = "rejected"
        else:
            needed = approval.min_required_approvers or len(approval.steps)
            if sum(1 for s in approval.steps if s.status == "approved") >= needed:
                approval.status = "approved"
            elif approval.execution_order == "inSequence":
                nxt = next((s for s in approval.steps if s.status == "uninitiated"), None)
                if nxt is not None:
                    nxt.status = "pending"
                    nxt.initiated_on = t
        approval.stage.last_modified = t
        approval.run.touch(t)
        self._log(
            "approval %s (run %s stage %s): %s by %s",
            approval.id,
            approval.run.id,
            approval.stage.name,
            status,
            identity.unique_name,
        )
        if approval.status != "pending":
            approval.decided_at = t
            self._emit_approval(approval, APPROVAL_COMPLETED, t)

    # ==== engine =================================================================================

    def _progress(self, now: datetime, only: Run | None = None) -> None:
        """Play every transition due by ``now``, earliest first."""
        for _ in range(1_000_000):
            best: tuple[datetime, int, Run] | None = None
            candidates = [only] if only is not None else [self.runs[i] for i in self._active]
            for run in candidates:
                if run.state == "completed":
                    continue
                due = self._due(run)
                if due is not None and due <= now and (best is None or (due, run.id) < best[:2]):
                    best = (due, run.id, run)
            if best is None:
                return
            self._step(best[2], best[0])

    def _due(self, run: Run) -> datetime | None:
        if run.state == "notStarted":
            return run.queue_time + timedelta(seconds=run.script.queue_seconds)
        stage = run.current_stage()
        if stage is None:
            return max((s.finish_time for s in run.stages if s.finish_time), default=run.start_time)
        if stage.state == "pending":
            return run.ready_time(stage)
        if stage.state == "waiting":
            approval = stage.approval
            if approval is None:
                return None
            if approval.status != "pending":
                return approval.decided_at
            times = [approval.expires_at]
            decision = run.script.decision_for(stage)
            if decision is not None:
                times.append(approval.created_on + timedelta(seconds=decision.seconds))
            return min(times)
        if stage.state == "running":
            return (stage.job_start or run.ready_time(stage)) + stage_seconds(run.script, stage)
        return None

    def _step(self, run: Run, t: datetime) -> None:
        if run.state == "notStarted":
            run.state = "inProgress"
            run.start_time = t
            run.touch(t)
            self._emit_run(run, t)
            return
        stage = run.current_stage()
        if stage is None:  # every stage was skipped
            self._complete_run(run, t, _run_result(run))
            return
        if stage.state == "pending":
            if any(
                key.lower() in (stage.identifier.lower(), stage.name.lower())
                for key in run.stages_to_skip
            ):
                self._finish_stage(run, stage, t, "skipped", event=False, started=False)
            elif stage.spec.has_approval:
                self._open_checkpoint(run, stage, t)
            else:
                self._start_job(run, stage, t)
            return
        if stage.state == "waiting":
            approval = stage.approval
            if approval is None:
                return
            if approval.status == "pending":
                decision = run.script.decision_for(stage)
                if decision is not None:
                    decided_at = approval.created_on + timedelta(seconds=decision.seconds)
                    if decided_at < approval.expires_at:
                        run.script.decisions = {
                            k: v for k, v in run.script.decisions.items() if v is not decision
                        }
                        who = decision.identity or SIMULATOR_IDENTITY
                        step = _step_for(approval, who)
                        if step is not None:
                            self._apply_decision(
                                approval, step, decision.status, who, decision.comment, t
                            )
                        return
                approval.status = "timedOut"
                approval.last_modified_on = t
                approval.decided_at = t
                run.touch(t)
                self._log(
                    "approval %s (run %s stage %s) timed out", approval.id, run.id, stage.name
                )
                self._emit_approval(approval, APPROVAL_COMPLETED, t)
                stage.checkpoint_finish = t
                self._end_stage(run, stage, t, "skipped", fail_run=True)
                return
            stage.checkpoint_finish = approval.decided_at
            if approval.status == "approved":
                self._start_job(run, stage, t)
            else:
                self._end_stage(run, stage, t, "failed", event_result="rejected", fail_run=True)
            return
        if stage.state == "running":
            failed = run.script.matches(run.script.fail_stage, stage)
            self._end_stage(run, stage, t, "failed" if failed else "succeeded", fail_run=failed)

    def _open_checkpoint(self, run: Run, stage: StageRun, t: datetime) -> None:
        spec = stage.spec
        timeout = timedelta(minutes=spec.timeout_minutes)
        if run.script.matches(run.script.time_out_stage, stage):
            timeout = timedelta(0)
        steps = [
            ApprovalStep(
                assigned=who,
                order=i + 1,
                status="pending" if spec.execution_order == "anyOrder" or i == 0 else "uninitiated",
                initiated_on=t,
            )
            for i, who in enumerate(spec.approvers)
        ]
        approval = Approval(
            id=self.ids.guid(),
            run=run,
            stage=stage,
            status="pending",
            created_on=t,
            last_modified_on=t,
            expires_at=t + timeout,
            steps=steps,
            min_required_approvers=spec.min_required_approvers,
            execution_order=spec.execution_order,
            instructions=spec.instructions,
            blocked_approvers=spec.blocked_approvers,
        )
        self.approvals[approval.id] = approval
        stage.approval = approval
        stage.state = "waiting"
        stage.start_time = t
        stage.checkpoint_start = t
        stage.last_modified = t
        run.touch(t)
        self._log("run %s stage %s waits for approval %s", run.id, stage.name, approval.id)
        self._emit_stage(run, stage, t)
        self._emit_approval(approval, APPROVAL_PENDING, t)

    def _start_job(self, run: Run, stage: StageRun, t: datetime) -> None:
        stage.state = "running"
        if stage.start_time is None:
            stage.start_time = t
        stage.job_start = t
        stage.last_modified = t
        run.touch(t)
        self._emit_stage(run, stage, t)

    def _finish_stage(
        self,
        run: Run,
        stage: StageRun,
        t: datetime,
        result: str,
        *,
        event_result: str | None = None,
        event: bool = True,
        started: bool = True,
    ) -> None:
        stage.state = "completed"
        stage.result = result
        stage.event_result = event_result or result
        if started:
            stage.finish_time = t
        stage.last_modified = t
        run.touch(t)
        if event:
            self._emit_stage(run, stage, t)

    def _end_stage(
        self,
        run: Run,
        stage: StageRun,
        t: datetime,
        result: str,
        *,
        event_result: str | None = None,
        fail_run: bool = False,
    ) -> None:
        """Complete a stage; if it was the last to run, complete the run in the same moment,
        so the stage event already shows the run completed (as the ADO docs sample does)."""
        self._finish_stage(run, stage, t, result, event_result=event_result, event=False)
        if fail_run:
            self._skip_rest(run, t)
        if run.current_stage() is not None:
            self._emit_stage(run, stage, t)
            return
        self._close_run(run, t, _run_result(run))
        self._emit_stage(run, stage, t)
        self._announce_run(run, t)

    def _skip_rest(self, run: Run, t: datetime) -> None:
        for stage in run.stages:
            if stage.state == "pending":
                self._finish_stage(run, stage, t, "skipped", event=False, started=False)

    def _complete_run(self, run: Run, t: datetime, result: str) -> None:
        self._close_run(run, t, result)
        self._announce_run(run, t)

    def _close_run(self, run: Run, t: datetime, result: str) -> None:
        run.state = "completed"
        run.result = result
        run.finish_time = t
        if run.start_time is None:
            run.start_time = t
        run.touch(t)
        self._active.discard(run.id)

    def _announce_run(self, run: Run, t: datetime) -> None:
        self._log(
            "run %s (%s) of pipeline %r completed: %s",
            run.id,
            run.name,
            run.pipeline.name,
            run.result,
        )
        self._emit_run(run, t)
        self._emit_build_complete(run, t)

    # ==== service-hook events ====================================================================

    def add_subscription(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        event_types: Iterable[str] | None = None,
        headers: dict[str, str] | None = None,
        publisher_inputs: dict[str, str] | None = None,
        resource_version: str | None = None,
        approval_event_detail: str = "sparse",
        consumer_inputs: dict[str, str] | None = None,
        created_by: Identity | None = None,
    ) -> Subscription:
        """Deliver events (default: all five) to ``url`` with basic auth ``username:password``.

        ``approval_event_detail="sparse"`` sends approval events as the ADO docs sample shows
        them (``run``, ``stage``, ``pipeline`` null); ``"full"`` fills them in.
        """
        types = tuple(event_types or EVENT_TYPES)
        unknown = [t for t in types if t not in EVENT_TYPES and t != "*"]
        if unknown:
            raise ValueError(f"unknown event type {unknown[0]!r}; one of {', '.join(EVENT_TYPES)}")
        if approval_event_detail not in ("sparse", "full"):
            raise ValueError("approval_event_detail is 'sparse' or 'full'")
        with self.lock:
            sub = Subscription(
                id=self.ids.guid(),
                event_types=types,
                url=url,
                username=username,
                password=password,
                headers=dict(headers or {}),
                publisher_inputs=dict(publisher_inputs or {}),
                resource_version=resource_version,
                created_by=created_by or SIMULATOR_IDENTITY,
                created_date=self.clock.now(),
                approval_event_detail=approval_event_detail,
                consumer_inputs=dict(consumer_inputs or {}),
                publisher_id="tfs" if types == (BUILD_COMPLETE,) else "pipelines",
            )
            self.subscriptions[sub.id] = sub
            log("subscription %s: %s to %s", sub.id, ", ".join(types), url)
            return sub

    def subscription(self, subscription_id: str) -> Subscription:
        with self.lock:
            found = self.subscriptions.get(str(subscription_id).lower())
            if found is None:
                raise not_found(
                    f"Subscription {subscription_id} does not exist.",
                    "SubscriptionNotFoundException",
                    "Microsoft.VisualStudio.Services.ServiceHooks.WebApi",
                )
            return found

    def remove_subscription(self, subscription_id: str) -> None:
        with self.lock:
            self.subscriptions.pop(self.subscription(subscription_id).id, None)

    def set_probation(self, subscription_id: str, on: bool = True) -> Subscription:
        """Put a subscription on probation (its new events are dropped) or back to enabled."""
        with self.lock:
            sub = self.subscription(subscription_id)
            sub.status = "onProbation" if on else "enabled"
            log("subscription %s is %s", sub.id, sub.status)
            return sub

    def deliveries(self, event_type: str | None = None) -> list[Delivery]:
        return [d for d in self.hooks.log_entries() if event_type in (None, d.event_type)]

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        return self.hooks.wait(timeout)

    def redeliver(self, notification_id: int) -> Delivery:
        for delivery in reversed(self.hooks.log_entries()):
            if delivery.notification_id == int(notification_id):
                return self.hooks.redeliver(delivery)
        raise KeyError(notification_id)

    # ==== queries (what the REST endpoints return) ===============================================

    def list_pipelines(
        self, project: str, *, top: int | None, token: str | None, order_by: str | None
    ) -> tuple[list[Pipeline], str | None]:
        proj = self.project(project)
        field_name, _, direction = (order_by or "name asc").strip().partition(" ")
        field_name = field_name.lower()
        if field_name not in ("name", "id"):
            raise bad_request(f"The orderBy field '{field_name}' is not supported.")
        descending = direction.strip().lower() == "desc"

        def key(p: Pipeline):
            return [p.name.lower(), p.id] if field_name == "name" else [p.id, p.id]

        with self.lock:
            items = [p for p in self.pipelines.values() if p.project is proj]
        return _page(items, key, descending, top, token, DEFAULT_PAGE)

    def list_runs(self, project: str, pipeline_id: int) -> list[Run]:
        with self.lock:
            self._progress(self.clock.now())
            pipe = self.pipeline(pipeline_id, project)
            runs = [r for r in self.runs.values() if r.pipeline is pipe]
        return sorted(runs, key=lambda r: r.id, reverse=True)[:10000]

    def list_builds(self, project: str, query: dict[str, str]) -> tuple[list[Run], str | None]:
        proj = self.project(project)
        order = (query.get("queryorder") or "queueTimeDescending").lower()
        if order not in BUILD_ORDERS:
            raise bad_request(f"The queryOrder '{query.get('queryorder')}' is not valid.")
        attr, descending = BUILD_ORDERS[order]

        def ints(name: str) -> set[int] | None:
            raw = query.get(name)
            if not raw:
                return None
            try:
                return {int(x) for x in raw.split(",") if x.strip()}
            except ValueError as exc:
                raise bad_request(f"The value of '{name}' must be a list of integers.") from exc

        definitions, build_ids = ints("definitions"), ints("buildids")
        status = (query.get("statusfilter") or "").lower()
        results = {
            x.strip().lower() for x in (query.get("resultfilter") or "").split(",") if x.strip()
        }
        reasons = {
            x.strip().lower() for x in (query.get("reasonfilter") or "").split(",") if x.strip()
        }
        branch = query.get("branchname")
        requested_for = (query.get("requestedfor") or "").lower()
        min_time = _time_param(query, "mintime")
        max_time = _time_param(query, "maxtime")
        per_definition = query.get("maxbuildsperdefinition")
        with self.lock:
            self._progress(self.clock.now())
            items = []
            for run in self.runs.values():
                if run.project is not proj:
                    continue
                if definitions is not None and run.pipeline.id not in definitions:
                    continue
                if build_ids is not None and run.id not in build_ids:
                    continue
                build_status = self.renderer.build_status(run)
                if status and status not in ("all", "none") and status != build_status.lower():
                    continue
                if results and "none" not in results and (run.result or "").lower() not in results:
                    continue
                if reasons and "all" not in reasons and run.reason.lower() not in reasons:
                    continue
                if branch and run.source_branch != branch:
                    continue
                if requested_for and requested_for not in (
                    run.requested_for.id.lower(),
                    run.requested_for.unique_name.lower(),
                ):
                    continue
                when = getattr(run, attr)
                if when is None:
                    continue  # a finish-time (start-time) query skips unfinished (unstarted) builds
                if min_time and when < min_time:
                    continue
                if max_time and when > max_time:
                    continue
                items.append(run)
        if per_definition:
            items.sort(key=lambda r: (getattr(r, attr), r.id), reverse=descending)
            kept: dict[int, int] = {}
            limited = []
            for run in items:
                kept[run.pipeline.id] = kept.get(run.pipeline.id, 0) + 1
                if kept[run.pipeline.id] <= int(per_definition):
                    limited.append(run)
            items = limited

        def key(r: Run):
            return [fmt_time(getattr(r, attr)), r.id]

        return _page(
            items,
            key,
            descending,
            _int_param(query, "$top"),
            query.get("continuationtoken"),
            DEFAULT_PAGE,
        )

    def list_approvals(
        self, project: str, query: dict[str, str]
    ) -> tuple[list[Approval], str | None]:
        proj = self.project(project)
        state = query.get("state")
        if state and state not in APPROVAL_STATUSES:
            raise bad_request(f"The state '{state}' is not a valid ApprovalStatus.")
        ids = {x.strip().lower() for x in (query.get("approvalids") or "").split(",") if x.strip()}
        users = {
            x.strip().lower()
            for x in (query.get("userids") or query.get("assignedto") or "").split(",")
            if x.strip()
        }
        with self.lock:
            self._progress(self.clock.now())
            items = []
            for approval in self.approvals.values():
                if approval.run.project is not proj:
                    continue
                if state and state != "all" and approval.status != state:
                    continue
                if ids and approval.id.lower() not in ids:
                    continue
                if users and not any(
                    users
                    & {
                        s.assigned.id.lower(),
                        s.assigned.unique_name.lower(),
                        s.assigned.descriptor.lower(),
                    }
                    for s in approval.steps
                ):
                    continue
                items.append(approval)

        def key(a: Approval):
            return [fmt_time(a.created_on), a.id]

        return _page(
            items, key, True, _int_param(query, "top"), query.get("continuationtoken"), None
        )

    # ==== reset ==================================================================================

    def reset(self) -> None:
        """Forget pipelines, runs, approvals, subscriptions and logs (projects and PATs stay)."""
        with self.lock:
            self.pipelines.clear()
            self.runs.clear()
            self.approvals.clear()
            self.subscriptions.clear()
            self.patch_log.clear()
            self.hooks.clear_log()
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


# ==== helpers ====================================================================================


def _folder(folder: str) -> str:
    folder = folder.replace("/", "\\")
    if not folder.startswith("\\"):
        folder = "\\" + folder
    return folder.rstrip("\\") or "\\"


def _tune_stage(
    spec: StageSpec,
    seconds: float | dict[str, float] | None,
    approvers: dict[str, list[Identity | str]] | None,
    timeout_minutes: float | None,
    min_required: int | None,
    execution_order: str | None,
    blocked: dict[str, list[Identity | str]] | None = None,
) -> StageSpec:
    keys = (spec.identifier.lower(), spec.name.lower())
    if isinstance(seconds, int | float):
        spec = replace(spec, seconds=float(seconds))
    elif isinstance(seconds, dict):
        for key, value in seconds.items():
            if key.lower() in keys:
                spec = replace(spec, seconds=float(value))
    for key, people in (approvers or {}).items():
        if key.lower() in keys:
            spec = replace(
                spec,
                approvers=tuple(Identity.user(p) if isinstance(p, str) else p for p in people),
            )
    for key, people in (blocked or {}).items():
        if key.lower() in keys:
            spec = replace(
                spec,
                blocked_approvers=tuple(
                    Identity.user(p) if isinstance(p, str) else p for p in people
                ),
            )
    if spec.has_approval:
        if timeout_minutes is not None:
            spec = replace(spec, timeout_minutes=float(timeout_minutes))
        if min_required is not None:
            spec = replace(spec, min_required_approvers=int(min_required))
        if execution_order is not None:
            spec = replace(spec, execution_order=execution_order)
    return spec


def _run_result(run: Run) -> str:
    failed = any(s.result == "failed" for s in run.stages) or any(
        s.approval is not None and s.approval.status in ("rejected", "timedOut") for s in run.stages
    )
    return "failed" if failed else "succeeded"


def _step_for(approval: Approval, identity: Identity) -> ApprovalStep | None:
    """The step a caller acts on: the one assigned to them, else the first actionable one.

    The simulator does not know group membership, so anyone may act on a group's step
    (approver permissions are not simulated); a caller acts at most once per approval.
    """
    if any(s.actual is not None and s.actual.id == identity.id for s in approval.steps):
        return None
    pending = [s for s in approval.steps if s.status == "pending"]
    for step in pending:
        if (
            step.assigned.id == identity.id
            or step.assigned.unique_name.lower() == identity.unique_name.lower()
        ):
            return step
    return pending[0] if pending else None


def _int_param(query: dict[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise bad_request(f"The value '{raw}' of '{name}' is not a valid integer.") from exc
    if value < 0:
        raise bad_request(f"The value of '{name}' must not be negative.")
    return value


def _time_param(query: dict[str, str], name: str) -> datetime | None:
    raw = query.get(name)
    if not raw:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise bad_request(f"The value '{raw}' of '{name}' is not a valid date-time.") from exc


def _page(
    items, key, descending: bool, top: int | None, token: str | None, default_top: int | None
):
    """Keyset paging: sort by ``key``, start after the token's key, return ``top`` items and
    the token of the next page (None when this is the last page)."""
    items = sorted(items, key=key, reverse=descending)
    if token:
        try:
            after = decode_token(token)
        except ValueError as exc:
            raise bad_request(
                f"The continuation token '{token}' is not valid.",
                "InvalidContinuationTokenException",
            ) from exc
        if not isinstance(after, list):
            raise bad_request(
                f"The continuation token '{token}' is not valid.",
                "InvalidContinuationTokenException",
            )
        try:
            items = [i for i in items if (key(i) < after if descending else key(i) > after)]
        except TypeError as exc:
            raise bad_request(
                f"The continuation token '{token}' is not valid.",
                "InvalidContinuationTokenException",
            ) from exc
    limit = top or default_top
    if limit is None or len(items) <= limit:
        return items, None
    page = items[:limit]
    return page, encode_token(key(items[limit - 1]))
