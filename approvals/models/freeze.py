"""Freeze windows: when promotions to an environment are denied (a change freeze) or, for
allow windows, the only times they are allowed (a release window). Evaluated by
``approvals.freeze``; enforced as the ``freeze_window`` gate (services.freeze)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from pipelines.models import Environment

from .. import freeze


class FreezeKind(models.TextChoices):
    DENY = freeze.DENY, "Deny (frozen inside)"
    ALLOW = freeze.ALLOW, "Allow (open only inside)"


class FreezeScope(models.TextChoices):
    ALL = freeze.ALL_ENVIRONMENTS, "All environments"
    QA = Environment.QA.value, "QA"
    PROD = Environment.PROD.value, "PROD"


class FreezeWindow(models.Model):
    """One window: its first occurrence (``dtstart`` for ``duration_minutes``), repeated by
    ``rrule`` (RFC 5545, blank: once), read as wall-clock time in ``timezone``; scoped to an
    environment (or all), optionally one team and optionally one catalog model."""

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=FreezeKind.choices, default=FreezeKind.DENY)
    reason = models.TextField(blank=True, help_text="Shown with every refusal it causes.")
    environment = models.CharField(
        max_length=10, choices=FreezeScope.choices, help_text="QA, PROD or all."
    )
    team = models.CharField(max_length=100, blank=True, help_text="Blank: every team.")
    catalog_model = models.ForeignKey(
        "registry.CatalogModel",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="freeze_windows",
        help_text="Blank: every model.",
    )
    dtstart = models.DateTimeField(help_text="When the first occurrence starts.")
    duration_minutes = models.PositiveIntegerField(help_text="How long each occurrence lasts.")
    rrule = models.CharField(
        max_length=500,
        blank=True,
        help_text="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=FR. Blank: once.",
    )
    timezone = models.CharField(
        max_length=64, default="UTC", help_text="IANA zone the rule is read in."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["environment", "name", "pk"]
        indexes = [models.Index(fields=["active", "environment"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(duration_minutes__gt=0),
                name="approvals_freeze_duration_positive",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display().split(' ')[0]} window {self.name!r} ({self.environment})"

    def save(self, *args, **kwargs):
        """Validated on every save (forms, the API, the admin, code): the rule, the zone."""
        self.full_clean(exclude=["created_by", "updated_by"])
        super().save(*args, **kwargs)

    @property
    def model_name(self) -> str:
        return self.catalog_model.name if self.catalog_model_id else ""

    @property
    def duration_label(self) -> str:
        """ "45 min", "8 h", "1 d 2 h": how long each occurrence lasts."""
        days, rest = divmod(self.duration_minutes or 0, 24 * 60)
        hours, minutes = divmod(rest, 60)
        parts = [f"{days} d" if days else "", f"{hours} h" if hours else ""]
        parts.append(f"{minutes} min" if minutes else "")
        return " ".join(p for p in parts if p) or "0 min"

    @property
    def scope_label(self) -> str:
        """Whom it covers beyond the environment: every model, a team, a model."""
        if self.catalog_model_id:
            return f"model {self.model_name}"
        return f"team {self.team}" if self.team else "every model"

    @property
    def ends_at(self):
        """The end of the first occurrence (wall-clock in the window's zone)."""
        if self.dtstart is None or not self.duration_minutes:
            return None
        local = self.dtstart.astimezone(freeze.zone_of(self.timezone))
        return local + timedelta(minutes=self.duration_minutes)

    def clean(self):
        """The zone exists, the rule parses, and (active) it has an occurrence in the next
        2 years: bounded checks, so a rule that never matches answers at once."""
        errors = {}
        try:
            tz = freeze.zone_of(self.timezone)
        except freeze.RecurrenceError as exc:
            errors["timezone"] = str(exc)
            tz = None
        if tz is not None and self.dtstart is not None and self.rrule.strip():
            try:
                freeze.parse_rrule(self.rrule, dtstart=self.dtstart, tz=tz)
            except freeze.RecurrenceError as exc:
                errors["rrule"] = str(exc)
        if not errors and self.active and self.dtstart is not None and self.duration_minutes:
            problem = freeze.first_occurrence_problem(self, now=timezone.now())
            if problem:
                errors["rrule"] = problem
        if errors:
            raise ValidationError(errors)
