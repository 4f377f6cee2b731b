"""Follow episodes when what they wait for changes: a run (pipelines' ``runs_changed``), a
version (the registry's ``registered_models_changed``), an approval (saved). Connected in
``OperationsConfig.ready``; each receiver only finds the open episodes concerned and queues
the follow task after commit, so a sync never waits on this app (beat's ``operations.tick``
follows every open episode anyway)."""

from __future__ import annotations

from django.db.models import Q
from django.db.models.signals import post_save

from approvals.models import ApprovalRequest
from core.tasks import enqueue_after_commit
from pipelines.signals import runs_changed
from registry.models import RegisteredModel
from registry.signals import registered_models_changed

from .models import OPEN_STATES, Episode, EpisodeState

FOLLOW_TASK = "operations.follow_episodes"


def _follow(ids) -> None:
    ids = sorted(set(ids))
    if ids:
        enqueue_after_commit(FOLLOW_TASK, ids)


def _open():
    return Episode.objects.filter(state__in=OPEN_STATES)


def on_runs_changed(sender, run_ids=(), **kwargs) -> None:
    run_ids = list(run_ids)
    _follow(
        _open()
        .filter(
            Q(run_id__in=run_ids)
            | Q(release_run_id__in=run_ids)
            | Q(run_request__run_id__in=run_ids)
            | Q(release_request__run_id__in=run_ids)
            | Q(state__in=(EpisodeState.REQUESTED, EpisodeState.RELEASING))
        )
        .values_list("pk", flat=True)
    )


def on_registered_models_changed(sender, source=None, names=(), **kwargs) -> None:
    models = RegisteredModel.objects.filter(source=source, name__in=list(names)).values_list(
        "catalog_model_id", flat=True
    )
    _follow(
        _open()
        .filter(state=EpisodeState.EVALUATING, catalog_model_id__in=list(models))
        .values_list("pk", flat=True)
    )


def on_approval_saved(sender, instance: ApprovalRequest, **kwargs) -> None:
    if not instance.catalog_model_id:
        return
    _follow(
        _open()
        .filter(catalog_model_id=instance.catalog_model_id)
        .filter(
            Q(qa_approval=instance)
            | Q(prod_approval=instance)
            | Q(release_run_id=instance.run_id, release_run__isnull=False)
            | Q(state=EpisodeState.RELEASING)
        )
        .values_list("pk", flat=True)
    )


def connect() -> None:
    runs_changed.connect(on_runs_changed, dispatch_uid="operations.runs_changed")
    registered_models_changed.connect(
        on_registered_models_changed, dispatch_uid="operations.registered_models_changed"
    )
    post_save.connect(
        on_approval_saved, sender=ApprovalRequest, dispatch_uid="operations.approval_saved"
    )
