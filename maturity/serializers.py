"""DRF serializers of this app's API: the criteria catalogue, the portfolio summary, each
model's current maturity (list and detail with every criterion's result and the history),
a manager's declaration, and the query filters."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.models import ModelKind, Serving

from . import selectors
from .models import LEVEL_NAMES, LEVELS, Criterion, MaturityRecord

LEVEL_FILTER_CHOICES = [str(level) for level in (0, *LEVELS)] + [selectors.UNASSESSED]


def level_name(level: int | None) -> str | None:
    return None if level is None else LEVEL_NAMES.get(level)


# --- Errors and input ----------------------------------------------------------------------


class MaturityErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was wrong, in words.")
    code = serializers.CharField(
        required=False,
        help_text="A stable code: bad_request, bad_filter, not_manager, reason_required, "
        "bad_level, nothing_to_withdraw, unchanged...",
    )
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per parameter, what was wrong with it.",
    )
    request_id = serializers.CharField()


class DeclarationInputSerializer(serializers.Serializer):
    """The body of a declaration (documentation only: the service checks it, as for the page)."""

    level = serializers.IntegerField(
        min_value=1, max_value=5, allow_null=True, help_text="1 to 5; null withdraws it."
    )
    reason = serializers.CharField(help_text="Why; required (at least 10 characters).")


class PortfolioFilterSerializer(serializers.Serializer):
    """The dashboard's filters, from the query string."""

    team = serializers.CharField(required=False, allow_blank=True, max_length=100)
    kind = serializers.ChoiceField(choices=ModelKind.choices, required=False, allow_blank=True)
    serving = serializers.ChoiceField(choices=Serving.choices, required=False, allow_blank=True)
    level = serializers.ChoiceField(choices=LEVEL_FILTER_CHOICES, required=False, allow_blank=True)
    disagreement = serializers.BooleanField(required=False, default=False)
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)

    def filters(self) -> selectors.PortfolioFilters:
        data = self.validated_data
        return selectors.PortfolioFilters(
            team=(data.get("team") or "").strip(),
            kind=data.get("kind") or "",
            serving=data.get("serving") or "",
            level=data.get("level") or "",
            disagreement=bool(data.get("disagreement")),
            q=(data.get("q") or "").strip(),
        )


class SummaryFilterSerializer(PortfolioFilterSerializer):
    """The summary takes the category filters (team, kind, serving) and the trend's length."""

    level = None
    disagreement = None
    q = None
    weeks = serializers.IntegerField(required=False, default=52, min_value=1, max_value=104)


# --- Catalogue -----------------------------------------------------------------------------


class CriterionSerializer(serializers.ModelSerializer):
    level_name = serializers.SerializerMethodField()

    class Meta:
        model = Criterion
        fields = [
            "code",
            "level",
            "level_name",
            "title",
            "description",
            "evaluation",
            "fix",
            "applies_to",
            "order",
            "active",
        ]

    def get_level_name(self, criterion: Criterion) -> str:
        return LEVEL_NAMES[criterion.level]


# --- One model ---------------------------------------------------------------------------------


class EvidenceLinkSerializer(serializers.Serializer):
    label = serializers.CharField()
    url = serializers.CharField(help_text="A portal page (or the registry's UI) that proves it.")


class CriterionResultSerializer(serializers.Serializer):
    """One criterion's result in the latest assessment (``selectors.ChecklistItem``)."""

    code = serializers.CharField()
    level = serializers.IntegerField()
    title = serializers.CharField()
    result = serializers.CharField(help_text="passed, failed, not_measured or not_applicable.")
    summary = serializers.CharField()
    evidence = EvidenceLinkSerializer(many=True)
    evidence_strength = serializers.ChoiceField(
        choices=["seen", "declared", ""],
        help_text="Levels 4 and 5, when passed: seen (the portal saw it: an operations episode, "
        "monitoring heard from) or declared (weaker evidence: only a run's trigger parameter "
        "or ADO's build reason says so); empty where the criterion does not weigh it.",
    )
    measure = serializers.DictField(
        allow_null=True,
        help_text="The measured figures where there are (data-lag: p50_hours, max_hours, runs, "
        "from, pairs; monitoring-heartbeat: signals, last_heard_at).",
    )
    fix = serializers.CharField(help_text="What to do when it fails.")


