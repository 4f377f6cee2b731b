"""The "Invoke REST API" check, asynchronous (callback) mode, on an environment.

When a stage that deploys to such an environment starts, ADO POSTs to the check's URL with the
headers ``PlanUrl``, ``ProjectId``, ``HubName``, ``PlanId``, ``JobId``, ``TaskInstanceId``,
``AuthToken`` (plus ``TimelineId``, ``BuildId``) and the check's body with its ``$(variables)``
filled in, and expects a 200 within 3 s. The stage waits until ``TaskCompleted`` is posted to
``{PlanUrl}{ProjectId}/_apis/distributedtask/hubs/{HubName}/plans/{PlanId}/events`` with
``Authorization: Bearer {AuthToken}``: ``succeeded`` moves it on (to its approval, if it has
one, else its job), ``failed`` fails it; no callback before the timeout skips the stage and
fails the run. Log lines the service appends to the check's timeline record feed are kept, so
tests can read what ADO's check log would show. A repeated TaskCompleted is accepted and
changes nothing.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..model import Run, StageRun
from ..util import stable_guid
from .base import StateBase

CALL_TIMEOUT_SECONDS = 3.0  # ADO gives the service 3 s to answer
TOKEN_HOURS = 48  # the job token's life
VARIABLE = re.compile(r"\$\(([A-Za-z0-9_.]+)\)")


@dataclass
class RestCheck:
    """An environment's Invoke REST API check (callback mode)."""

    environment: str
    url: str
    secret: str = ""
    username: str = ""
    body: dict = field(default_factory=dict)
    timeout_minutes: float = 60.0

    def to_json(self) -> dict:
        return {
            "environment": self.environment,
            "url": self.url,
            "username": self.username,
            "secret": "********" if self.secret else "",
            "body": self.body,
            "timeoutMinutes": self.timeout_minutes,
        }


@dataclass
class CheckRun:
    """One evaluation of a REST check for one stage of one run."""

    check: RestCheck
    run: Run
    stage: StageRun
    project_id: str
    plan_id: str
    timeline_id: str
    job_id: str
    task_instance_id: str
    token: str
    body: dict
    created_on: datetime
    expires_at: datetime
    status: str = "pending"  # pending | succeeded | failed | timedOut
    completed_at: datetime | None = None
    call: dict = field(default_factory=dict)  # what the service answered: status, ms, body
    log_lines: list[str] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)  # every TaskCompleted received

    def to_json(self) -> dict:
        return {
            "id": self.task_instance_id,
            "environment": self.check.environment,
            "runId": self.run.id,
            "stage": self.stage.name,
            "planId": self.plan_id,
            "timelineId": self.timeline_id,
            "jobId": self.job_id,
            "taskInstanceId": self.task_instance_id,
            "status": self.status,
            "createdOn": self.created_on.isoformat(),
            "expiresAt": self.expires_at.isoformat(),
            "completedAt": self.completed_at.isoformat() if self.completed_at else None,
            "body": self.body,
            "call": dict(self.call),
            "logLines": list(self.log_lines),
            "events": list(self.events),
        }


def job_token(plan_id: str, job_id: str) -> str:
    """A JWT-shaped job access token (not signed; the simulator compares it exactly)."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {
        "oid": stable_guid("job", job_id),
        "upn": "project-collection-build-service@simulator",
        "name": "Project Collection Build Service (simulated)",
        "scp": "app_token",
        "plan": plan_id,
        "exp": int(time.time()) + TOKEN_HOURS * 3600,
    }
    return f"{part({'typ': 'JWT', 'alg': 'none'})}.{part(claims)}.simulated"


def fill(value, variables: dict[str, str]):
    """The body template with ``$(name)`` replaced (unknown names are left as they are)."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
    if isinstance(value, dict):
        return {k: fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, variables) for v in value]
    return value


