"""Each ADO project's beat entry: its incremental sync every ``sync_interval_seconds``
(kept in step with the project by the post_save / post_delete handlers in apps.py)."""

from __future__ import annotations

from core.sync import periodic_task_ensure, periodic_tasks_remove

from ..models import AdoProject


def _schedule_name(project: AdoProject) -> str:
    return f"pipelines sync: {project.name}"


def project_schedule_ensure(*, project: AdoProject) -> None:
    periodic_task_ensure(
        name=_schedule_name(project),
        task="pipelines.sync_project",
        every_seconds=project.sync_interval_seconds,
        kwargs={"project_id": project.pk},
        enabled=project.enabled,
        description=f"Incremental sync of the ADO project '{project.name}'.",
    )


def project_schedule_remove(*, project: AdoProject) -> None:
    periodic_tasks_remove(_schedule_name(project))
