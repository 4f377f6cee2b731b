"""Freeze windows in the API: a window as read, the body that creates or changes one, and
what is frozen now per environment."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone as dj_timezone
from rest_framework import serializers

from registry.models import CatalogModel

from .. import freeze
from ..models import FreezeKind, FreezeScope, FreezeWindow


class FreezeOccurrenceSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class FreezeWindowSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_name", help_text="Blank: every model.")
    ends_at = serializers.DateTimeField(help_text="The end of the first occurrence.")
    next_occurrence = serializers.SerializerMethodField(
        help_text="The occurrence in effect now or the next one (within 2 years), or null."
    )
    created_by = serializers.SerializerMethodField()
    updated_by = serializers.SerializerMethodField()

    class Meta:
        model = FreezeWindow
        fields = [
            "id",
            "name",
            "kind",
            "reason",
            "environment",
            "team",
            "model",
            "dtstart",
            "duration_minutes",
            "ends_at",
            "rrule",
            "timezone",
            "active",
            "next_occurrence",
            "created_at",
            "created_by",
            "updated_at",
            "updated_by",
        ]

    def get_next_occurrence(self, window) -> dict | None:
        now = dj_timezone.now()
        found = freeze.window_occurrences(
            window, start=now, end=now + timedelta(days=freeze.HORIZON_DAYS)
        )
        if not found:
            return None
        return FreezeOccurrenceSerializer({"start": found[0].start, "end": found[0].end}).data

    def _user(self, user) -> str:
        return user.get_username() if user else ""

    def get_created_by(self, window) -> str:
        return self._user(window.created_by)

    def get_updated_by(self, window) -> str:
        return self._user(window.updated_by)


class FrozenScopeSerializer(serializers.Serializer):
    cause = serializers.ChoiceField(
        choices=["deny", "outside_allow"],
        help_text="deny: inside a deny occurrence; outside_allow: allow windows apply, none open.",
    )
    scope = serializers.CharField(help_text='"every model", "team <name>" or "model <name>".')
    windows = serializers.SerializerMethodField()
    reopens_at = serializers.DateTimeField(allow_null=True)
    message = serializers.CharField()

    def get_windows(self, row) -> list[int]:
        return [w.pk for w in row.windows]


class FreezeWindowListSerializer(serializers.Serializer):
    frozen_now = serializers.DictField(
        child=FrozenScopeSerializer(many=True), help_text="Per environment (QA, PROD)."
    )
    count = serializers.IntegerField()
    results = FreezeWindowSerializer(many=True)


class LocalDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time; without an offset it stays naive (read later in the window's zone)."""

    def enforce_timezone(self, value):
        if dj_timezone.is_naive(value):
            return value
        return super().enforce_timezone(value)


class FreezeWindowInputSerializer(serializers.Serializer):
    """Create (every required field) or PATCH (any of them). ``dtstart`` without an offset
    is read in ``timezone``; give ``duration_minutes`` or ``ends_at`` (first occurrence)."""

    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=FreezeKind.choices, default=FreezeKind.DENY)
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    environment = serializers.ChoiceField(choices=FreezeScope.choices)
    team = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    model = serializers.SlugRelatedField(
        slug_field="name",
        queryset=CatalogModel.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="A catalog model's name; null or absent: every model.",
    )
    dtstart = LocalDateTimeField(
        help_text="The first occurrence's start; without an offset, read in timezone."
    )
    duration_minutes = serializers.IntegerField(
        min_value=1, max_value=366 * 24 * 60, required=False
    )
    ends_at = LocalDateTimeField(required=False, help_text="Instead of duration_minutes.")
    rrule = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    timezone = serializers.CharField(max_length=64, default="UTC")
    active = serializers.BooleanField(default=True)

    def validate_timezone(self, value: str) -> str:
        try:
            freeze.zone_of(value)
        except freeze.RecurrenceError as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value

    def validate(self, attrs):
        window: FreezeWindow | None = self.instance
        zone_name = attrs.get("timezone") or (window.timezone if window else "UTC")
        tz = freeze.zone_of(zone_name)
        for name in ("dtstart", "ends_at"):
            if name in attrs and attrs[name] is not None:
                attrs[name] = _aware(attrs[name], tz)
        ends = attrs.pop("ends_at", None)
        if ends is not None and "duration_minutes" not in attrs:
            start = attrs.get("dtstart") or (window.dtstart if window else None)
            length = ends.astimezone(tz) - start.astimezone(tz) if start else timedelta(0)
            if length < timedelta(minutes=1):
                raise serializers.ValidationError({"ends_at": "ends_at must be after dtstart."})
            attrs["duration_minutes"] = int(length.total_seconds() // 60)
        if window is None and "duration_minutes" not in attrs:
            raise serializers.ValidationError(
                {"duration_minutes": "Give duration_minutes or ends_at."}
            )
        if "model" in attrs:
            attrs["catalog_model"] = attrs.pop("model")
        return attrs


def _aware(value: datetime, tz) -> datetime:
    """Naive: a wall-clock time in the window's zone; with an offset: as given."""
    return value.replace(tzinfo=tz) if dj_timezone.is_naive(value) else value
