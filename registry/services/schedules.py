"""The beat entries of a registry source (kept in line by registry.apps' model signals)."""

from __future__ import annotations

from core.sync import periodic_task_ensure, periodic_tasks_remove

from ..models import RegistrySource

SYNC_TASK = "registry.sync_source"


def _schedule_names(source: RegistrySource) -> tuple[str, str]:
    return f"registry sync: {source.name}", f"registry full sweep: {source.name}"


def source_schedule_ensure(*, source: RegistrySource) -> None:
    """Keep the source's two beat entries (incremental and full sweep) in line with the source."""
    incremental, full_sweep = _schedule_names(source)
    for name, every, full in (
        (incremental, source.sync_interval_seconds, False),
        (full_sweep, source.full_sync_interval_seconds, True),
    ):
        periodic_task_ensure(
            name=name,
            task=SYNC_TASK,
            every_seconds=every,
            kwargs={"source_id": source.pk, "full": full},
            enabled=source.enabled,
            description=f"Sync of the MLflow registry source '{source.name}'.",
        )


def source_schedule_remove(*, source: RegistrySource) -> None:
    periodic_tasks_remove(*_schedule_names(source))
