"""Thin Celery tasks: primitive ids in, look the row up, call one service.

Services queue these by name (``core.tasks.enqueue``) and never import this module, so it
imports them at the top (no cycle)."""

from celery import shared_task

from pipelines.models import AdoProject

from . import services


@shared_task(
    name="approvals.deliver_decision",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # transient failures retry for as long as ADO is away; none are lost
)
def deliver_decision(self, message_id: int) -> dict:
    """Deliver one decision to ADO; retried with backoff (Retry-After honoured)."""
    outcome = services.outbox_deliver(message_id=message_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return {"state": outcome.state, "detail": outcome.detail}


@shared_task(name="approvals.sweep_outbox", acks_late=True)
def sweep_outbox() -> dict:
    return {"requeued": services.outbox_sweep()}


@shared_task(name="approvals.sync_all_projects", acks_late=True)
def sync_all_projects() -> dict:
    return {"projects": services.projects_sync_enqueue()}


@shared_task(name="approvals.sync_project", acks_late=True)
def sync_project_approvals(project_id: int) -> dict:
    project = AdoProject.objects.filter(pk=project_id, enabled=True).first()
    if project is None:
        return {"skipped": "project missing or disabled"}
    return services.project_approvals_sync(project=project).as_dict()


@shared_task(name="approvals.refresh_approval", acks_late=True)
def refresh_approval(project_id: int, approval_id: str) -> dict:
    project = AdoProject.objects.filter(pk=project_id, enabled=True).first()
    if project is None:
        return {"skipped": "project missing or disabled"}
    return services.approval_refresh(project=project, approval_id=approval_id).as_dict()


@shared_task(name="approvals.notify_new", acks_late=True)
def notify_new_approvals(approval_ids: list[int]) -> dict:
    return services.notifications_send_new(approval_ids=approval_ids)


@shared_task(name="approvals.notify_expiring", acks_late=True)
def notify_expiring_approvals() -> dict:
    return services.notifications_send_expiring()


@shared_task(name="approvals.evaluate_check", acks_late=True, reject_on_worker_lost=True)
def evaluate_check(request_id: int) -> dict:
    """Evaluate one automated check ADO called (once; a repeat does nothing)."""
    evaluation = services.check_evaluate(request_id=request_id)
    return {"evaluation": evaluation.pk if evaluation else None}


@shared_task(
    name="approvals.send_check_callback",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def send_check_callback(self, callback_id: int) -> dict:
    """Send one check's result to ADO; retried with backoff while ADO is away."""
    outcome = services.check_callback_deliver(callback_id=callback_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return {"state": outcome.state, "detail": outcome.detail}


@shared_task(name="approvals.sweep_checks", acks_late=True)
def sweep_checks() -> dict:
    return services.checks_sweep()


@shared_task(name="approvals.notify_signoff", acks_late=True)
def notify_signoff(signoff_id: int) -> dict:
    return services.signoff_notify(signoff_id=signoff_id)
