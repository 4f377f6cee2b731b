"""The demo's model cards: a spread of risk and review states (fraud-detector high risk with
an approved card, so its PROD approvals need two approvers; churn-predictor in review;
demand-forecast a draft; transaction-screening-rules approved, medium). Idempotent: a model
that already has a card keeps it. Each card gets its revisions, as if written in the portal."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from .models import CardAction, CardStatus, CatalogModel, ModelCard, ModelCardRevision

DEMO_CARDS = {
    "fraud-detector": {
        "intended_use": "Score card payments for fraud in real time, before authorisation; "
        "scores above the threshold go to manual review, never to an automatic decline.",
        "limitations": "Trained on EU card-present and e-commerce payments: not validated for "
        "cross-border wallets or for merchants onboarded in the last 30 days.",
        "training_data": "18 months of labelled payments (chargebacks as positives), "
        "rebalanced 1:20; PII removed before feature extraction.",
        "risk_rating": "high",
        "review_status": CardStatus.APPROVED,
    },
    "churn-predictor": {
        "intended_use": "Monthly batch ranking of subscribers by churn risk for the retention "
        "team's outreach lists.",
        "limitations": "Not for pricing decisions; weak on customers with under 3 months of "
        "history.",
        "training_data": "24 monthly snapshots of the subscriber base with their churn in the "
        "following month.",
        "risk_rating": "medium",
        "review_status": CardStatus.IN_REVIEW,
    },
    "demand-forecast": {
        "intended_use": "Weekly demand per store and product family for replenishment.",
        "limitations": "",
        "training_data": "Three years of point-of-sale data.",
        "risk_rating": "low",
        "review_status": CardStatus.DRAFT,
    },
    "transaction-screening-rules": {
        "intended_use": "Sanctions and threshold screening of outgoing transfers.",
        "limitations": "Rules only: no fuzzy matching of names beyond the listed aliases.",
        "training_data": "None (rule-based); the rule set is versioned in the registry.",
        "risk_rating": "medium",
        "review_status": CardStatus.APPROVED,
    },
}


def _user(username: str):
    return get_user_model().objects.filter(username=username).first()


def seed_model_cards(*, author: str = "dana", reviewer: str = "maya") -> list[str]:
    """Write the demo cards of the models in the catalog that have none; the names written."""
    writer, manager = _user(author), _user(reviewer)
    written = []
    for name, values in DEMO_CARDS.items():
        model = CatalogModel.objects.filter(name=name).first()
        if model is None or ModelCard.objects.filter(catalog_model=model).exists():
            continue
        with transaction.atomic():
            fields = {k: v for k, v in values.items() if k != "review_status"}
            status = values["review_status"]
            reviewed = status == CardStatus.APPROVED
            card = ModelCard.objects.create(
                catalog_model=model,
                review_status=status,
                updated_by=writer,
                reviewed_by=manager if reviewed else None,
                reviewed_at=timezone.now() if reviewed else None,
                **fields,
            )
            steps = [(CardAction.CREATED, writer, {k: ["", v] for k, v in fields.items()})]
            if status in (CardStatus.IN_REVIEW, CardStatus.APPROVED):
                steps.append(
                    (CardAction.SUBMITTED, writer, {"review_status": ["draft", "in_review"]})
                )
            if reviewed:
                steps.append(
                    (CardAction.APPROVED, manager, {"review_status": ["in_review", status]})
                )
            for action, user, changes in steps:
                ModelCardRevision.objects.create(
                    card=card,
                    action=action,
                    user=user,
                    user_name=(user.get_full_name() or user.get_username()) if user else "demo",
                    changes=changes,
                )
        written.append(name)
    return written
