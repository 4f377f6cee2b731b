"""Tables of this app.

- ``Criterion``: the catalogue of checks, kept in step with ``maturity/criteria/`` (the
  code that evaluates them) after every migrate.
- ``MaturityRecord``: append-only; one row each time a model's assessed level or any
  criterion's result changed, and one per manager declaration.
- ``ModelMaturity``: one row per catalog model with its current assessed and declared levels,
  kept by the services so the dashboard filters and sorts in SQL. Derived; rebuildable from
  the records.
- ``MaturitySnapshot``: the portfolio per week (one row per model and week) for the trend.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.append_only import AppendOnlyModel
from registry.models import CatalogModel

LEVELS = (1, 2, 3, 4, 5)
LEVEL_NAMES = {
    0: "Below level 1",
    1: "DevOps but no MLOps",
    2: "Automated training",
    3: "Automated model deployment",
    4: "Automated training after new data arrives",
    5: "Automated operations",
}
level_validators = [MinValueValidator(0), MaxValueValidator(5)]


class Applicability(models.TextChoices):
    BOTH = "both", "ML and rule-based"
    ML = "ml", "ML models"
    RULE_BASED = "rule_based", "Rule-based models"


class Result(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    NOT_MEASURED = "not_measured", "Not measured"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class Source(models.TextChoices):
    ASSESSED = "assessed", "Assessed"
    DECLARED = "declared", "Declared"


class Criterion(models.Model):
    code = models.SlugField(max_length=60, unique=True)
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), *level_validators])
    title = models.CharField(max_length=200)
    description = models.TextField()
    evaluation = models.TextField(help_text="How the portal evaluates it, from which data.")
    fix = models.TextField(help_text="What to do when it fails.")
    applies_to = models.CharField(max_length=12, choices=Applicability.choices)
    order = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(
        default=True, help_text="False once the code no longer evaluates it (kept for history)."
    )

    class Meta:
        ordering = ["level", "order", "code"]
        verbose_name_plural = "criteria"

    def __str__(self) -> str:
        return f"L{self.level} {self.title}"


class MaturityRecord(AppendOnlyModel):
    """Append-only: the app has no path that updates or deletes a row, and on PostgreSQL a
    trigger refuses UPDATE and DELETE outright (migration 0002).

    ``results`` holds, for an assessed record, one entry per criterion::

        {"code", "level", "result", "summary", "evidence": [{"label", "url"}]}

    A declared record has no results; ``level`` None withdraws an earlier declaration.
    """

    catalog_model = models.ForeignKey(
        CatalogModel, on_delete=models.PROTECT, related_name="maturity_records"
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    level = models.PositiveSmallIntegerField(null=True, blank=True, validators=level_validators)
    results = models.JSONField(default=list, blank=True)
    # Levels above ``level`` that only a "not measured" criterion kept from holding.
    unmeasured_level = models.PositiveSmallIntegerField(null=True, blank=True)
    fingerprint = models.CharField(
        max_length=64, blank=True, help_text="Level and every result: equal means unchanged."
    )
    created_at = models.DateTimeField(db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    made_by = models.CharField(
        max_length=300, help_text="Who (a manager's name) or what (nightly assessment…)."
    )
    reason = models.TextField(blank=True, help_text="Why a manager declared this level.")

    append_only_name = "Maturity records are"

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["catalog_model", "source", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.catalog_model_id} {self.source} L{self.level} at {self.created_at:%Y-%m-%d}"

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES.get(self.level, "withdrawn") if self.level is not None else "withdrawn"


class ModelMaturity(models.Model):
    """The current state per catalog model, derived from its latest records."""

    catalog_model = models.OneToOneField(
        CatalogModel, on_delete=models.CASCADE, related_name="maturity", primary_key=True
    )
    assessed_level = models.PositiveSmallIntegerField(null=True, blank=True)
    assessed_record = models.ForeignKey(
        MaturityRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unmeasured_level = models.PositiveSmallIntegerField(null=True, blank=True)
    # The first criterion of the next level that does not pass ("" at level 5).
    next_criterion = models.CharField(max_length=60, blank=True)
    next_result = models.CharField(max_length=20, blank=True, choices=Result.choices)
    declared_level = models.PositiveSmallIntegerField(null=True, blank=True)
    declared_record = models.ForeignKey(
        MaturityRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    level = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Declared where a manager declared one, else assessed."
    )
    disagreement = models.BooleanField(default=False)
    # The assessed level holds partly on weaker evidence: a criterion at or under it passed
    # only on what a run declares (its trigger parameter), not on what the portal saw.
    declared_evidence = models.BooleanField(default=False)
    # The level of the previous assessed record: a drop shows on the managers' home page.
    previous_assessed_level = models.PositiveSmallIntegerField(null=True, blank=True)
    assessed_changed_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True, help_text="Last assessment run.")
    # Set when the model's runs, approvals or versions changed; beat assesses such models
    # within a minute and clears it (maturity/receivers.py).
    stale_since = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "model maturity"
        verbose_name_plural = "model maturity"
        indexes = [
            models.Index(fields=["level"]),
            models.Index(fields=["assessed_level"]),
            models.Index(fields=["disagreement"]),
        ]

    def __str__(self) -> str:
        return f"{self.catalog_model_id}: L{self.level}"


class MaturitySnapshot(models.Model):
    """The portfolio as it stood at the end of a week (``week`` is that week's Monday)."""

    week = models.DateField()
    catalog_model = models.ForeignKey(
        CatalogModel, on_delete=models.CASCADE, related_name="maturity_snapshots"
    )
    team = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=16, blank=True)
    serving = models.CharField(max_length=16, blank=True)
    assessed_level = models.PositiveSmallIntegerField(null=True, blank=True)
    declared_level = models.PositiveSmallIntegerField(null=True, blank=True)
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    taken_at = models.DateTimeField()

    class Meta:
        ordering = ["-week", "catalog_model"]
        constraints = [
            models.UniqueConstraint(
                fields=["week", "catalog_model"], name="maturity_snapshot_unique"
            )
        ]
        indexes = [models.Index(fields=["week"])]

    def __str__(self) -> str:
        return f"{self.week} {self.catalog_model_id}: L{self.level}"
