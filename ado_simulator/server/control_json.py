"""The simulator's JSON in and out of the control API: pipelines, runs and subscriptions as the
control API shows them (with what ADO does not show: kind, model, stage scripts), and the
identities and stages it reads from a request body."""

from __future__ import annotations

from ..auth import Identity
from ..model import Pipeline, Run, StageSpec, Subscription
from ..render import Renderer
from ..util import fmt_time


def pipeline_json(renderer: Renderer, pipe: Pipeline) -> dict:
    data = renderer.pipeline(pipe)
    data["simulator"] = {
        "kind": pipe.kind,
        "model": pipe.model,
        "project": pipe.project.name,
        "stages": [
            {
                "identifier": s.identifier,
                "name": s.name,
                "seconds": s.seconds,
                "environment": s.environment,
                "approvers": [a.summary() for a in s.approvers],
                "timeoutMinutes": s.timeout_minutes if s.has_approval else None,
            }
            for s in pipe.stages
        ],
    }
    return data


def run_json(run: Run) -> dict:
    return {
        "id": run.id,
        "name": run.name,
        "pipelineId": run.pipeline.id,
        "pipeline": run.pipeline.name,
        "kind": run.pipeline.kind,
        "model": run.pipeline.model,
        "state": run.state,
        "result": run.result,
        "reason": run.reason,
        "requestedFor": run.requested_for.summary(),
        "queueTime": fmt_time(run.queue_time),
        "startTime": fmt_time(run.start_time),
        "finishTime": fmt_time(run.finish_time),
        "templateParameters": run.template_parameters,
        "stages": [
            {
                "identifier": s.identifier,
                "name": s.name,
                "state": s.state,
                "result": s.result,
                "eventResult": s.event_result,
                "startTime": fmt_time(s.start_time),
                "finishTime": fmt_time(s.finish_time),
                "approvalId": s.approval.id if s.approval else None,
                "approvalStatus": s.approval.status if s.approval else None,
            }
            for s in run.stages
        ],
    }


def subscription_json(sub: Subscription) -> dict:
    return {
        "id": sub.id,
        "url": sub.url,
        "eventTypes": list(sub.event_types),
        "status": sub.status,
        "username": sub.username,
        "publisherInputs": sub.publisher_inputs,
        "approvalEventDetail": sub.approval_event_detail,
    }


def identity_from_json(value) -> Identity | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Identity.user(value)
    unique = value.get("uniqueName") or value.get("upn")
    base = Identity.user(unique, value.get("displayName"))
    return Identity(value.get("id") or base.id, value.get("displayName") or unique, unique)


def stage_from_json(value: dict) -> StageSpec:
    approvers = tuple(
        a for a in (identity_from_json(x) for x in value.get("approvers") or ()) if a is not None
    )
    return StageSpec(
        identifier=value["identifier"],
        name=value.get("name") or value["identifier"],
        seconds=float(value.get("seconds", 60)),
        job=value.get("job", "Job"),
        environment=value.get("environment"),
        approvers=approvers,
        min_required_approvers=int(value.get("minRequiredApprovers", 1)),
        execution_order=value.get("executionOrder", "anyOrder"),
        instructions=value.get("instructions", ""),
        timeout_minutes=float(value.get("timeoutMinutes", 43200)),
    )
