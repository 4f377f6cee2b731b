"""The sync bookkeeping every mirror shares."""

import json
from dataclasses import dataclass, field

import pytest
from django_celery_beat.models import PeriodicTask

from core.sync import (
    Counts,
    CountsWithDeleted,
    SyncResultMixin,
    periodic_task_ensure,
    periodic_tasks_remove,
)


@dataclass
class ExampleResult(SyncResultMixin):
    UNREPORTED = frozenset({"changed"})

    project: str
    mode: str
    runs: Counts = field(default_factory=Counts)
    models: CountsWithDeleted = field(default_factory=CountsWithDeleted)
    duration_seconds: float = 0.0
    error: str = ""
    skipped: str = ""
    changed: set = field(default_factory=set)


def test_a_result_reports_its_fields_in_order_with_counts_and_a_rounded_duration():
    result = ExampleResult("mlops", "full", duration_seconds=1.23456, changed={1})
    result.runs.created += 2
    result.models.deleted += 1
    assert list(result.as_dict()) == [
        "project",
        "mode",
        "runs",
        "models",
        "duration_seconds",
        "error",
        "skipped",
    ]
    assert result.as_dict()["runs"] == {"created": 2, "updated": 0, "unchanged": 0}
    assert result.as_dict()["models"] == {"created": 0, "updated": 0, "deleted": 1, "unchanged": 0}
    assert result.as_dict()["duration_seconds"] == 1.235
    assert result.ok
    assert result.models.changed == 1 and result.runs.changed == 2


def test_an_error_or_a_skip_is_not_ok():
    assert not ExampleResult("p", "full", error="boom").ok
    assert not ExampleResult("p", "full", skipped="busy").ok


@pytest.mark.django_db
def test_a_beat_entry_is_created_updated_and_removed():
    periodic_task_ensure(
        name="example sync: a",
        task="pipelines.sync_project",
        every_seconds=3,
        kwargs={"project_id": 1},
        enabled=True,
        description="Example.",
    )
    entry = PeriodicTask.objects.get(name="example sync: a")
    assert entry.interval.every == 10  # at least min_seconds
    assert json.loads(entry.kwargs) == {"project_id": 1}
    periodic_task_ensure(
        name="example sync: a",
        task="pipelines.sync_project",
        every_seconds=60,
        kwargs={"project_id": 1},
        enabled=False,
        description="Example.",
    )
    entry.refresh_from_db()
    assert (entry.interval.every, entry.enabled) == (60, False)
    assert PeriodicTask.objects.filter(name="example sync: a").count() == 1
    periodic_tasks_remove("example sync: a", "never existed")
    assert not PeriodicTask.objects.filter(name="example sync: a").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["abstract model (AdoProject)", "own columns (ApprovalSync)"])
def test_the_bookkeeping_records_start_success_and_failure_in_its_own_columns(kind):
    from approvals.models import ApprovalSync
    from tests.pipelines.factories import AdoProjectFactory

    project = AdoProjectFactory(name="books", enabled=True, last_sync_succeeded_at=None)
    record = (
        project if kind.startswith("abstract") else ApprovalSync.objects.create(project=project)
    )
    names = record.SYNC_FIELDS
    started = record.sync_started()
    assert getattr(type(record).objects.get(pk=record.pk), names.started) == started

    record.sync_failed("ConnectionError: " + "x" * 5000)
    stored = type(record).objects.get(pk=record.pk)
    assert len(getattr(stored, names.error)) == 2000  # kept short: it is shown to operators
    status = stored.sync_status("books", system="Azure DevOps")
    assert status.failing and status.last_success_at is None
    assert status.reason == "Azure DevOps could not be reached"

    record.sync_succeeded({"created": 1})
    stored = type(record).objects.get(pk=record.pk)
    assert getattr(stored, names.stats) == {"created": 1}
    assert not stored.sync_status("books", system="Azure DevOps").failing
    if kind.startswith("abstract"):  # the columns another writer owns are left alone
        assert stored.enabled is True and stored.name == "books"
