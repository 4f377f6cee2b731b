"""The automated check's evaluations, for the approval page's "Automated check" section."""

from __future__ import annotations

from django.db.models import Q

from ..models import ApprovalRequest, CheckEvaluation

EVALUATIONS_SHOWN = 10


def check_evaluations_for(approval: ApprovalRequest) -> list[CheckEvaluation]:
    """The check's evaluations for this approval's run and environment, newest first, with
    their request and callback (by the mirrored run, or by ADO's run id from the body or the
    BuildId header when the run was not mirrored yet)."""
    if not approval.environment or not (approval.run_id or approval.build_id):
        return []
    same_run = Q()
    if approval.run_id:
        same_run |= Q(request__run_id=approval.run_id)
    if approval.build_id:
        same_run |= Q(request__ado_run_id=str(approval.build_id))
        same_run |= Q(request__build_id=str(approval.build_id))
    return list(
        CheckEvaluation.objects.filter(same_run, request__environment=approval.environment)
        .select_related("request", "callback")
        .order_by("-evaluated_at", "-pk")[:EVALUATIONS_SHOWN]
    )
