"""The build timeline: per stage a Stage record, a Checkpoint with its Checkpoint.Approval when
the stage has an approval check, and a Phase with its Job. Records carry explicit ``null``."""

from __future__ import annotations

from datetime import datetime

from ..auth import SYSTEM_ID
from ..model import Approval, Run, StageRun
from ..util import fmt_time
from .base import RenderBase

EPOCH = "0001-01-01T00:00:00"


class TimelineRenderer(RenderBase):
    """Timelines and their records."""

    def _record(
        self,
        run: Run,
        *,
        id: str,
        parent: str | None,
        type: str,
        name: str,
        identifier: str | None,
        state: str,
        result: str | None,
        start: datetime | None,
        finish: datetime | None,
        order: int | None,
        modified: datetime | None,
        log_id: int | None = None,
        worker: str | None = None,
    ) -> dict:
        api = self.api(run.project)
        return {
            "previousAttempts": [],
            "id": id,
            "parentId": parent,
            "type": type,
            "name": name,
            "startTime": fmt_time(start),
            "finishTime": fmt_time(finish),
            "currentOperation": None,
            "percentComplete": 100 if state == "completed" else 0,
            "state": state,
            "result": result,
            "resultCode": None,
            "changeId": run.change_id,
            "lastModified": fmt_time(modified) or EPOCH,
            "workerName": worker,
            "order": order,
            "details": None,
            "errorCount": 1 if result == "failed" and type in ("Job", "Phase", "Stage") else 0,
            "warningCount": 0,
            "url": None,
            "log": (
                {
                    "id": log_id,
                    "type": "Container",
                    "url": f"{api}/build/builds/{run.id}/logs/{log_id}",
                }
                if log_id is not None and start is not None
                else None
            ),
            "task": None,
            "attempt": 1,
            "identifier": identifier,
            "issues": (
                [
                    {
                        "type": "error",
                        "category": "General",
                        "message": "The job failed (simulated).",
                        "data": {},
                    }
                ]
                if result == "failed" and type == "Job"
                else []
            ),
        }

    @staticmethod
    def _timeline_state(stage: StageRun) -> str:
        return {"pending": "pending", "completed": "completed"}.get(stage.state, "inProgress")

    def timeline_records(self, run: Run) -> list[dict]:
        records = []
        for order, stage in enumerate(run.stages, start=1):
            records.append(self._stage_record(run, stage, order))
            child_order = 1
            if stage.approval is not None:
                records.extend(self._checkpoint_records(run, stage, stage.approval, child_order))
                child_order += 1
            records.extend(self._job_records(run, stage, child_order))
        return records

    def _stage_record(self, run: Run, stage: StageRun, order: int) -> dict:
        return self._record(
            run,
            id=stage.record_id,
            parent=None,
            type="Stage",
            name=stage.name,
            identifier=stage.identifier,
            state=self._timeline_state(stage),
            result=stage.result,
            start=stage.start_time,
            finish=stage.finish_time,
            order=order,
            modified=stage.last_modified,
        )

    def _checkpoint_records(
        self, run: Run, stage: StageRun, approval: Approval, order: int
    ) -> list[dict]:
        """The stage's Checkpoint and, under it, the Checkpoint.Approval of its approval."""
        checkpoint_done = stage.checkpoint_finish is not None
        checkpoint_result = _check_result(approval.status) if checkpoint_done else None
        return [
            self._record(
                run,
                id=stage.checkpoint_id,
                parent=stage.record_id,
                type="Checkpoint",
                name="Checkpoint",
                identifier="Checkpoint",
                state="completed" if checkpoint_done else "inProgress",
                result=checkpoint_result,
                start=stage.checkpoint_start,
                finish=stage.checkpoint_finish,
                order=order,
                modified=stage.last_modified,
            ),
            self._record(
                run,
                id=approval.id,
                parent=stage.checkpoint_id,
                type="Checkpoint.Approval",
                name="Checkpoint.Approval",
                identifier=approval.id,
                state="completed" if checkpoint_done else "inProgress",
                result=checkpoint_result,
                start=approval.created_on,
                finish=stage.checkpoint_finish,
                order=1,
                modified=approval.last_modified_on,
            ),
        ]

    def _job_records(self, run: Run, stage: StageRun, order: int) -> list[dict]:
        """The stage's Phase and, under it, its Job (with its log once it started)."""
        job_state, job_result, job_finish = _job_state(stage)
        return [
            self._record(
                run,
                id=stage.phase_id,
                parent=stage.record_id,
                type="Phase",
                name=stage.spec.job,
                identifier=f"{stage.identifier}.{stage.spec.job}",
                state=job_state,
                result=job_result,
                start=stage.job_start,
                finish=job_finish,
                order=order,
                modified=stage.last_modified,
            ),
            self._record(
                run,
                id=stage.job_id,
                parent=stage.phase_id,
                type="Job",
                name=stage.spec.job,
                identifier=f"{stage.identifier}.{stage.spec.job}.__default",
                state=job_state,
                result=job_result,
                start=stage.job_start,
                finish=job_finish,
                order=1,
                modified=stage.last_modified,
                log_id=stage.log_id,
                worker="Hosted Agent" if stage.job_start else None,
            ),
        ]

    def timeline(self, run: Run) -> dict:
        return {
            "records": self.timeline_records(run),
            "lastChangedBy": SYSTEM_ID,
            "lastChangedOn": fmt_time(run.last_changed or run.queue_time),
            "id": run.timeline_id,
            "changeId": run.change_id,
            "url": f"{self.api(run.project)}/build/builds/{run.id}/Timeline/{run.timeline_id}",
        }


def _check_result(status: str) -> str:
    return {"approved": "succeeded", "canceled": "canceled"}.get(status, "failed")


def _job_state(stage: StageRun) -> tuple[str, str | None, datetime | None]:
    if stage.state == "completed":
        if stage.job_start is None:
            return (
                "completed",
                stage.result if stage.result in ("skipped", "canceled") else "skipped",
                None,
            )
        return "completed", stage.result, stage.finish_time
    if stage.state == "running":
        return "inProgress", None, None
    return "pending", None, None
