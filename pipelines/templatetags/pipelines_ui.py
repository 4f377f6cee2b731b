"""Template helpers of the pipelines pages: run and stage statuses, durations, targets."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone

from core.templatetags.portal_ui import STATUS_COLOURS, status_badge, when_short

from ..models import PipelineRun, RunResult, RunStage, RunState
from ..selectors import trigger_label as _trigger_label

register = template.Library()

RUN_RESULTS = {
    RunResult.SUCCEEDED: ("succeeded", "succeeded"),
    RunResult.PARTIALLY_SUCCEEDED: ("pending", "partially succeeded"),
    RunResult.FAILED: ("failed", "failed"),
    RunResult.CANCELED: ("canceled", "canceled"),
}
STAGE_RESULTS = {
    "succeeded": ("succeeded", "succeeded"),
    "succeededwithissues": ("pending", "succeeded with issues"),
    "partiallysucceeded": ("pending", "partially succeeded"),
    "failed": ("failed", "failed"),
    "canceled": ("canceled", "canceled"),
    "abandoned": ("canceled", "abandoned"),
    "skipped": ("skipped", "skipped"),
}
TARGET_LABELS = {
    "aks": "AKS",
    "databricks": "Databricks",
    "databricks-job": "Databricks job",
    "databricks_job": "Databricks job",
    "default": "default target",
}


def run_is_waiting(run: PipelineRun) -> bool:
    waiting = getattr(run, "is_waiting", None)
    if waiting is None:
        waiting = any(s.waiting_for_approval for s in run.stages.all())
    return bool(waiting) and run.is_running


def run_status(run: PipelineRun) -> tuple[str, str]:
    """(status key for the badge colour, label) of a run."""
    if run.state == RunState.IN_PROGRESS:
        return (
            ("waiting", "waiting for approval") if run_is_waiting(run) else ("running", "running")
        )
    if run.state == RunState.CANCELING:
        return "running", "canceling"
    if run.state == RunState.COMPLETED:
        return RUN_RESULTS.get(run.result, ("unknown", run.result or "completed"))
    return "unknown", "unknown"


def stage_status(stage: RunStage) -> tuple[str, str]:
    if stage.waiting_for_approval:
        return "waiting", "waiting for approval"
    state = (stage.state or "").lower()
    if state == "inprogress":
        return "running", "running"
    if state == "completed":
        return STAGE_RESULTS.get((stage.result or "").lower(), ("unknown", stage.result or "done"))
    return "notstarted", "not started"


@register.simple_tag
def run_badge(run: PipelineRun):
    key, label = run_status(run)
    return status_badge(key, label)


@register.simple_tag
def stage_badge(stage: RunStage):
    key, label = stage_status(stage)
    return status_badge(key, label)


@register.filter
def run_status_key(run: PipelineRun) -> str:
    return run_status(run)[0]


@register.inclusion_tag("pipelines/_stage_strip.html")
def stage_strip(run: PipelineRun):
    """The run's stages as a strip of cells coloured by state; QA and PROD cells labelled so."""
    cells = []
    for stage in run.stages.all():
        key, label = stage_status(stage)
        colour = STATUS_COLOURS.get(key, "secondary")
        cells.append(
            {
                "stage": stage,
                "key": key,
                "label": label,
                "colour": colour,
                "text": stage.environment or stage.name,
                "is_environment": bool(stage.environment),
            }
        )
    return {"run": run, "cells": cells}


def _short(delta: dt.timedelta) -> str:
    seconds = int(max(delta.total_seconds(), 0))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def duration(obj) -> str:
    """How long a run or stage took; for one still going, how long so far."""
    started = getattr(obj, "started_at", None)
    finished = getattr(obj, "finished_at", None)
    if not started:
        return "—"
    if finished:
        return _short(finished - started)
    return f"{_short(timezone.now() - started)} so far"


# The pipelines pages load this library alone; the filter is portal_ui's.
register.filter("when_short", when_short)


@register.filter
def target_label(value: str) -> str:
    return TARGET_LABELS.get((value or "").lower(), value or "")


@register.filter
def trigger_label(run_or_value) -> str:
    if isinstance(run_or_value, PipelineRun):
        return _trigger_label(run_or_value.trigger or run_or_value.reason) or "—"
    return _trigger_label(run_or_value) or "—"