class RecordSerializer(serializers.ModelSerializer):
    """A maturity record (assessed or declared); a declared one with level null withdrew."""

    kind = serializers.CharField(
        source="source", help_text="assessed (by the portal) or declared (by a manager)."
    )
    level_name = serializers.SerializerMethodField()
    model = serializers.CharField(source="catalog_model.name")

    class Meta:
        model = MaturityRecord
        fields = [
            "id",
            "model",
            "kind",
            "level",
            "level_name",
            "unmeasured_level",
            "created_at",
            "made_by",
            "reason",
        ]

    def get_level_name(self, record: MaturityRecord) -> str | None:
        return level_name(record.level)


class NextStepSerializer(serializers.Serializer):
    level = serializers.IntegerField(help_text="The level the model does not reach yet.")
    code = serializers.CharField()
    title = serializers.CharField()
    result = serializers.CharField(help_text="failed or not_measured.")
    fix = serializers.CharField()


class ModelMaturitySerializer(serializers.Serializer):
    """A catalog model's current maturity (from ``selectors.portfolio_models``); the levels
    are null for a model that was never assessed."""

    name = serializers.CharField()
    page_url = serializers.SerializerMethodField(help_text="The model page's maturity section.")
    team = serializers.CharField(source="effective_team")
    kind = serializers.CharField(source="effective_kind")
    serving = serializers.CharField(source="effective_serving")
    level = serializers.SerializerMethodField(
        help_text="The model's level: declared where a manager declared one, else assessed."
    )
    assessed_level = serializers.SerializerMethodField()
    declared_level = serializers.SerializerMethodField()
    disagreement = serializers.SerializerMethodField()
    unmeasured_level = serializers.SerializerMethodField(
        help_text="The level that only 'not measured' criteria kept from being confirmed."
    )
    declared_evidence = serializers.SerializerMethodField(
        help_text="The assessed level holds partly on weaker evidence: a criterion passed only "
        "on a run's trigger parameter, not on what the portal saw."
    )
    next_step = serializers.SerializerMethodField()
    assessed_changed_at = serializers.SerializerMethodField()
    checked_at = serializers.SerializerMethodField()

    @staticmethod
    def _status(model):
        return getattr(model, "maturity", None)

    def _field(self, model, name):
        status = self._status(model)
        return getattr(status, name) if status is not None else None

    def get_page_url(self, model) -> str:
        return model.get_absolute_url() + "#maturity"

    def get_level(self, model) -> int | None:
        return self._field(model, "level")

    def get_assessed_level(self, model) -> int | None:
        return self._field(model, "assessed_level")

    def get_declared_level(self, model) -> int | None:
        return self._field(model, "declared_level")

    def get_disagreement(self, model) -> bool:
        return bool(self._field(model, "disagreement"))

    def get_unmeasured_level(self, model) -> int | None:
        return self._field(model, "unmeasured_level")

    def get_declared_evidence(self, model) -> bool:
        return bool(self._field(model, "declared_evidence"))

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_assessed_changed_at(self, model):
        value = self._field(model, "assessed_changed_at")
        return value.isoformat() if value else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_checked_at(self, model):
        value = self._field(model, "checked_at")
        return value.isoformat() if value else None

    @extend_schema_field(NextStepSerializer(allow_null=True))
    def get_next_step(self, model):
        status = self._status(model)
        if status is None:
            return None
        step = selectors.next_step(status, self.context.get("catalogue") or {})
        return NextStepSerializer(step).data if step else None


class AssessedSerializer(serializers.Serializer):
    level = serializers.IntegerField()
    level_name = serializers.CharField()
    unmeasured_level = serializers.IntegerField(allow_null=True)
    declared_evidence = serializers.BooleanField(
        help_text="Held partly on weaker evidence (a criterion passed on a run parameter alone)."
    )
    created_at = serializers.DateTimeField(help_text="When the assessment found this.")
    made_by = serializers.CharField()
    checked_at = serializers.DateTimeField(allow_null=True, help_text="The last assessment run.")


class DeclaredSerializer(serializers.Serializer):
    level = serializers.IntegerField()
    level_name = serializers.CharField()
    created_at = serializers.DateTimeField()
    made_by = serializers.CharField()
    reason = serializers.CharField()


class ModelMaturityDetailSerializer(serializers.Serializer):
    """One model: assessed and declared levels, every criterion's result, the history."""

    name = serializers.CharField()
    page_url = serializers.CharField()
    level = serializers.IntegerField(allow_null=True)
    assessed = AssessedSerializer(allow_null=True)
    declared = DeclaredSerializer(allow_null=True)
    disagreement = serializers.BooleanField()
    next_level = serializers.IntegerField(allow_null=True)
    criteria = CriterionResultSerializer(many=True)
    history = RecordSerializer(many=True, help_text="Newest first.")


