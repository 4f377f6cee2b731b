"""Mark a model for re-assessment when what its maturity rests on changes: its runs (and
their stages), its approvals, its registered versions, its operations episodes when they
close. Connected in ``MaturityConfig.ready``.

The mark is a column written in the sender's own transaction, not a task published to the
broker: a sync or a decision never waits on (or fails with) the broker, a burst of changes to
one model costs one assessment, and nothing is lost while the broker is down. Beat's
``maturity.assess_changed`` assesses the marked models every minute.
"""

from __future__ import annotations

from django.utils import timezone

from approvals.models import ApprovalRequest
from operations.models import Episode, EpisodeState
from pipelines.models import PipelineRun
from registry.models import RegisteredModel

from .models import ModelMaturity


def mark_stale(catalog_model_ids) -> int:
    ids = sorted({pk for pk in catalog_model_ids if pk})
    if not ids:
        return 0
    now = timezone.now()
    ModelMaturity.objects.bulk_create(
        [ModelMaturity(catalog_model_id=pk, stale_since=now) for pk in ids],
        ignore_conflicts=True,
    )
    # Always the newest time: an assessment clears only marks older than its own start.
    ModelMaturity.objects.filter(pk__in=ids).update(stale_since=now)
    return len(ids)


def on_runs_changed(sender, run_ids=(), **kwargs) -> None:
    mark_stale(
        PipelineRun.objects.filter(pk__in=list(run_ids))
        .values_list("pipeline__catalog_model_id", flat=True)
        .distinct()
    )


def on_approval_saved(sender, instance: ApprovalRequest, **kwargs) -> None:
    mark_stale([instance.catalog_model_id])


def on_registered_models_changed(sender, source=None, names=(), **kwargs) -> None:
    mark_stale(
        RegisteredModel.objects.filter(source=source, name__in=list(names))
        .values_list("catalog_model_id", flat=True)
        .distinct()
    )


def on_episode_saved(sender, instance: Episode, update_fields=None, **kwargs) -> None:
    """An episode that closed (promoted to PROD, held, failed...) may change levels 4 and 5;
    it closes on beat's tick, after the approval or run that ended it was marked."""
    if instance.state != EpisodeState.CLOSED:
        return
    if update_fields is not None and "state" not in update_fields:
        return
    mark_stale([instance.catalog_model_id])
