"""Approvals (with their steps and permissions when expanded) as the Approvals API returns
them."""

from __future__ import annotations

from ..model import Approval, ApprovalStep
from ..util import fmt_time
from .base import RenderBase


class ApprovalRenderer(RenderBase):
    """Approvals and their steps."""

    def approval_step(self, step: ApprovalStep, *, permissions: bool) -> dict:
        data: dict = {"assignedApprover": self.identity(step.assigned)}
        if step.actual is not None:
            data["actualApprover"] = self.identity(step.actual)
        data["status"] = step.status
        data["comment"] = step.comment or ""
        if step.last_modified_on is not None:
            data["lastModifiedOn"] = fmt_time(step.last_modified_on)
        data["order"] = step.order
        if step.last_modified_by is not None:
            data["lastModifiedBy"] = self.identity(step.last_modified_by)
        data["initiatedOn"] = fmt_time(step.initiated_on)
        data["history"] = []
        if permissions:
            data["permissions"] = "view, update"
        return data

    def approval_pipeline(self, approval: Approval) -> dict:
        run = approval.run
        return {
            "owner": {
                "_links": {
                    "web": {"href": self.run_web(run)},
                    "self": {"href": f"{self.api(run.project)}/build/Builds/{run.id}"},
                },
                "id": run.id,
                "name": run.name,
            },
            "id": str(run.pipeline.id),
            "name": run.pipeline.name,
        }

    def approval(
        self, approval: Approval, *, steps: bool = False, permissions: bool = False
    ) -> dict:
        run = approval.run
        data: dict = {
            "id": approval.id,
            "steps": (
                [self.approval_step(s, permissions=permissions) for s in approval.steps]
                if steps
                else []
            ),
            "status": approval.status,
            "createdOn": fmt_time(approval.created_on),
            "lastModifiedOn": fmt_time(approval.last_modified_on),
            "instructions": approval.instructions,
            "minRequiredApprovers": approval.min_required_approvers,
            "executionOrder": approval.execution_order,
            "blockedApprovers": [self.identity(i) for i in approval.blocked_approvers],
            "_links": {
                "self": {"href": f"{self.api(run.project)}/pipelines/approvals/{approval.id}"}
            },
            "pipeline": self.approval_pipeline(approval),
        }
        if permissions:
            data["permissions"] = "view, update"
        return data