def model_detail_data(view: selectors.ModelMaturityView) -> dict:
    """The detail's fields from ``selectors.model_maturity``."""
    status, assessed, declared = view.status, view.assessed, view.declared
    return {
        "name": view.catalog_model.name,
        "page_url": view.catalog_model.get_absolute_url() + "#maturity",
        "level": status.level if status else None,
        "assessed": {
            "level": assessed.level,
            "level_name": level_name(assessed.level),
            "unmeasured_level": assessed.unmeasured_level,
            "declared_evidence": bool(status and status.declared_evidence),
            "created_at": assessed.created_at,
            "made_by": assessed.made_by,
            "checked_at": status.checked_at,
        }
        if assessed
        else None,
        "declared": {
            "level": declared.level,
            "level_name": level_name(declared.level),
            "created_at": declared.created_at,
            "made_by": declared.made_by,
            "reason": declared.reason,
        }
        if declared
        else None,
        "disagreement": view.disagreement,
        "next_level": view.next_level,
        "criteria": view.checklist,
        "history": view.history,
    }


# --- Portfolio summary ---------------------------------------------------------------------


class LevelCountSerializer(serializers.Serializer):
    level = serializers.IntegerField(help_text="0 is below level 1.")
    name = serializers.CharField()
    models = serializers.IntegerField()


class GroupCountSerializer(serializers.Serializer):
    group = serializers.CharField(help_text="The team, or the model kind.")
    levels = LevelCountSerializer(many=True)
    total = serializers.IntegerField()


class TrendWeekSerializer(serializers.Serializer):
    week = serializers.DateField(help_text="The Monday of the week.")
    levels = LevelCountSerializer(many=True)
    total = serializers.IntegerField()
    average = serializers.FloatField(allow_null=True)


class TrendSerializer(serializers.Serializer):
    weeks = TrendWeekSerializer(
        many=True, help_text="Oldest first; weeks with no snapshot left out."
    )
    change_4_weeks = serializers.FloatField(
        allow_null=True, help_text="Change of the average level over the last 4 weeks."
    )


class SummarySerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Models matching the filters.")
    assessed = serializers.IntegerField(help_text="Of those, with a level.")
    unassessed = serializers.IntegerField()
    disagreements = serializers.IntegerField(help_text="Declared level differs from assessed.")
    average_level = serializers.FloatField(allow_null=True)
    levels = LevelCountSerializer(many=True)
    by_team = GroupCountSerializer(many=True)
    by_kind = GroupCountSerializer(many=True)
    trend = TrendSerializer()


def _level_counts(counts: dict[int, int], levels) -> list[dict]:
    return [{"level": lv, "name": LEVEL_NAMES[lv], "models": counts.get(lv, 0)} for lv in levels]


def summary_data(*, filters: selectors.PortfolioFilters, weeks: int) -> dict:
    by_team = selectors.distribution(filters=filters, by="team")
    by_kind = selectors.distribution(filters=filters, by="kind")
    levels = (0, *LEVELS)
    totals = {lv: by_team.level_total(lv) for lv in levels}
    assessed = sum(totals.values())
    trend = selectors.trend(filters=filters, weeks=weeks)
    return {
        "total": assessed + by_team.unassessed,
        "assessed": assessed,
        "unassessed": by_team.unassessed,
        "disagreements": selectors.disagreement_count(filters=filters),
        "average_level": None if by_team.average is None else round(by_team.average, 2),
        "levels": _level_counts(totals, levels),
        "by_team": [
            {
                "group": group,
                "levels": _level_counts(by_team.counts[group], levels),
                "total": by_team.group_total(group),
            }
            for group in by_team.groups
        ],
        "by_kind": [
            {
                "group": group,
                "levels": _level_counts(by_kind.counts[group], levels),
                "total": by_kind.group_total(group),
            }
            for group in by_kind.groups
        ],
        "trend": {
            "weeks": [
                {
                    "week": week,
                    "levels": _level_counts(counts, levels),
                    "total": sum(counts.values()),
                    "average": average,
                }
                for week, counts, average in zip(
                    trend.weeks, trend.counts, trend.averages, strict=True
                )
            ],
            "change_4_weeks": trend.change_since(4),
        },
    }
