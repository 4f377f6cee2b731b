"""The operator's view of operations: match rules and trigger policies are edited here; the
signals, raw payloads, episodes and their timelines are history, read-only."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.text import Truncator

from pipelines.admin import ReadOnlyAdmin

from .models import Episode, EpisodeEvent, MatchRule, RawSignal, Signal, TriggerPolicy


def _rematch(rule) -> int | None:
    """Match the unmatched signals again with this rule (intake's matching service)."""
    import importlib

    try:
        matching = importlib.import_module("operations.services.matching")
    except ModuleNotFoundError:
        return None
    return matching.unmatched_rematch(rule)


@admin.register(MatchRule)
class MatchRuleAdmin(admin.ModelAdmin):
    """Which model a signal is about when its payload names none the portal knows. Saving a
    rule matches the unmatched signals again."""

    list_display = ["field", "value", "catalog_model", "kind", "enabled", "created_at"]
    list_filter = ["field", "enabled", "kind"]
    search_fields = ["value", "catalog_model__name", "note"]
    autocomplete_fields = ["catalog_model"]
    readonly_fields = ["created_at", "created_by"]
    fields = [
        "field",
        "value",
        "catalog_model",
        "kind",
        "enabled",
        "note",
        "created_at",
        "created_by",
    ]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        matched = _rematch(obj)
        if matched is None:
            return
        messages.info(
            request,
            f"{matched} unmatched signal{'s' if matched != 1 else ''} now matched by this rule.",
        )


@admin.register(TriggerPolicy)
class TriggerPolicyAdmin(admin.ModelAdmin):
    """What a signal may start for a model, or the default for a team and kind of model."""

    list_display = [
        "__str__",
        "enabled",
        "mode",
        "pipeline",
        "cooldown_minutes",
        "max_runs_per_day",
        "business_hours_only",
        "updated_at",
    ]
    list_filter = ["enabled", "mode", "business_hours_only", "model_kind", "team"]
    search_fields = ["catalog_model__name", "team"]
    autocomplete_fields = ["catalog_model"]
    raw_id_fields = ["pipeline", "release_pipeline"]
    readonly_fields = ["updated_at", "updated_by"]
    fieldsets = [
        (
            "Applies to",
            {
                "fields": ["catalog_model", "team", "model_kind"],
                "description": "A model, or (model blank) the default for a team and kind.",
            },
        ),
        (
            "What it starts",
            {"fields": ["enabled", "mode", "pipeline", "signal_kinds", "min_severity"]},
        ),
        (
            "Limits",
            {"fields": ["cooldown_minutes", "dedupe_window_minutes", "max_runs_per_day"]},
        ),
        (
            "Business hours",
            {
                "fields": [
                    "business_hours_only",
                    "business_hours_start",
                    "business_hours_end",
                    "business_days",
                    "timezone",
                ]
            },
        ),
        ("Proposals", {"fields": ["proposal_expiry_hours"]}),
        (
            "After the run",
            {"fields": ["release_on_promote", "release_pipeline", "release_after_scoring"]},
        ),
        ("Changed", {"fields": ["updated_at", "updated_by"]}),
    ]

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(RawSignal)
class RawSignalAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "format", "outcome", "sender", "signal_count", "short_error"]
    list_filter = ["outcome", "format"]
    search_fields = ["sender", "error", "request_id"]
    date_hierarchy = "received_at"

    @admin.display(description="Error")
    def short_error(self, obj):
        return Truncator(obj.error).chars(80)


class EpisodeEventInline(admin.TabularInline):
    model = EpisodeEvent
    extra = 0
    can_delete = False
    fields = ["at", "step", "message", "actor_name"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "kind", "severity", "catalog_model", "disposition", "title"]
    list_filter = ["kind", "disposition", "format", "severity"]
    search_fields = ["title", "source_ref", "dedupe_key", "catalog_model__name"]
    list_select_related = ["catalog_model"]
    date_hierarchy = "received_at"


@admin.register(Episode)
class EpisodeAdmin(ReadOnlyAdmin):
    list_display = ["pk", "catalog_model", "kind", "state", "outcome", "opened_at", "stalled"]
    list_filter = ["state", "outcome", "kind", "trigger_kind", "mode"]
    search_fields = ["catalog_model__name", "outcome_note", "stalled_reason"]
    list_select_related = ["catalog_model"]
    date_hierarchy = "opened_at"
    inlines = [EpisodeEventInline]

    @admin.display(description="Stalled")
    def stalled(self, obj):
        if not obj.stalled_reason:
            return "—"
        return format_html('<span title="{}">yes</span>', obj.stalled_reason)


@admin.register(EpisodeEvent)
class EpisodeEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "episode", "step", "actor_name", "short_message"]
    list_filter = ["step"]
    search_fields = ["message", "actor_name"]
    list_select_related = ["episode__catalog_model"]

    @admin.display(description="Message")
    def short_message(self, obj):
        return Truncator(obj.message).chars(100)
