"""Service-hook events: what ADO publishes when a run, a stage or an approval changes.

Envelopes follow the samples of the ADO docs (docs/service-hooks/events.md): ``subscriptionId``,
``notificationId``, ``id``, ``eventType``, ``publisherId``, ``message``, ``detailedMessage``,
``resource``, ``resourceVersion``, ``resourceContainers``, ``createdDate``. One event has one
``id``; each delivery of it to a subscription has its own ``notificationId``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .hooks import Delivery
from .model import Approval, Project, Run, StageRun
from .util import fmt_time, stable_guid

if TYPE_CHECKING:
    from .hooks import HookDispatcher
    from .model import Subscription
    from .render import Renderer
    from .util import IdSource

RUN_EVENT = "ms.vss-pipelines.run-state-changed-event"
STAGE_EVENT = "ms.vss-pipelines.stage-state-changed-event"
APPROVAL_PENDING = "ms.vss-pipelinechecks-events.approval-pending"
APPROVAL_COMPLETED = "ms.vss-pipelinechecks-events.approval-completed"
BUILD_COMPLETE = "build.complete"
EVENT_TYPES = (RUN_EVENT, STAGE_EVENT, APPROVAL_PENDING, APPROVAL_COMPLETED, BUILD_COMPLETE)


@dataclass
class _Event:
    id: str
    type: str
    publisher: str
    created: datetime
    project: Project
    text: str
    html: str
    resource: dict
    attributes: dict
    sparse_resource: dict | None = None


class EventPublisher:
    """Mixed into ``SimulatorState``: builds events and hands one delivery per matching
    subscription to the hook dispatcher. Runs under the state's lock."""

    renderer: Renderer
    ids: IdSource
    hooks: HookDispatcher
    subscriptions: dict[str, Subscription]
    _quiet: int
    _next_notification_id: int

    def _message(self, text: str, html: str, markdown: str) -> dict:
        return {"text": text, "html": html, "markdown": markdown}

    def _publish(self, event: _Event) -> None:
        if self._quiet:
            return
        for sub in list(self.subscriptions.values()):
            if not sub.wants(event.type) or not sub.filter_ok(event.attributes):
                continue
            resource = event.resource
            if event.sparse_resource is not None and sub.approval_event_detail == "sparse":
                resource = event.sparse_resource
            notification_id = self._next_notification_id
            self._next_notification_id += 1
            default_version = "2.0" if event.type == BUILD_COMPLETE else "5.1-preview.1"
            message = self._message(event.text, event.html, _markdown(event.text, event.html))
            payload: dict = {
                "subscriptionId": sub.id,
                "notificationId": notification_id,
                "id": event.id,
                "eventType": event.type,
                "publisherId": event.publisher,
            }
            if event.type == BUILD_COMPLETE:
                payload["scope"] = "all"
            payload.update(
                {
                    "message": message,
                    "detailedMessage": dict(message),
                    "resource": resource,
                    "resourceVersion": sub.resource_version or default_version,
                    "resourceContainers": self.renderer.resource_containers(event.project),
                    "createdDate": fmt_time(event.created),
                }
            )
            self.hooks.submit(Delivery(notification_id, sub, event.id, event.type, payload))

    def _run_attributes(self, run: Run) -> dict:
        return {"projectId": run.project.id, "pipelineId": str(run.pipeline.id)}

    def _emit_run(self, run: Run, t: datetime) -> None:
        r = self.renderer
        state = r.run(run, nulls=True)["state"]
        words = run.result if run.state == "completed" else "started"
        link = r.run_web(run)
        self._publish(
            _Event(
                id=self.ids.guid(),
                type=RUN_EVENT,
                publisher="pipelines",
                created=t,
                project=run.project,
                text=f"Run {run.name} {words}.",
                html=f'Run <a href="{link}">{run.name}</a> {words}.',
                resource={"run": r.run(run, nulls=True), "pipeline": r.pipeline_ref(run.pipeline)},
                attributes={
                    **self._run_attributes(run),
                    "runStateId": _pascal(state),
                    "runResultId": _pascal(run.result) if run.state == "completed" else None,
                },
            )
        )

    def _stage_event_state(self, stage: StageRun) -> str:
        return {"pending": "notStarted", "waiting": "waiting", "running": "running"}.get(
            stage.state, "completed"
        )

    def _stage_json(self, run: Run, stage: StageRun) -> dict:
        r = self.renderer
        links = r.run_links(run)
        return {
            "_links": {"web": links["web"], "pipeline.web": links["pipeline.web"]},
            "id": stage.record_id,
            "name": stage.identifier,
            "displayName": stage.name,
            "state": self._stage_event_state(stage),
            "result": stage.event_result if stage.state == "completed" else None,
            "startTime": fmt_time(stage.start_time),
            "finishTime": fmt_time(stage.finish_time),
        }

    def _emit_stage(self, run: Run, stage: StageRun, t: datetime) -> None:
        r = self.renderer
        state = self._stage_event_state(stage)
        words = stage.event_result if stage.state == "completed" else state
        link = r.run_web(run)
        self._publish(
            _Event(
                id=self.ids.guid(),
                type=STAGE_EVENT,
                publisher="pipelines",
                created=t,
                project=run.project,
                text=f"Run {run.name} stage {stage.name} {words}.",
                html=f'Run {run.name} stage <a href="{link}">{stage.name}</a> {words}.',
                resource={
                    "stage": self._stage_json(run, stage),
                    "run": r.run(run, nulls=True),
                    "pipeline": r.pipeline_ref(run.pipeline),
                },
                attributes={
                    **self._run_attributes(run),
                    "stageNameId": (stage.identifier, stage.name),
                    "stageStateId": _pascal(state),
                    "stageResultId": _pascal(stage.event_result)
                    if stage.state == "completed"
                    else None,
                },
            )
        )

    def _emit_approval(self, approval: Approval, event_type: str, t: datetime) -> None:
        r = self.renderer
        run, stage = approval.run, approval.stage
        env = stage.spec.environment or stage.name
        verb = "pending" if event_type == APPROVAL_PENDING else "completed"
        link = r.run_web(run)
        env_link = f"{r.web(run.project)}/_environments?view=resources&name={env}"
        approval_json = r.approval(approval, steps=True)
        full = {
            "approval": approval_json,
            "projectId": run.project.id,
            "pipeline": r.pipeline_ref(run.pipeline),
            "stage": self._stage_json(run, stage),
            "run": r.run(run, nulls=True),
            "resource": {
                "type": "environment",
                "id": stable_guid("env", run.project.id, env),
                "name": env,
            },
            "id": run.id,
            "url": r.run_links(run)["self"]["href"],
            "stageName": stage.identifier,
            "attemptId": 1,
        }
        sparse = {
            "approval": approval_json,
            "projectId": run.project.id,
            "pipeline": None,
            "stage": None,
            "run": None,
            "resource": None,
            "id": 0,
            "url": None,
            "stageName": None,
            "attemptId": 0,
        }
        self._publish(
            _Event(
                id=self.ids.guid(),
                type=event_type,
                publisher="pipelines",
                created=t,
                project=run.project,
                text=f"Approval {verb} for deployment of pipeline {run.name} to environment {env}.",
                html=(
                    f"Approval {verb} for deployment of pipeline <a href={link}> {run.name} </a> "
                    f"to environment <a href={env_link}>{env}</a>."
                ),
                resource=full,
                sparse_resource=sparse,
                attributes={
                    **self._run_attributes(run),
                    "stageName": (stage.identifier, stage.name),
                    "environmentName": env,
                },
            )
        )

    def _emit_build_complete(self, run: Run, t: datetime) -> None:
        r = self.renderer
        build = r.build(run)
        api = r.api(run.project)
        build.update(
            {
                "dropLocation": f"#/{run.id}/drop",
                "drop": {
                    "location": f"#/{run.id}/drop",
                    "type": "container",
                    "url": f"{api}/resources/Containers/{run.id}/drop",
                    "downloadUrl": f"{api}/build/builds/{run.id}/artifacts"
                    "?artifactName=drop&$format=zip",
                },
                "log": {
                    "type": "container",
                    "url": f"{api}/build/builds/{run.id}/logs",
                    "downloadUrl": f"{api}/build/builds/{run.id}/logs?$format=zip",
                },
                "sourceGetVersion": f"LG:{run.source_branch}:{run.source_version}",
                "retainIndefinitely": False,
                "hasDiagnostics": True,
                "requests": [
                    {
                        "id": run.id,
                        "url": f"{api}/build/Requests/{run.id}",
                        "requestedFor": r.identity(run.requested_for),
                    }
                ],
            }
        )
        build["definition"].update(
            {"batchSize": 1, "triggerType": "none", "definitionType": "build"}
        )
        build["queue"]["queueType"] = "buildController"
        status = {"succeeded": "Succeeded", "failed": "Failed", "canceled": "Stopped"}.get(
            run.result or "", "PartiallySucceeded"
        )
        words = {"Stopped": "was stopped"}.get(status, status.lower())
        self._publish(
            _Event(
                id=self.ids.guid(),
                type=BUILD_COMPLETE,
                publisher="tfs",
                created=t,
                project=run.project,
                text=f"Build {run.name} {words}",
                html=f'Build <a href="{r.run_web(run)}">{run.name}</a> {words}',
                resource=build,
                attributes={
                    "projectId": run.project.id,
                    "definitionName": run.pipeline.name,
                    "buildStatus": status,
                },
            )
        )


def _pascal(value: str | None) -> str | None:
    return value[:1].upper() + value[1:] if value else value


def _markdown(text: str, html: str) -> str:
    """The markdown form of a message: links as ``[text](url)``."""
    return re.sub(r'<a href="?([^" >]+)"?>\s*([^<]*?)\s*</a>', r"[\2](\1)", html)
