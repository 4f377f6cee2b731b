"""ADO routes an automated check's service calls back on: the plan's events (``TaskCompleted``)
and the check's timeline record feed (log lines). Both take only the job's ``AuthToken`` as a
Bearer token, exactly the one sent with the check; a repeated TaskCompleted changes nothing."""

from __future__ import annotations

from ..auth import Caller
from ..errors import ApiError, bad_request
from ..state import SimulatorState
from ..state.checks import CheckRun
from ..util import log
from .httpd import Request, Response

TASK_RESULTS = ("succeeded", "failed")


class CheckRoutes(SimulatorState):
    """``.../distributedtask/hubs/{hub}/plans/{plan}/events`` and ``.../records/{r}/feed``."""

    def _plan_check(self, request: Request, hub: str, plan: str) -> CheckRun:
        check_run = self.check_runs.get(plan.lower())
        if check_run is None or hub.lower() != "checks":
            raise ApiError(
                404,
                f"The plan {plan} in hub {hub} does not exist (no REST check is waiting on it).",
                "TaskOrchestrationPlanNotFoundException",
            )
        header = (request.headers.get("authorization") or "").strip()
        if header != f"Bearer {check_run.token}":
            raise ApiError(
                401,
                "TF400813: The job's access token does not match this plan.",
                "UnauthorizedRequestException",
            )
        return check_run

    def _plan_events(
        self, request: Request, caller: Caller, project: str, hub: str, plan: str
    ) -> Response:
        check_run = self._plan_check(request, hub, plan)
        body = request.json()
        if not isinstance(body, dict):
            raise bad_request("The event must be a JSON object.")
        if body.get("name") != "TaskCompleted":
            raise bad_request(
                f"The event '{body.get('name')}' is not simulated; only TaskCompleted is."
            )
        if str(body.get("taskId") or "").lower() != check_run.task_instance_id.lower():
            raise bad_request("taskId is not the TaskInstanceId of this check.")
        if str(body.get("jobId") or "").lower() != check_run.job_id.lower():
            raise bad_request("jobId is not the JobId of this check.")
        result = str(body.get("result") or "").lower()
        if result not in TASK_RESULTS:
            raise bad_request(f"result must be one of {', '.join(TASK_RESULTS)}.")
        check_run.events.append({"result": result, "at": self.clock.now().isoformat()})
        if check_run.status == "pending":
            log("REST check %s: TaskCompleted %s", check_run.task_instance_id, result)
            self._complete_check(check_run, result)
        else:  # already completed (or timed out): accepted, nothing changes
            log(
                "REST check %s: repeated TaskCompleted %s ignored (%s)",
                check_run.task_instance_id,
                result,
                check_run.status,
            )
        return Response(204, None)

    def _plan_feed(
        self,
        request: Request,
        caller: Caller,
        project: str,
        hub: str,
        plan: str,
        timeline: str,
        record: str,
    ) -> Response:
        check_run = self._plan_check(request, hub, plan)
        if timeline.lower() != check_run.timeline_id.lower():
            raise bad_request("timelineId is not the TimelineId of this check.")
        if record.lower() != check_run.task_instance_id.lower():
            raise bad_request("recordId is not the TaskInstanceId of this check.")
        body = request.json()
        lines = body.get("value") if isinstance(body, dict) else None
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            raise bad_request('The feed takes {"count": n, "value": ["line", ...]}.')
        check_run.log_lines.extend(lines)
        return Response(204, None)
