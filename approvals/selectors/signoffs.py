"""Post-deployment sign-offs as the inbox, the approval page and the API read them."""

from __future__ import annotations

from django.db.models import QuerySet

from ..models import ApprovalRequest, SignOff, SignOffStatus


def signoff_list(*, status: str = "") -> QuerySet[SignOff]:
    """Sign-offs, open ones oldest first (what waits longest), else newest first."""
    rows = SignOff.objects.select_related("run", "catalog_model", "model_version", "approval")
    if status:
        rows = rows.filter(status=status)
    if status == SignOffStatus.OPEN:
        return rows.order_by("opened_at", "pk")
    return rows.order_by("-opened_at", "-pk")


def signoffs_open() -> list[SignOff]:
    return list(signoff_list(status=SignOffStatus.OPEN)[:50])


def signoffs_for_approval(approval: ApprovalRequest) -> list[SignOff]:
    """The sign-offs of the PROD deployment this approval let through."""
    return list(signoff_list().filter(approval=approval))
