"""Model cards: what a catalog model is for, where it fails, what it learned from, and how
risky it is, reviewed by a manager. Every change is a ModelCardRevision (append-only), the
audit of the card."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.append_only import AppendOnlyModel

from .base import CatalogModel


class RiskRating(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class CardStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    ARCHIVED = "archived", "Archived"


class CardAction(models.TextChoices):
    CREATED = "created", "Created"
    EDITED = "edited", "Edited"
    SUBMITTED = "submitted", "Submitted for review"
    APPROVED = "approved", "Approved"
    RETURNED = "returned", "Sent back to draft"
    ARCHIVED = "archived", "Archived"


# The fields an edit may set, in the order the form and the API list them.
CARD_FIELDS = ("intended_use", "limitations", "training_data", "risk_rating")


class ModelCard(models.Model):
    """One per catalog model. ``risk_rating`` blank: not rated yet."""

    catalog_model = models.OneToOneField(
        CatalogModel, on_delete=models.CASCADE, related_name="card"
    )
    intended_use = models.TextField(blank=True)
    limitations = models.TextField(blank=True)
    training_data = models.TextField(blank=True, help_text="A summary of the training data.")
    risk_rating = models.CharField(max_length=10, choices=RiskRating.choices, blank=True)
    review_status = models.CharField(
        max_length=12, choices=CardStatus.choices, default=CardStatus.DRAFT
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Model card of {self.catalog_model_id}"

    @property
    def is_high_risk(self) -> bool:
        return self.risk_rating == RiskRating.HIGH


class ModelCardRevision(AppendOnlyModel):
    """One change of a card: who, when, what, the changed fields (old -> new), a comment.
    Append-only: on PostgreSQL a trigger refuses UPDATE and DELETE (migration 0007)."""

    card = models.ForeignKey(ModelCard, on_delete=models.PROTECT, related_name="revisions")
    action = models.CharField(max_length=12, choices=CardAction.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_name = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(auto_now_add=True)
    changes = models.JSONField(default=dict, blank=True, help_text='{"field": ["old", "new"], ...}')
    comment = models.TextField(blank=True)

    append_only_name = "The model card history is"

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.card_id} {self.action} by {self.user_name}"