class CheckState(StateBase):
    """REST checks on environments, their runs, and the callbacks they wait for."""

    def configure_rest_check(
        self,
        environment: str,
        url: str,
        *,
        secret: str = "",
        username: str = "",
        body: dict | None = None,
        timeout_minutes: float = 60.0,
    ) -> RestCheck:
        """Put an Invoke REST API check (callback mode) on ``environment`` (e.g. ``PROD``)."""
        check = RestCheck(environment, url, secret, username, dict(body or {}), timeout_minutes)
        with self.lock:
            self.rest_checks[environment.lower()] = check
        self._log("REST check on environment %s calls %s", environment, url)
        return check

    def remove_rest_check(self, environment: str) -> None:
        with self.lock:
            self.rest_checks.pop(environment.lower(), None)

    def check_runs_for(self, run_id: int | None = None) -> list[CheckRun]:
        with self.lock:
            self._progress(self.clock.now())
            return [c for c in self.check_runs.values() if run_id is None or c.run.id == run_id]

    def check_run(self, plan_id: str) -> CheckRun | None:
        with self.lock:
            return self.check_runs.get(plan_id.lower())

    # ---- the engine's side ---------------------------------------------------------------

    def _rest_check_for(self, run: Run, stage: StageRun) -> RestCheck | None:
        if not run.live or not stage.spec.environment:
            return None
        return self.rest_checks.get(stage.spec.environment.lower())

    def _open_rest_check(self, run: Run, stage: StageRun, check: RestCheck, t: datetime) -> None:
        """The stage waits at its checkpoint; the call goes out from a thread (outside the
        lock, as ADO's service would make it)."""
        plan_id, job_id = self.ids.guid(), self.ids.guid()
        variables = {
            **{str(k): str(v) for k, v in (run.variables or {}).items()},
            **{str(k): str(v) for k, v in (run.template_parameters or {}).items()},
            "Build.BuildId": str(run.id),
            "System.TeamProjectId": run.project.id,
            "System.PlanId": plan_id,
            "Environment.Name": check.environment,
        }
        check_run = CheckRun(
            check=check,
            run=run,
            stage=stage,
            project_id=run.project.id,
            plan_id=plan_id,
            timeline_id=self.ids.guid(),
            job_id=job_id,
            task_instance_id=self.ids.guid(),
            token=job_token(plan_id, job_id),
            body=fill(check.body, variables),
            created_on=t,
            expires_at=t + timedelta(minutes=check.timeout_minutes),
        )
        self.check_runs[plan_id.lower()] = check_run
        stage.check = check_run
        self._log("run %s stage %s waits for the REST check %s", run.id, stage.name, check.url)
        self._stage_waits(run, stage, t)
        threading.Thread(
            target=self._call_rest_check, args=(check_run,), name="ado-simulator-check", daemon=True
        ).start()

    def _check_headers(self, check_run: CheckRun) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "PlanUrl": f"{self.renderer.base_url}/{self.org}/",
            "ProjectId": check_run.project_id,
            "HubName": "checks",
            "PlanId": check_run.plan_id,
            "JobId": check_run.job_id,
            "TimelineId": check_run.timeline_id,
            "TaskInstanceId": check_run.task_instance_id,
            "AuthToken": check_run.token,
            "BuildId": str(check_run.run.id),
        }
        if check_run.check.secret:
            pair = f"{check_run.check.username}:{check_run.check.secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers

    def _call_rest_check(self, check_run: CheckRun) -> None:
        """ADO's call; anything but a 200 within 3 s fails the check at once."""
        request = urllib.request.Request(  # noqa: S310 - the URL the test configured
            check_run.check.url,
            data=json.dumps(check_run.body).encode(),
            headers=self._check_headers(check_run),
            method="POST",
        )
        started = time.monotonic()
        status, text = 0, ""
        try:
            with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_SECONDS) as answer:  # noqa: S310
                status, text = answer.status, answer.read(4096).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read(4096).decode("utf-8", "replace")
        except (OSError, ValueError) as exc:
            text = f"{type(exc).__name__}: {exc}"
        elapsed = round((time.monotonic() - started) * 1000, 1)
        with self.lock:
            check_run.call = {"status": status, "ms": elapsed, "body": text[:2000]}
            if status != 200 and check_run.status == "pending":
                check_run.log_lines.append(
                    f"The service answered {status or 'nothing'} ({text[:200]}): check failed."
                )
                self._complete_check(check_run, "failed")
        self._log("REST check %s answered %s in %.0f ms", check_run.check.url, status, elapsed)

    def _complete_check(self, check_run: CheckRun, result: str) -> None:
        """The check's result is in; the stage moves on the next time the engine plays."""
        now = self.clock.now()
        check_run.status = result
        check_run.completed_at = now
        self._progress(now, only=check_run.run)

    def _check_due(self, stage: StageRun) -> datetime | None:
        check_run = stage.check
        return check_run.completed_at or check_run.expires_at

    def _step_rest_check(self, run: Run, stage: StageRun, t: datetime) -> None:
        """The check's result (or its timeout) at ``t``: on to the approval or the job, or
        the stage fails (failed) or is skipped (timed out) and the run fails."""
        check_run = stage.check
        if check_run.completed_at is None:
            check_run.status = "timedOut"
            check_run.completed_at = t
            self._log("REST check of run %s stage %s timed out", run.id, stage.name)
            stage.checkpoint_finish = t
            self._end_stage(run, stage, t, "skipped", fail_run=True)
        elif check_run.status == "succeeded":
            if stage.spec.has_approval:
                started = stage.start_time
                self._open_checkpoint(run, stage, t)
                stage.start_time = started
            else:
                stage.checkpoint_finish = t
                self._start_job(run, stage, t)
        else:
            stage.checkpoint_finish = t
            self._end_stage(run, stage, t, "failed", fail_run=True)
