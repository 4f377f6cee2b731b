"""The simulator's own pages: the home page at ``/`` and the JSON control API under
``/_simulator/...`` that scripts a running simulator (``control.RemoteSimulator`` is its
client). Each area of the control API has its handler; a bad request is a 400.
"""

from __future__ import annotations

import html
import json
import threading

from ..auth import Identity
from ..errors import ApiError
from ..faults import Faults, RateBudget
from ..model import Decision
from ..seed import seed
from ..state import SimulatorState
from ..util import parse_time
from .control_json import (
    identity_from_json,
    pipeline_json,
    run_json,
    stage_from_json,
    subscription_json,
)
from .httpd import Request, Response

#: What an area handler returns for a request that is not its own (``None`` is an answer).
UNHANDLED = object()


class ControlApi(SimulatorState):
    """The home page and the control API of ``AdoSimulator``."""

    # set by AdoSimulator.__init__; url, org_url, request_count and the fault methods are its too
    faults: Faults
    budget: RateBudget | None
    down_mode: str | None

    # ---- home page ----------------------------------------------------------------------------

    def _home(self) -> Response:
        info = self.summary()
        project = self.default_project
        rows = "".join(
            f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(json.dumps(v))}</code></td></tr>"
            for k, v in info.items()
        )
        page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ADO simulator</title></head>
