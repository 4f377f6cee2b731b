"""Two evidence sections of the approval page (``APPROVALS_DETAIL_SECTIONS``): the model's
card beside every approval, and, for a run requested as a rollback, what it replaces and why.
The same facts go into the approval detail API (``card_summary`` / ``rollback_summary``)."""

from __future__ import annotations

from django.urls import reverse

from pipelines.models import RunRequest
from registry import selectors as registry_selectors
from registry.sections import Section


def rollback_request_of(approval) -> RunRequest | None:
    """The rollback request of the approval's run, if it was requested as one."""
    if not approval.run_id:
        return None
    return (
        RunRequest.objects.filter(run_id=approval.run_id, rollback_to__isnull=False)
        .select_related("rollback_of", "rollback_to", "requested_by")
        .order_by("-requested_at")
        .first()
    )


def rollback_summary(approval) -> dict | None:
    request = rollback_request_of(approval)
    if request is None:
        return None
    by = request.requested_by
    return {
        "replaces": request.rollback_of.version if request.rollback_of else None,
        "restores": request.rollback_to.version,
        "reason": request.note,
        "requested_by": (by.get_full_name() or by.get_username()) if by else "",
        "requested_at": request.requested_at,
    }


def card_summary(approval) -> dict | None:
    card = registry_selectors.card_for(approval.catalog_model) if approval.catalog_model else None
    if card is None:
        return None
    return {
        "risk_rating": card.risk_rating,
        "review_status": card.review_status,
        "reviewed_by": card.reviewed_by.get_username() if card.reviewed_by else "",
        "reviewed_at": card.reviewed_at,
        "intended_use": card.intended_use,
        "limitations": card.limitations,
    }


def approval_rollback(request, approval) -> Section | None:
    """ "Rollback: replaces v3 with v2, because ... (requested by X)"."""
    summary = rollback_summary(approval)
    if summary is None:
        return None
    return Section("Rollback", "approvals/_rollback.html", {"rollback": summary}, order=2)


def approval_card(request, approval) -> Section | None:
    """The model's card: risk, review status, intended use, limitations, a link."""
    if approval.catalog_model is None:
        return None
    card = registry_selectors.card_for(approval.catalog_model)
    return Section(
        "Model card",
        "approvals/_model_card.html",
        {
            "card": card,
            "catalog_model": approval.catalog_model,
            "card_url": reverse(
                "registry:model-card", kwargs={"name": approval.catalog_model.name}
            ),
            "high_risk_prod": approval.high_risk_rule_applies,
            "required": approval.required_approvers,
        },
        order=4,
    )
