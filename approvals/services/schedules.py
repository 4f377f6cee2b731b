"""What queues an approvals sync: beat's periodic entry point (one task per enabled project)
and pipelines' ``hook_received`` signal (an ADO service hook about an approval). Both queue by
task name (``core.tasks``), so this module never imports the tasks that import it."""

from __future__ import annotations

from core.tasks import enqueue
from pipelines.models import AdoProject

SYNC_PROJECT_TASK = "approvals.sync_project"
REFRESH_APPROVAL_TASK = "approvals.refresh_approval"


def projects_sync_enqueue() -> list[int]:
    """Beat's entry point: one approvals sync task per enabled ADO project."""
    ids = list(AdoProject.objects.filter(enabled=True).values_list("pk", flat=True))
    for project_id in ids:
        enqueue(SYNC_PROJECT_TASK, project_id)
    return ids


def hook_received(sender, *, project: AdoProject, event_type: str, resource: dict, **kwargs):
    """pipelines' hook endpoint accepted an approval event: re-read that approval (or, when
    the payload names none, poll the project). The payload itself is never trusted. A broker
    that is down only logs (the hook is answered, and the next poll reads the approval)."""
    if not event_type.startswith("ms.vss-pipelinechecks-events."):
        return
    approval_id = str(((resource or {}).get("approval") or {}).get("id") or "")
    if approval_id:
        enqueue(REFRESH_APPROVAL_TASK, project.pk, approval_id)
    else:
        enqueue(SYNC_PROJECT_TASK, project.pk)