<body>
<h1>ADO simulator</h1>
<p><strong>This is a simulator of Azure DevOps, not Azure DevOps.</strong> It is part of the
MLOps Portal and serves, with the documented JSON shapes, the subset of the Azure DevOps REST API
the portal uses, so the demo runs offline and the tests exercise the real HTTP client code.</p>
<p>Organization URL: <code>{html.escape(self.org_url)}</code>; project
<code>{html.escape(project.name)}</code> (<code>{project.id}</code>).</p>
<table>{rows}</table>
<p>Scripting: the JSON control API under <a href="/_simulator">/_simulator</a>
(see docs/ado-simulator.md).</p>
</body></html>"""
        return Response(200, page, content_type="text/html; charset=utf-8")

    # ---- control API --------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        path = request.path.rstrip("/")[len("/_simulator") :].lower() or "/"
        method = request.method
        body = request.json() if request.body else {}
        if body is None:
            body = {}
        try:
            if path in ("/deliveries/wait", "/mlflow/wait"):  # must not hold the lock to wait
                result = self._control_dispatch(method, path, request, body)
            else:
                with self.lock:
                    result = self._control_dispatch(method, path, request, body)
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiError(400, f"Bad control request: {exc}", "SimulatorControlException") from exc
        if isinstance(result, Response):
            return result
        return Response(200, result)

    def _control_dispatch(self, method: str, path: str, request: Request, body: dict):
        segments = [s for s in path.split("/") if s]
        for area in (
            self._control_state,
            self._control_clock,
            self._control_pipelines,
            self._control_runs,
            self._control_approvals,
            self._control_checks,
            self._control_faults,
            self._control_outage,
            self._control_hooks,
            self._control_mlflow,
            self._control_logs,
        ):
            result = area(method, path, segments, request, body)
            if result is not UNHANDLED:
                return result
        raise ApiError(
            404, f"No control endpoint {method} /_simulator{path}.", "SimulatorControlException"
        )

    # ---- one area each: the answer, or UNHANDLED ---------------------------------------------

    def _control_state(self, method, path, segments, request, body):
        """The summary, reset, a seed, and PATs."""
        if path == "/" and method == "GET":
            return {
                "simulator": "ADO simulator (not Azure DevOps)",
                "url": self.url,
                "orgUrl": self.org_url,
                **self.summary(),
                "faults": [r.to_json() for r in self.faults.rules()],
                "rateLimit": self.budget.to_json() if self.budget else None,
                "down": self.down_mode,
                "requestCount": self.request_count,
            }
        if path == "/reset" and method == "POST":
            self.reset()
            self.clear_faults()
            self.clear_rate_limit()
            return {"reset": True}
        if path == "/seed" and method == "POST":
            return seed(self, body.get("name", "demo"))
        if path == "/pats" and method == "POST":
            who = Identity(
                body.get("id") or Identity.user(body["uniqueName"]).id,
                body.get("displayName") or body["uniqueName"],
                body["uniqueName"],
            )
            self.add_pat(body["pat"], who)
            return {"pat": "********", "identity": who.summary()}
        return UNHANDLED

    def _control_mlflow(self, method, path, segments, request, body):
        """The model versions training runs registered in MLflow (``--mlflow-tracking-uri``)."""
        if path == "/mlflow" and method == "GET":
            sink = self.mlflow
            return {
                "trackingUri": sink.tracking_uri if sink else None,
                "registrations": [r.to_json() for r in sink.log_entries()] if sink else [],
            }
        if path == "/mlflow/wait" and method == "POST":
            idle = self.mlflow.wait(float(body.get("timeout", 30))) if self.mlflow else True
            return {"idle": idle}
        return UNHANDLED

    def _control_clock(self, method, path, segments, request, body):
        if path == "/clock" and method == "GET":
            return self.clock.to_json()
        if path == "/clock/advance" and method == "POST":
            self.advance(float(body.get("seconds", 0)))
            return self.clock.to_json()
        if path == "/clock/speed" and method == "POST":
            self.set_speed(float(body["speed"]))
            return self.clock.to_json()
        return UNHANDLED

    def _control_pipelines(self, method, path, segments, request, body):
        if segments[:1] != ["pipelines"] or len(segments) != 1:
            return UNHANDLED
        if method == "GET":
            return [pipeline_json(self.renderer, p) for p in self.pipelines.values()]
        if method == "POST":
            pipe = self.create_pipeline(
                body["name"],
                body.get("kind", "ci"),
                folder=body.get("folder"),
                model=body.get("model"),
                project=body.get("project"),
                stages=[stage_from_json(s) for s in body["stages"]] if body.get("stages") else None,
                stage_seconds=body.get("stageSeconds"),
                approvers=body.get("approvers"),
                approval_timeout_minutes=body.get("approvalTimeoutMinutes"),
                min_required_approvers=body.get("minRequiredApprovers"),
                execution_order=body.get("executionOrder"),
                blocked_approvers=body.get("blockedApprovers"),
                parameters=body.get("parameters"),
                pipeline_id=body.get("id"),
                repository=body.get("repository"),
            )
            return pipeline_json(self.renderer, pipe)
        return UNHANDLED

    def _control_runs(self, method, path, segments, request, body):
        if segments[:1] != ["runs"]:
            return UNHANDLED
        if len(segments) == 1 and method == "GET":
            pipeline_id = request.query.get("pipelineid")
            return [
                run_json(r)
                for r in self.runs.values()
                if pipeline_id is None or str(r.pipeline.id) == pipeline_id
            ]
        if len(segments) == 1 and method == "POST":
            return run_json(self._control_queue_run(body))
        if len(segments) == 2 and method == "GET":
            return run_json(self.run(int(segments[1])))
        if len(segments) == 3 and segments[2] == "cancel" and method == "POST":
            return run_json(self.cancel_run(int(segments[1])))
        return UNHANDLED

    def _control_queue_run(self, body: dict):
        """``POST /_simulator/runs``: ``queue_run`` with every script option, in camelCase."""
        decisions = {
            stage: Decision(
                float(d.get("seconds", 0)),
                d.get("status", "approved"),
                identity_from_json(d.get("approver")),
                d.get("comment", ""),
            )
            for stage, d in (body.get("decisions") or {}).items()
        }
        return self.queue_run(
            int(body["pipelineId"]),
            template_parameters=body.get("templateParameters"),
            variables=body.get("variables"),
            branch=body.get("branch"),
            commit=body.get("commit"),
            reason=body.get("reason", "manual"),
            requested_for=identity_from_json(body.get("requestedFor")),
            stages_to_skip=body.get("stagesToSkip") or (),
            fail_stage=body.get("failStage"),
            time_out_stage=body.get("timeOutStage"),
            decisions=decisions,
            stage_seconds=body.get("stageSeconds"),
            queue_seconds=float(body.get("queueSeconds", 0)),
            at=parse_time(body["at"]) if body.get("at") else None,
            quiet=bool(body.get("quiet")),
            trigger_info=body.get("triggerInfo"),
        )

    def _control_approvals(self, method, path, segments, request, body):
        if segments[:1] != ["approvals"]:
            return UNHANDLED
        if len(segments) == 1 and method == "GET":
            status = request.query.get("status")
            return [
                {
                    **self.renderer.approval(a, steps=True),
                    "runId": a.run.id,
                    "stage": a.stage.identifier,
                }
                for a in self.approvals.values()
                if status in (None, "", a.status)
            ]
        if len(segments) == 2 and method == "POST":
            approval = self.decide(
                segments[1],
                body.get("status", "approved"),
                identity_from_json(body.get("approver")),
                body.get("comment", ""),
            )
            return self.renderer.approval(approval, steps=True)
        return UNHANDLED

    def _control_faults(self, method, path, segments, request, body):
        """Scripted faults and the rate budget."""
        if path == "/faults":
            if method == "GET":
                return [r.to_json() for r in self.faults.rules()]
            if method == "POST":
                rule = self.faults.add(
                    int(body.get("status", 500)),
                    int(body.get("count", 1)),
                    path=body.get("path"),
                    method=body.get("method"),
                    retry_after=int(body.get("retryAfter", 1)),
                    delay=float(body.get("delay", 0)),
                    after=bool(body.get("after", False)),
                )
                return rule.to_json()
            if method == "DELETE":
                self.clear_faults()
                return {"cleared": True}
        if path == "/rate-limit":
            if method == "GET":
                return self.budget.to_json() if self.budget else None
            if method == "POST":
                budget = self.set_rate_limit(
                    int(body.get("limit", 200)),
                    float(body.get("window", 300)),
                    cost=float(body.get("cost", 1)),
                    warn_below=float(body.get("warnBelow", 20)),
                    delay=float(body.get("delay", 0)),
                )
                return budget.to_json()
            if method == "DELETE":
                self.clear_rate_limit()
                return {"cleared": True}
        return UNHANDLED

    def _control_outage(self, method, path, segments, request, body):
        """The down switch: ``503`` at once, ``refuse`` just after this answer is sent."""
        if path == "/down" and method == "POST":
            mode = str(body.get("mode", "503"))
            seconds = body.get("seconds")
            if mode == "refuse":
                if seconds is None:
                    raise ValueError(
                        "mode 'refuse' needs 'seconds' (nothing could bring it back up)"
                    )
                timer = threading.Timer(
                    0.05, self.go_down, kwargs={"mode": "refuse", "seconds": float(seconds)}
                )
                timer.daemon = True
                timer.start()
            else:
                self.go_down(mode, float(seconds) if seconds is not None else None)
            return {"down": mode, "seconds": seconds}
        if path == "/up" and method == "POST":
            self.come_up()
            return {"down": None}
        return UNHANDLED

    def _control_hooks(self, method, path, segments, request, body):
        """Subscriptions and their deliveries."""
        q = request.query
        if segments[:1] == ["subscriptions"]:
            if len(segments) == 1 and method == "GET":
                return [subscription_json(s) for s in self.subscriptions.values()]
            if len(segments) == 1 and method == "POST":
                sub = self.add_subscription(
                    body["url"],
                    username=body.get("username"),
                    password=body.get("password"),
                    event_types=body.get("eventTypes"),
                    headers=body.get("headers"),
                    publisher_inputs=body.get("publisherInputs"),
                    resource_version=body.get("resourceVersion"),
                    approval_event_detail=body.get("approvalEventDetail", "sparse"),
                )
                return subscription_json(sub)
            if len(segments) == 2 and method == "DELETE":
                self.remove_subscription(segments[1])
                return {"deleted": segments[1]}
            if len(segments) == 3 and segments[2] == "probation" and method == "POST":
                return subscription_json(
                    self.set_probation(segments[1], bool(body.get("on", True)))
                )
        if segments[:1] == ["deliveries"]:
            if len(segments) == 1 and method == "GET":
                with_payload = q.get("payload", "1") not in ("0", "false")
                return [
                    d.to_json(payload=with_payload)
                    for d in self.deliveries(q.get("eventtype") or None)
                ]
            if len(segments) == 2 and segments[1] == "wait" and method == "POST":
                return {"idle": self.wait_for_deliveries(float(body.get("timeout", 10)))}
            if len(segments) == 3 and segments[2] == "redeliver" and method == "POST":
                return self.redeliver(int(segments[1])).to_json()
        return UNHANDLED

    def _control_checks(self, method, path, segments, request, body):
        """Invoke REST API checks on environments (callback mode), and their runs with the log
        lines and TaskCompleted events they received."""
        if segments[:1] != ["checks"]:
            return UNHANDLED
        if len(segments) == 1 and method == "GET":
            run_id = request.query.get("runid")
            return {
                "configured": [c.to_json() for c in self.rest_checks.values()],
                "runs": [c.to_json() for c in self.check_runs_for(int(run_id) if run_id else None)],
            }
        if len(segments) == 1 and method == "POST":
            check = self.configure_rest_check(
                body["environment"],
                body["url"],
                secret=body.get("secret", ""),
                username=body.get("username", ""),
                body=body.get("body") or {},
                timeout_minutes=float(body.get("timeoutMinutes", 60)),
            )
            return check.to_json()
        if len(segments) == 2 and method == "DELETE":
            self.remove_rest_check(segments[1])
            return {"removed": segments[1]}
        return UNHANDLED

    def _control_logs(self, method, path, segments, request, body):
        """The patch log and the request log."""
        if path == "/patch-log":
            if method == "GET":
                return list(self.patch_log)
            if method == "DELETE":
                self.patch_log.clear()
                return {"cleared": True}
        if path == "/requests" and method == "GET":
            return {
                "count": self.request_count,
                "requests": self.request_log(int(request.query.get("since", 0))),
            }
        return UNHANDLED
