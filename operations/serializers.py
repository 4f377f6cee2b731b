"""What the operations API answers and accepts (operations/api.py)."""

from __future__ import annotations

from rest_framework import serializers

from .models import (
    Disposition,
    Episode,
    EpisodeEvent,
    EpisodeKind,
    Signal,
    SignalKind,
    TriggerPolicy,
)
from .selectors import EPISODE_SORTS, SIGNAL_SORTS


class OperationsErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What was wrong, in words.")
    code = serializers.CharField(required=False)
    request_id = serializers.CharField(required=False)


class EpisodeFilterSerializer(serializers.Serializer):
    model = serializers.CharField(required=False, allow_blank=True, max_length=255)
    state = serializers.ChoiceField(
        required=False,
        choices=["open", "closed", "all", *Episode._meta.get_field("state").choices],
        default="open",
    )
    stalled = serializers.BooleanField(required=False, allow_null=True, default=None)
    kind = serializers.ChoiceField(required=False, choices=EpisodeKind.choices, allow_blank=True)
    trigger_kind = serializers.ChoiceField(
        required=False, choices=SignalKind.choices, allow_blank=True
    )
    sort = serializers.ChoiceField(
        required=False, allow_blank=True, choices=[s for k in EPISODE_SORTS for s in (k, f"-{k}")]
    )


class SignalFilterSerializer(serializers.Serializer):
    model = serializers.CharField(required=False, allow_blank=True, max_length=255)
    kind = serializers.ChoiceField(required=False, choices=SignalKind.choices, allow_blank=True)
    disposition = serializers.ChoiceField(
        required=False, allow_blank=True, choices=[d.value for d in Disposition if d.value]
    )
    unmatched = serializers.BooleanField(required=False, default=False)
    sort = serializers.ChoiceField(
        required=False, allow_blank=True, choices=[s for k in SIGNAL_SORTS for s in (k, f"-{k}")]
    )


class DeclineInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=1000,
        trim_whitespace=True,
        error_messages={
            "blank": "Say why the run is declined.",
            "required": "Say why the run is declined.",
        },
    )


class SignalSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="catalog_model.name", default=None, read_only=True)
    episode_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Signal
        fields = [
            "id",
            "model",
            "kind",
            "severity",
            "format",
            "title",
            "source_ref",
            "dedupe_key",
            "observed_at",
            "received_at",
            "disposition",
            "disposition_note",
            "matched_by",
            "episode_id",
            "resolved_at",
        ]


class SignalDetailSerializer(SignalSerializer):
    attributes = serializers.JSONField()
    details = serializers.JSONField()
    raw = serializers.SerializerMethodField()
    rule_suggestions = serializers.SerializerMethodField()

    class Meta(SignalSerializer.Meta):
        fields = [*SignalSerializer.Meta.fields, "attributes", "details", "raw", "rule_suggestions"]

    def get_raw(self, signal) -> dict:
        raw = signal.raw
        return {
            "id": raw.pk,
            "received_at": raw.received_at,
            "format": raw.format,
            "sender": raw.sender,
            "content_type": raw.content_type,
            "outcome": raw.outcome,
            "error": raw.error,
            "body": raw.body,
            "body_truncated": raw.body_truncated,
        }

    def get_rule_suggestions(self, signal) -> list[dict]:
        return [
            {"field": f, "value": v, "label": label}
            for f, v, label in self.context.get("suggestions", [])
        ]


class EpisodeSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="catalog_model.name", read_only=True)
    stalled = serializers.SerializerMethodField()
    run_id = serializers.IntegerField(read_only=True, allow_null=True)
    challenger_version = serializers.IntegerField(
        source="challenger.version", default=None, read_only=True
    )
    champion_version = serializers.IntegerField(
        source="champion.version", default=None, read_only=True
    )
    first_signal_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Episode
        fields = [
            "id",
            "model",
            "kind",
            "trigger_kind",
            "mode",
            "state",
            "outcome",
            "outcome_note",
            "stalled",
            "stalled_reason",
            "stalled_since",
            "first_signal_id",
            "signal_at",
            "opened_at",
            "run_id",
            "run_requested_at",
            "run_started_at",
            "run_finished_at",
            "challenger_version",
            "champion_version",
            "version_registered_at",
            "qa_approval_id",
            "qa_requested_at",
            "qa_decided_at",
            "prod_approval_id",
            "prod_requested_at",
            "prod_decided_at",
            "closed_at",
        ]

    def get_stalled(self, episode) -> bool:
        return bool(episode.stalled_reason)


class EpisodeEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = EpisodeEvent
        fields = ["at", "step", "message", "actor_name", "detail"]


class DurationSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    seconds = serializers.FloatField(allow_null=True)
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)


class EpisodeDetailSerializer(EpisodeSerializer):
    events = serializers.SerializerMethodField()
    durations = serializers.SerializerMethodField()
    evaluation = serializers.JSONField(help_text="Challenger against champion, in numbers.")
    policy = serializers.JSONField(help_text="The trigger policy as it applied.")
    signal_ids = serializers.SerializerMethodField()
    parameters = serializers.JSONField()

    class Meta(EpisodeSerializer.Meta):
        fields = [
            *EpisodeSerializer.Meta.fields,
            "evaluation",
            "policy",
            "parameters",
            "events",
            "durations",
            "signal_ids",
        ]

    def get_events(self, episode) -> list[dict]:
        return EpisodeEventSerializer(self.context["detail"].events, many=True).data

    def get_durations(self, episode) -> list[dict]:
        return DurationSerializer(self.context["detail"].durations, many=True).data

    def get_signal_ids(self, episode) -> list[int]:
        return [s.pk for s in self.context["detail"].signals]


class TriggerPolicySerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(read_only=True, allow_null=True, help_text="None: built-in.")
    scope = serializers.SerializerMethodField()
    is_default = serializers.SerializerMethodField()
    pipeline = serializers.CharField(
        source="pipeline.name", default=None, read_only=True, allow_null=True
    )
    business_hours_start = serializers.SerializerMethodField(help_text="HH:MM, local.")
    business_hours_end = serializers.SerializerMethodField(help_text="HH:MM, local.")

    class Meta:
        model = TriggerPolicy
        fields = [
            "id",
            "scope",
            "is_default",
            "enabled",
            "mode",
            "pipeline",
            "signal_kinds",
            "min_severity",
            "cooldown_minutes",
            "dedupe_window_minutes",
            "max_runs_per_day",
            "business_hours_only",
            "business_hours_start",
            "business_hours_end",
            "business_days",
            "timezone",
            "proposal_expiry_hours",
            "release_on_promote",
            "release_after_scoring",
        ]

    def get_business_hours_start(self, policy) -> str:
        return policy.business_hours_start.strftime("%H:%M")

    def get_business_hours_end(self, policy) -> str:
        return policy.business_hours_end.strftime("%H:%M")

    def get_scope(self, policy) -> str:
        return str(policy) if policy.pk else "Built-in default"

    def get_is_default(self, policy) -> bool:
        return policy.pk is None or policy.catalog_model_id is None


class ModelPolicySerializer(serializers.Serializer):
    model = serializers.CharField()
    policy = TriggerPolicySerializer()


class WeekSerializer(serializers.Serializer):
    week = serializers.DateField()
    signals = serializers.IntegerField()
    episodes = serializers.IntegerField()


class ModelSummarySerializer(serializers.Serializer):
    model = serializers.CharField(source="catalog_model.name")
    days = serializers.IntegerField()
    weeks = WeekSerializer(many=True)
    signals_total = serializers.IntegerField()
    episodes_total = serializers.IntegerField()
    open_episodes = serializers.IntegerField()
    recent_episodes = EpisodeSerializer(many=True)
    policy = TriggerPolicySerializer()
    last_signal_at = serializers.DateTimeField(allow_null=True)
    last_monitoring_signal_at = serializers.DateTimeField(allow_null=True)
    last_run_requested_at = serializers.DateTimeField(allow_null=True)
