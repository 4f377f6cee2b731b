"""Approvals: finding, listing and deciding them (a PATCH, a script's decision, the Python API).

Opening an approval at a stage's checkpoint, and its timeout, belong to the engine.
"""

from __future__ import annotations

from datetime import datetime

from ..auth import Identity
from ..errors import ApiError, bad_request, not_found
from ..events import APPROVAL_COMPLETED
from ..model import Approval, ApprovalStep, Project, Run
from ..util import fmt_time
from .base import APPROVAL_NS, SIMULATOR_IDENTITY, StateBase
from .paging import int_param, keyset_page

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


class ApprovalState(StateBase):
    """Finding, listing and deciding approvals."""

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
            planned = [self._plan_update(item, identity, project) for item in updates]
            for approval, step, status, comment in planned:
                self._apply_decision(approval, step, status, identity, comment, now)
            self._progress(now)
            return [a for a, *_ in planned]

    def _plan_update(
        self, item: object, identity: Identity, project: str | Project | None
    ) -> tuple[Approval, ApprovalStep, str, str | None]:
        """Check one update of a PATCH body: what it decides, on which step, with what comment
        (nothing is applied until every update of the body passes)."""
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
                f"Approval {approval.id} cannot be updated: it is already '{approval.status}'.",
                "ApprovalAlreadyCompletedException",
                f"{APPROVAL_NS}.ApprovalAlreadyCompletedException, {APPROVAL_NS}",
            )
        step = step_for(approval, identity)
        if step is None:
            raise ApiError(
                400,
                f"Approval {approval.id} has no step {identity.display_name} can act on.",
                "ApprovalStepNotActionableException",
                f"{APPROVAL_NS}.ApprovalStepNotActionableException, {APPROVAL_NS}",
            )
        return approval, step, status, item.get("comment")

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

        return keyset_page(
            items, key, True, int_param(query, "top"), query.get("continuationtoken"), None
        )


def step_for(approval: Approval, identity: Identity) -> ApprovalStep | None:
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
