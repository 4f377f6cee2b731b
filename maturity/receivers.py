"""Re-assess a model when what its maturity rests on changes: its runs (and their stages),
its approvals, its registered versions. Connected in ``MaturityConfig.ready``."""

from __future__ import annotations

import logging

from django.db import transaction

from approvals.models import ApprovalRequest
from pipelines.models import PipelineRun
from registry.models import RegisteredModel

logger = logging.getLogger(__name__)


def queue_assessment(catalog_model_ids) -> None:
    """After commit, queue one assessment of these models; a broker that is down is logged
    (the nightly run catches up), never raised into the sync that sent the signal."""
    ids = sorted({pk for pk in catalog_model_ids if pk})
    if not ids:
        return

    def send() -> None:
        from .tasks import assess_models

        try:
            assess_models.apply_async(args=(ids,), retry=False, ignore_result=True)
        except Exception as exc:  # broker down
            logger.warning("could not queue the maturity assessment of %s: %s", ids, exc)

    transaction.on_commit(send)


def on_runs_changed(sender, run_ids=(), **kwargs) -> None:
    queue_assessment(
        PipelineRun.objects.filter(pk__in=list(run_ids))
        .values_list("pipeline__catalog_model_id", flat=True)
        .distinct()
    )


def on_approval_saved(sender, instance: ApprovalRequest, **kwargs) -> None:
    queue_assessment([instance.catalog_model_id])


def on_registered_models_changed(sender, source=None, names=(), **kwargs) -> None:
    queue_assessment(
        RegisteredModel.objects.filter(source=source, name__in=list(names))
        .values_list("catalog_model_id", flat=True)
        .distinct()
    )
