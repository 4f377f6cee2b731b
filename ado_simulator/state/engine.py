"""The engine: runs move through their stages on the simulated clock.

A stage on an environment with a REST check (``checks``) first waits for the check's callback;
a stage with an approval check pauses at a checkpoint; approving moves it on, rejecting fails
the stage and the run, and a check that is not decided within its timeout times out (the
approval becomes ``timedOut``, the stage is skipped and the run fails). Every transition happens
at its own simulated time, in time order across runs, and publishes the service-hook events ADO
would.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..events import APPROVAL_COMPLETED, APPROVAL_PENDING
from ..mlflow_sink import registration_for
from ..model import Approval, ApprovalStep, Run, StageRun, stage_seconds
from .approvals import step_for
from .base import SIMULATOR_IDENTITY
from .checks import CheckState


class Engine(CheckState):
    """Plays the transitions due by a time, earliest first, and publishes their events."""

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
            if stage.check is not None and stage.approval is None:
                return self._check_due(stage)
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
        """Play the one transition of ``run`` due at ``t``."""
        if run.state == "notStarted":
            run.state = "inProgress"
            run.start_time = t
            run.touch(t)
            self._emit_run(run, t)
            return
        stage = run.current_stage()
        if stage is None:  # every stage was skipped
            self._complete_run(run, t, _run_result(run))
        elif stage.state == "pending":
            self._enter_stage(run, stage, t)
        elif stage.state == "waiting":
            self._step_checkpoint(run, stage, t)
        elif stage.state == "running":
            failed = run.script.matches(run.script.fail_stage, stage)
            self._end_stage(run, stage, t, "failed" if failed else "succeeded", fail_run=failed)

    def _enter_stage(self, run: Run, stage: StageRun, t: datetime) -> None:
        """A pending stage starts: skipped if asked, else at its checkpoint or its job."""
        if any(
            key.lower() in (stage.identifier.lower(), stage.name.lower())
            for key in run.stages_to_skip
        ):
            self._finish_stage(run, stage, t, "skipped", event=False, started=False)
        elif (check := self._rest_check_for(run, stage)) is not None:
            self._open_rest_check(run, stage, check, t)
        elif stage.spec.has_approval:
            self._open_checkpoint(run, stage, t)
        else:
            self._start_job(run, stage, t)

    def _step_checkpoint(self, run: Run, stage: StageRun, t: datetime) -> None:
        """A stage waiting at its checkpoint: the scripted decision or the timeout while the
        approval is pending; once decided, the job starts (approved) or the run fails."""
        if stage.check is not None and stage.approval is None:
            self._step_rest_check(run, stage, t)
            return
        approval = stage.approval
        if approval is None:
            return
        if approval.status == "pending":
            if not self._play_scripted_decision(run, stage, approval, t):
                self._time_out(run, stage, approval, t)
            return
        stage.checkpoint_finish = approval.decided_at
        if approval.status == "approved":
            self._start_job(run, stage, t)
        else:
            self._end_stage(run, stage, t, "failed", event_result="rejected", fail_run=True)

    def _play_scripted_decision(
        self, run: Run, stage: StageRun, approval: Approval, t: datetime
    ) -> bool:
        """Take the run's scripted decision for this stage if it falls before the timeout
        (the decision is used up); False when the approval times out instead."""
        decision = run.script.decision_for(stage)
        if decision is None:
            return False
        decided_at = approval.created_on + timedelta(seconds=decision.seconds)
        if decided_at >= approval.expires_at:
            return False
        run.script.decisions = {k: v for k, v in run.script.decisions.items() if v is not decision}
        who = decision.identity or SIMULATOR_IDENTITY
        step = step_for(approval, who)
        if step is not None:
            self._apply_decision(approval, step, decision.status, who, decision.comment, t)
        return True

    def _time_out(self, run: Run, stage: StageRun, approval: Approval, t: datetime) -> None:
        approval.status = "timedOut"
        approval.last_modified_on = t
        approval.decided_at = t
        run.touch(t)
        self._log("approval %s (run %s stage %s) timed out", approval.id, run.id, stage.name)
        self._emit_approval(approval, APPROVAL_COMPLETED, t)
        stage.checkpoint_finish = t
        self._end_stage(run, stage, t, "skipped", fail_run=True)

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
        self._log("run %s stage %s waits for approval %s", run.id, stage.name, approval.id)
        self._stage_waits(run, stage, t)
        self._emit_approval(approval, APPROVAL_PENDING, t)

    def _stage_waits(self, run: Run, stage: StageRun, t: datetime) -> None:
        """The stage stops at its checkpoint (an approval, a REST check) from ``t``."""
        stage.state = "waiting"
        stage.start_time = t
        stage.checkpoint_start = t
        stage.last_modified = t
        run.touch(t)
        self._emit_stage(run, stage, t)

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
        self._register_model_version(run)

    def _register_model_version(self, run: Run) -> None:
        """A live training run that succeeded registers a model version in MLflow, as a real
        training pipeline would; the sink's thread does the HTTP calls, outside the lock."""
        if (
            self.mlflow is None
            or run.pipeline.kind != "training"
            or run.result != "succeeded"
            or not run.live
        ):
            return
        registration = registration_for(run)
        if registration is not None:
            self.mlflow.submit(registration)

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


def _run_result(run: Run) -> str:
    failed = (
        any(s.result == "failed" for s in run.stages)
        or any(
            s.approval is not None and s.approval.status in ("rejected", "timedOut")
            for s in run.stages
        )
        or any(s.check is not None and s.check.status == "timedOut" for s in run.stages)
    )
    return "failed" if failed else "succeeded"
