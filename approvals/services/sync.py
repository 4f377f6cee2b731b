"""The sync from ADO: the poll of a project's approvals (with its history on the first one),
the re-read of one approval a service hook names, and their bookkeeping (``ApprovalSync``,
through ``core.models.SyncBookkeepingMixin``). Each approval is applied by ``mirror``."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.tasks import enqueue_after_commit
from pipelines.models import AdoProject
from registry.services import artifact_check_queue

from .. import client as ado
from ..models import (
    OPEN_STATUSES,
    ApprovalRequest,
    ApprovalStatus,
    ApprovalSync,
    AuditAction,
    DecidedIn,
)
from .audit import SYSTEM_ACTOR, audit_record
from .mirror import SyncResult, ado_when, approval_apply

logger = logging.getLogger(__name__)


def project_approvals_sync(
    *, project: AdoProject, client: ado.AdoClient | None = None, history: bool = False
) -> SyncResult:
    """Poll ADO's pending approvals (``state=pending&$expand=steps``), then re-read the ones
    the portal still holds open that ADO no longer lists, to learn how they ended. The first
    successful sync of a project also imports its recent history (``_history_import``), and
    so does ``history=True`` (``sync_approvals --history``: a project synced before that)."""
    result = SyncResult(project=project.name, mode="poll")
    first_sync = not ApprovalSync.objects.filter(
        project=project, last_succeeded_at__isnull=False
    ).exists()
    state, _ = ApprovalSync.objects.get_or_create(project=project)
    state.sync_started()
    client = client or ado.sync_client(project)
    try:
        _poll(project, client, result)
        if first_sync or history:
            _history_import(project, client, result)
    except ado.AdoError as exc:
        result.error = f"{exc.status or ''} {exc}".strip()[:2000]
        logger.warning("approvals sync of %s failed: %s", project.name, result.error)
    if result.error:
        state.sync_failed(result.error)
    else:
        state.sync_succeeded(result.as_dict())
    _notify_new(result)
    return result


def _poll(project: AdoProject, client, result: SyncResult) -> None:
    """The pending approvals, then the ones held open here that ADO stopped listing."""
    pending = list(client.list_approvals(state="pending", expand_steps=True))
    seen = {str(a.get("id", "")).lower() for a in pending}
    held_open = [
        ado_id
        for ado_id in ApprovalRequest.objects.filter(
            project=project, ado_status__in=OPEN_STATUSES
        ).values_list("ado_id", flat=True)
        if ado_id.lower() not in seen
    ]
    ended = list(client.list_approvals(approval_ids=held_open, expand_steps=True))
    for data in pending + ended:
        if data.get("id"):
            _apply_counted(project, data, client, result)
    returned = {str(a.get("id", "")).lower() for a in ended}
    for ado_id in held_open:
        if ado_id.lower() not in returned:
            _gone_unless_found(project, ado_id, client, result)
    ApprovalRequest.objects.filter(project=project, ado_id__in=seen | returned).update(
        last_synced_at=timezone.now()
    )


def _history_import(project: AdoProject, client, result: SyncResult) -> None:
    """On a project's first successful sync, the approvals ADO decided in the last
    APPROVALS_HISTORY_DAYS days join the mirror (closed, decided in ADO), so the "Decided" tab
    starts with the project's history rather than empty. ADO's query has no date filter: it
    is asked for every state (no ``state``) and the window is applied here. Upserts by id,
    so a failed first sync that is run again imports each approval once."""
    cutoff = timezone.now() - timedelta(days=settings.APPROVALS_HISTORY_DAYS)
    for data in client.list_approvals(expand_steps=True):
        status = str(data.get("status") or "")
        if not data.get("id") or status in OPEN_STATUSES or status not in ApprovalStatus.values:
            continue
        decided_at = ado_when(data.get("lastModifiedOn")) or ado_when(data.get("createdOn"))
        if decided_at is None or decided_at < cutoff:
            continue
        known = ApprovalRequest.objects.filter(
            project=project, ado_id=str(data["id"]).lower()
        ).exists()
        _apply_counted(project, data, client, result)
        result.imported += 0 if known else 1


def _gone_unless_found(project, ado_id: str, client, result: SyncResult) -> None:
    """ADO no longer lists an approval the portal holds open: ask for it by id, and if ADO
    answers 404 (its run was deleted), close it here as gone, so it does not wait forever."""
    try:
        data = client.get_approval(ado_id, expand_steps=True)
    except ado.AdoNotFound:
        approval_gone(project=project, ado_id=ado_id)
        result.closed_in_ado += 1
        return
    _apply_counted(project, data, client, result)


def approval_gone(*, project: AdoProject, ado_id: str) -> None:
    with transaction.atomic():
        request = (
            ApprovalRequest.objects.select_for_update(of=("self",))
            .filter(project=project, ado_id=ado_id)
            .first()
        )
        if request is None or request.ado_status not in OPEN_STATUSES:
            return
        request.ado_status = ApprovalStatus.UNDEFINED
        if request.status in OPEN_STATUSES:
            request.status = ApprovalStatus.UNDEFINED
            request.decided_at = timezone.now()
            request.decided_in = DecidedIn.ADO
        request.save()
        audit_record(
            action=AuditAction.APPROVAL_CHANGED_IN_ADO,
            actor_name=SYSTEM_ACTOR,
            approval=request,
            message="Azure DevOps no longer has this approval (404): its run was deleted or "
            "moved; nothing is left to decide.",
            detail={"ado_status": "gone"},
        )


def approval_refresh(
    *, project: AdoProject, approval_id: str, client: ado.AdoClient | None = None
) -> SyncResult:
    """Re-read one approval (what an approval-pending / -completed service hook asks for)."""
    result = SyncResult(project=project.name, mode="one")
    client = client or ado.sync_client(project)
    try:
        data = client.get_approval(approval_id, expand_steps=True)
        _apply_counted(project, data, client, result)
    except ado.AdoNotFound:
        result.error = f"approval {approval_id} not found in ADO"
    except ado.AdoError as exc:
        result.error = f"{exc.status or ''} {exc}".strip()[:2000]
    _notify_new(result)
    return result


def _notify_new(result: SyncResult) -> None:
    if result.new_ids and settings.APPROVALS_NOTIFY:
        enqueue_after_commit("approvals.notify_new", list(result.new_ids))
    if result.new_ids:
        # The binary of a version now waiting for approval is checked at once, not at the
        # next hourly sweep (docs/artifactory.md).
        artifact_check_queue(
            version_ids=list(
                ApprovalRequest.objects.filter(pk__in=result.new_ids).values_list(
                    "model_version_id", flat=True
                )
            )
        )


def _apply_counted(project, data: dict, client, result: SyncResult) -> None:
    outcome = approval_apply(project=project, data=data, client=client, result=result)
    if outcome == "created":
        result.created += 1
    elif outcome == "unchanged":
        result.unchanged += 1
    else:
        result.updated += 1
        if outcome == "closed":
            result.closed_in_ado += 1
    if outcome == "created":
        request = ApprovalRequest.objects.filter(
            project=project, ado_id=str(data["id"]).lower()
        ).first()
        if request is not None:
            result.new_ids.append(request.pk)
