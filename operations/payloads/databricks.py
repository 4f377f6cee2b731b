"""Databricks job notifications (an "HTTP webhook" notification destination). They carry ids
only (event type, workspace, job, run, task): no parameters, no results, no time. So the
model comes from a match rule on the job id, and so does the kind (``MatchRule.kind``: a
monitoring job's failure is drift); without one, a success is data arrival (a data job
finished) and a failure a threshold breach (a check job failed). A notification no rule
resolves lands in the unmatched list with the job id to map.

``on_start`` and ``on_duration_warning_threshold_exceeded`` say nothing to act on: ignored.
"""

from __future__ import annotations

from django.utils import timezone

from ..models import Severity, SignalFormat, SignalKind
from ._common import dedupe_key, load_json, need_object, need_text
from .base import NormalisedSignal, ParseResult, PayloadError

ACTED_ON = {
    "jobs.on_success": (SignalKind.DATA_ARRIVAL, Severity.INFO, "succeeded"),
    "jobs.on_failure": (SignalKind.THRESHOLD_BREACH, Severity.WARNING, "failed"),
}
NOT_ACTED_ON = {
    "jobs.on_start": "a run started",
    "jobs.on_duration_warning_threshold_exceeded": "a run is taking longer than its warning",
    "jobs.on_streaming_backlog_exceeded": "a stream's backlog is over its threshold",
}


def parse(body: bytes, *, content_type: str = "", headers=None, query=None) -> ParseResult:
    doc = need_object(load_json(body), "The body")
    event_type = need_text(doc, "event_type", "The body")
    if event_type in NOT_ACTED_ON:
        return ParseResult(
            ignored=f"{event_type}: {NOT_ACTED_ON[event_type]}, nothing to act on",
            format=SignalFormat.DATABRICKS,
        )
    if event_type not in ACTED_ON:
        if not event_type.startswith("jobs."):
            raise PayloadError(
                f"event_type is {event_type!r}: not a Databricks job notification "
                "(jobs.on_success, jobs.on_failure, ...)."
            )
        return ParseResult(
            ignored=f"{event_type}: not a notification the portal acts on",
            format=SignalFormat.DATABRICKS,
        )
    kind, severity, verb = ACTED_ON[event_type]
    job = need_object(doc.get("job"), "job")
    run = need_object(doc.get("run"), "run")
    job_id = need_text(job, "job_id", "job")
    run_id = need_text(run, "run_id", "run")
    task = doc.get("task") if isinstance(doc.get("task"), dict) else {}
    task_key = str(task.get("task_key") or "")
    workspace = str(doc.get("workspace_id") or "")
    name = str(job.get("name") or "")
    what = f"job {name} ({job_id})" if name else f"job {job_id}"
    if task_key:
        what = f"task {task_key} of {what}"
    return ParseResult(
        signals=[
            NormalisedSignal(
                kind=kind,
                severity=severity,
                observed_at=timezone.now(),  # the notification carries no time
                dedupe_key=dedupe_key("databricks", workspace, run_id, task_key, event_type),
                title=f"Databricks {what} {verb}",
                source_ref=f"job {job_id}",
                attributes={"job_id": job_id},
                details={
                    "event_type": event_type,
                    "workspace_id": workspace,
                    "job_id": job_id,
                    "job_name": name,
                    "run_id": run_id,
                    "parent_run_id": str(run.get("parent_run_id") or ""),
                    "task_key": task_key,
                    "default_kind": str(kind),
                },
            )
        ],
        format=SignalFormat.DATABRICKS,
    )
