"""Thin Celery tasks: ids in, one service call, a summary out.

Services queue these by name (``core.tasks``), so this module imports the services and never
the other way round.
"""

from celery import shared_task

from . import services
from .models import AdoProject, RunRequest

BUSY_RETRY_SECONDS = 15


@shared_task(name="pipelines.sync_project", acks_late=True)
def sync_project(project_id: int, full: bool = False) -> dict:
    """Incremental (or full) sync of one ADO project; a sync already running makes it a no-op."""
    project = AdoProject.objects.filter(pk=project_id, enabled=True).first()
    if project is None:
        return {"skipped": "project missing or disabled"}
    return services.project_sync(project=project, full=full).as_dict()


@shared_task(name="pipelines.refresh_run", bind=True, acks_late=True, max_retries=20)
def refresh_run(self, project_id: int, build_id: int) -> dict:
    """Re-read one run (a service hook's trigger); waits its turn while the project syncs."""
    project = AdoProject.objects.filter(pk=project_id, enabled=True).first()
    if project is None:
        return {"skipped": "project missing or disabled"}
    result = services.run_refresh(project=project, build_id=build_id)
    if result.skipped:
        raise self.retry(countdown=BUSY_RETRY_SECONDS)
    return result.as_dict()


# Exactly once in effect: each attempt claims the request and a retry first looks in ADO for
# the run it may have queued (pipelines/services/run_requests.py), so a redelivery is safe.
@shared_task(name="pipelines.send_run_request", acks_late=True)
def send_run_request(request_id: int) -> dict:
    request = RunRequest.objects.filter(pk=request_id).select_related("pipeline__project").first()
    if request is None:
        return {"skipped": "request missing"}
    request = services.run_request_send(request=request)
    return {"status": request.status, "error": request.error, "run": request.run_id}


@shared_task(name="pipelines.sweep_run_requests")
def sweep_run_requests() -> dict:
    return {"queued": services.run_requests_sweep()}
