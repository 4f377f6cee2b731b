"""A client of the control API, to script a simulator running in another process (standard
library only). The methods mirror the in-process Python API::

    sim = RemoteSimulator("http://127.0.0.1:8090")
    pipe = sim.create_pipeline("risk-fraud-detector-release", "release", model="fraud-detector")
    run = sim.queue_run(pipe["id"], fail_stage="Deploy_PROD")
    sim.advance(120)
    sim.decide(sim.approvals("pending")[0]["id"], "approved", approver="alice@example.com")
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlencode


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class ControlError(RuntimeError):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class RemoteSimulator:
    def __init__(self, url: str, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None, **query):
        url = f"{self.url}/_simulator{path}"
        query = {k: v for k, v in query.items() if v is not None}
        if query:
            url += "?" + urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the URL is the simulator's, http(s)
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ControlError(exc.code, exc.read().decode(errors="replace")) from exc

    @staticmethod
    def _body(**options) -> dict:
        return {_camel(k): v for k, v in options.items() if v is not None}

    # state
    def summary(self) -> dict:
        return self._call("GET", "/")

    def reset(self) -> dict:
        return self._call("POST", "/reset", {})

    def seed(self, name: str = "demo") -> dict:
        return self._call("POST", "/seed", {"name": name})

    def add_pat(self, pat: str, unique_name: str, display_name: str | None = None) -> dict:
        return self._call(
            "POST", "/pats", self._body(pat=pat, unique_name=unique_name, display_name=display_name)
        )

    # pipelines and runs
    def create_pipeline(self, name: str, kind: str = "ci", **options) -> dict:
        """Options as the Python API: folder, model, project, stage_seconds, approvers,
        approval_timeout_minutes, min_required_approvers, execution_order, blocked_approvers,
        parameters, id, repository."""
        return self._call("POST", "/pipelines", self._body(name=name, kind=kind, **options))

    def pipelines(self) -> list[dict]:
        return self._call("GET", "/pipelines")

    def queue_run(self, pipeline_id: int, **options) -> dict:
        """Options: template_parameters, variables, branch, commit, reason, requested_for,
        stages_to_skip, fail_stage, time_out_stage, decisions ({stage: {seconds, status,
        approver, comment}}), stage_seconds, queue_seconds, at (ISO time), quiet, trigger_info."""
        return self._call("POST", "/runs", self._body(pipeline_id=pipeline_id, **options))

    def runs(self, pipeline_id: int | None = None) -> list[dict]:
        return self._call("GET", "/runs", pipelineId=pipeline_id)

    def run(self, run_id: int) -> dict:
        return self._call("GET", f"/runs/{run_id}")

    def cancel_run(self, run_id: int) -> dict:
        return self._call("POST", f"/runs/{run_id}/cancel", {})

    # clock
    def clock(self) -> dict:
        return self._call("GET", "/clock")

    def advance(self, seconds: float) -> dict:
        return self._call("POST", "/clock/advance", {"seconds": seconds})

    def set_speed(self, speed: float) -> dict:
        return self._call("POST", "/clock/speed", {"speed": speed})

    # approvals
    def approvals(self, status: str | None = None) -> list[dict]:
        return self._call("GET", "/approvals", status=status)

    def decide(
        self,
        approval_id: str,
        status: str = "approved",
        approver: str | None = None,
        comment: str = "",
    ) -> dict:
        body = self._body(status=status, approver=approver, comment=comment)
        return self._call("POST", f"/approvals/{approval_id}", body)

    def patch_log(self) -> list[dict]:
        return self._call("GET", "/patch-log")

    # faults
    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        path: str | None = None,
        method: str | None = None,
        retry_after: int = 1,
    ) -> dict:
        body = self._body(
            status=status, count=count, path=path, method=method, retry_after=retry_after
        )
        return self._call("POST", "/faults", body)

    def throttle_next(
        self, count: int = 1, retry_after: int = 1, *, path: str | None = None
    ) -> dict:
        return self.fail_next(count, 429, path=path, retry_after=retry_after)

    def clear_faults(self) -> dict:
        return self._call("DELETE", "/faults")

    def set_rate_limit(self, limit: int = 200, window: float = 300, **options) -> dict:
        return self._call("POST", "/rate-limit", self._body(limit=limit, window=window, **options))

    def clear_rate_limit(self) -> dict:
        return self._call("DELETE", "/rate-limit")

    def go_down(self, mode: str = "503", seconds: float | None = None) -> dict:
        return self._call("POST", "/down", self._body(mode=mode, seconds=seconds))

    def come_up(self) -> dict:
        return self._call("POST", "/up", {})

    # service hooks
    def add_subscription(self, url: str, **options) -> dict:
        """Options: username, password, event_types, headers, publisher_inputs,
        resource_version, approval_event_detail ("sparse" or "full")."""
        return self._call("POST", "/subscriptions", self._body(url=url, **options))

    def subscriptions(self) -> list[dict]:
        return self._call("GET", "/subscriptions")

    def set_probation(self, subscription_id: str, on: bool = True) -> dict:
        return self._call("POST", f"/subscriptions/{subscription_id}/probation", {"on": on})

    def deliveries(self, event_type: str | None = None, payload: bool = True) -> list[dict]:
        return self._call(
            "GET", "/deliveries", eventType=event_type, payload=None if payload else "0"
        )

    def wait_for_deliveries(self, timeout: float = 10) -> bool:
        return self._call("POST", "/deliveries/wait", {"timeout": timeout})["idle"]

    def redeliver(self, notification_id: int) -> dict:
        return self._call("POST", f"/deliveries/{notification_id}/redeliver", {})

    # MLflow target (--mlflow-tracking-uri)
    def mlflow_registrations(self) -> list[dict]:
        return self._call("GET", "/mlflow")["registrations"]

    def wait_for_mlflow(self, timeout: float = 30) -> bool:
        return self._call("POST", "/mlflow/wait", {"timeout": timeout})["idle"]

    def configure_rest_check(self, environment: str, url: str, **options) -> dict:
        """An Invoke REST API check (callback mode) on ``environment``: ``secret``,
        ``username``, ``body`` (with ``$(variables)``), ``timeout_minutes``."""
        return self._call(
            "POST", "/checks", {"environment": environment, "url": url, **self._body(**options)}
        )

    def remove_rest_check(self, environment: str) -> dict:
        return self._call("DELETE", f"/checks/{environment}")

    def check_runs(self, run_id: int | None = None) -> list[dict]:
        """Each check run: status, the service's answer, log lines, TaskCompleted events."""
        query = {"runId": run_id} if run_id is not None else {}
        return self._call("GET", "/checks", **query)["runs"]

    def requests(self, since: int = 0) -> dict:
        return self._call("GET", "/requests", since=since)
