"""Runs: queueing (scripted), finding, cancelling and listing them (as runs and as builds), and
the clock that moves them (``advance``, ``tick``, real-time ``set_speed``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime

from ..auth import Identity
from ..errors import bad_request, not_found
from ..model import Decision, Pipeline, Run, RunScript, StageRun
from ..util import fmt_time
from .base import BUILD_NS, PIPELINES_NS, SIMULATOR_IDENTITY, StateBase
from .paging import DEFAULT_PAGE, int_param, keyset_page, time_param

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
BUILD_ORDERS = {
    "finishtimeascending": ("finish_time", False),
    "finishtimedescending": ("finish_time", True),
    "queuetimeascending": ("queue_time", False),
    "queuetimedescending": ("queue_time", True),
    "starttimeascending": ("start_time", False),
    "starttimedescending": ("start_time", True),
}


class RunState(StateBase):
    """Queueing, finding, cancelling and listing runs; moving the clock."""

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
            skip = self._check_stages_to_skip(pipe, tuple(stages_to_skip))
            now = self.clock.now()
            queued = at or now
            if queued > now:
                raise ValueError("a run cannot be queued in the future")
            run_id = self._next_run_id
            self._next_run_id += 1
            day = queued.strftime("%Y%m%d")
            pipe.runs_per_day[day] = pipe.runs_per_day.get(day, 0) + 1
            script = _run_script(
                fail_stage, time_out_stage, decisions, queue_seconds, stage_seconds
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
                template_parameters={**pipe.parameter_defaults, **(template_parameters or {})},
                variables={k: dict(v) for k, v in (variables or {}).items()},
                stages=self._stage_runs(pipe),
                stages_to_skip=skip,
                script=script,
                plan_id=self.ids.guid(),
                timeline_id=self.ids.guid(),
                last_changed=queued,
                trigger_info=dict(trigger_info or {}),
                live=not (quiet or self._quiet),
            )
            self.runs[run_id] = run
            self._active.add(run_id)
            self._log("queued run %s (%s) of pipeline %s %r", run.id, run.name, pipe.id, pipe.name)
            self._play_queued(run, now, quiet)
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

    @staticmethod
    def _check_stages_to_skip(pipe: Pipeline, skip: tuple[str, ...]) -> tuple[str, ...]:
        for key in skip:
            if pipe.stage(key) is None:
                raise bad_request(
                    f"Stage {key} is not found in the pipeline {pipe.name}.",
                    "PipelineValidationException",
                    PIPELINES_NS,
                )
        return skip

    def _stage_runs(self, pipe: Pipeline) -> list[StageRun]:
        """One ``StageRun`` per stage of ``pipe``, with fresh record ids and log ids 10, 11..."""
        return [
            StageRun(
                spec,
                self.ids.guid(),
                self.ids.guid(),
                self.ids.guid(),
                self.ids.guid(),
                10 + i,
            )
            for i, spec in enumerate(pipe.stages)
        ]

    def _play_queued(self, run: Run, now: datetime, quiet: bool) -> None:
        """Play what is due now: only this run, with no events, when seeding quietly."""
        if quiet:
            self._quiet += 1
            try:
                self._progress(now, only=run)
            finally:
                self._quiet -= 1
        else:
            self._progress(now)

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
        wanted = _build_filter(query, attr)
        per_definition = query.get("maxbuildsperdefinition")
        with self.lock:
            self._progress(self.clock.now())
            items = [
                run
                for run in self.runs.values()
                if run.project is proj and wanted(run, self.renderer.build_status(run))
            ]
        if per_definition:
            items = _limit_per_definition(items, attr, descending, per_definition)

        def key(r: Run):
            return [fmt_time(getattr(r, attr)), r.id]

        return keyset_page(
            items,
            key,
            descending,
            int_param(query, "$top"),
            query.get("continuationtoken"),
            DEFAULT_PAGE,
        )


def _run_script(
    fail_stage: str | None,
    time_out_stage: str | None,
    decisions: dict[str, Decision | str] | None,
    queue_seconds: float,
    stage_seconds: dict[str, float] | None,
) -> RunScript:
    """What ``queue_run`` scripts; a decision given as a bare status is taken at once."""
    return RunScript(
        fail_stage=fail_stage,
        time_out_stage=time_out_stage,
        decisions={
            key: (value if isinstance(value, Decision) else Decision(0, value))
            for key, value in (decisions or {}).items()
        },
        queue_seconds=queue_seconds,
        stage_seconds=dict(stage_seconds or {}),
    )


def _build_filter(query: dict[str, str], attr: str) -> Callable[[Run, str], bool]:
    """The filters of ``GET _apis/build/builds`` read from ``query`` (bad values are refused
    here, before anything is listed), as a test of one run and its build status."""

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
    results = {x.strip().lower() for x in (query.get("resultfilter") or "").split(",") if x.strip()}
    reasons = {x.strip().lower() for x in (query.get("reasonfilter") or "").split(",") if x.strip()}
    branch = query.get("branchname")
    requested_for = (query.get("requestedfor") or "").lower()
    min_time = time_param(query, "mintime")
    max_time = time_param(query, "maxtime")

    def wanted(run: Run, build_status: str) -> bool:
        if definitions is not None and run.pipeline.id not in definitions:
            return False
        if build_ids is not None and run.id not in build_ids:
            return False
        if status and status not in ("all", "none") and status != build_status.lower():
            return False
        if results and "none" not in results and (run.result or "").lower() not in results:
            return False
        if reasons and "all" not in reasons and run.reason.lower() not in reasons:
            return False
        if branch and run.source_branch != branch:
            return False
        if requested_for and requested_for not in (
            run.requested_for.id.lower(),
            run.requested_for.unique_name.lower(),
        ):
            return False
        when = getattr(run, attr)
        if when is None:
            return False  # a finish-time (start-time) query skips unfinished (unstarted) builds
        if min_time and when < min_time:
            return False
        return not (max_time and when > max_time)

    return wanted


def _limit_per_definition(
    items: list[Run], attr: str, descending: bool, per_definition: str
) -> list[Run]:
    """``maxBuildsPerDefinition``: the first builds of each pipeline in the query's order."""
    items.sort(key=lambda r: (getattr(r, attr), r.id), reverse=descending)
    kept: dict[int, int] = {}
    limited = []
    for run in items:
        kept[run.pipeline.id] = kept.get(run.pipeline.id, 0) + 1
        if kept[run.pipeline.id] <= int(per_definition):
            limited.append(run)
    return limited
