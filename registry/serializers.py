"""DRF serializers of this app's API (read-only: the mirror is written by the sync)."""

from __future__ import annotations

import math

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from . import selectors
from .models import (
    CatalogModel,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    RegistryEventKind,
    RegistrySource,
)


class MetricValueField(serializers.FloatField):
    """A metric value; anything not a finite number (it should not happen) is shown as null."""

    def to_representation(self, value):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return None if math.isnan(value) or math.isinf(value) else float(value)


class FiniteJSONField(serializers.JSONField):
    """Any JSON value, with NaN and infinities (not valid JSON) shown as null."""

    def to_representation(self, value):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            return None
        return super().to_representation(value)


class RegistrySourceSerializer(serializers.ModelSerializer):
    ui_base_url = serializers.CharField(read_only=True)
    sync_state = serializers.SerializerMethodField(
        help_text="ok, stale (older than PORTAL_SYNC_STALE_AFTER_SECONDS), failing "
        "(the last attempt failed) or never (not synced yet)."
    )

    class Meta:
        model = RegistrySource
        fields = [
            "name",
            "is_central",
            "enabled",
            "ui_base_url",
            "last_sync_succeeded_at",
            "last_sync_error_at",
            "last_sync_error",
            "sync_state",
        ]

    def get_sync_state(self, source: RegistrySource) -> str:
        return selectors.SourceFreshness(
            source.name,
            source.is_central,
            source.last_sync_succeeded_at,
            source.last_sync_error_at,
            source.last_sync_error,
        ).state


class VersionLinkSerializer(serializers.Serializer):
    source = serializers.CharField()
    model = serializers.CharField(help_text="The registered model's name in that source.")
    version = serializers.IntegerField()


class AliasSerializer(VersionLinkSerializer):
    alias = serializers.CharField()


def _alias_links(registrations: list[RegisteredModel]) -> list[dict]:
    return [
        {"source": r.source.name, "model": r.name, "alias": alias, "version": number}
        for r in registrations
        for alias, number in sorted((r.aliases or {}).items())
        if isinstance(number, int)
    ]


class HeadlineVersionSerializer(VersionLinkSerializer):
    alias = serializers.CharField(allow_null=True, help_text="null: the latest version instead.")
    fallback = serializers.BooleanField(
        help_text="The headline alias is on no live version, so this is the latest version."
    )


def headline_version_data(headline) -> dict | None:
    if headline is None or headline.version is None:
        return None
    return {
        "source": headline.registration.source.name,
        "model": headline.registration.name,
        "version": headline.version,
        "alias": None if headline.fallback else headline.alias,
        "fallback": headline.fallback,
    }


class CatalogModelListSerializer(serializers.Serializer):
    """One row of the catalog (from ``selectors.catalog_model_list``)."""

    name = serializers.CharField()
    url = serializers.CharField(source="get_absolute_url", help_text="The model page.")
    kind = serializers.CharField(source="eff_kind", help_text="ml, rule_based or unknown.")
    serving = serializers.CharField(source="eff_serving", help_text="batch, real_time or unknown.")
    team = serializers.CharField(source="eff_team", help_text="The team, or unknown.")
    registered = serializers.BooleanField(source="is_registered")
    deleted_upstream = serializers.SerializerMethodField(
        help_text="Every registered model of this entry vanished from its registry."
    )
    sources = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()
    aliases = serializers.SerializerMethodField()
    last_updated = serializers.DateTimeField()

    def get_deleted_upstream(self, model: CatalogModel) -> bool:
        return bool(model.is_registered and not model.has_live_registration)

    def get_sources(self, model: CatalogModel) -> list[str]:
        return sorted({r.source.name for r in model.listed_registrations})

    @extend_schema_field(VersionLinkSerializer(allow_null=True))
    def get_latest_version(self, model: CatalogModel):
        registration = next(
            (r for r in model.listed_registrations if r.pk == model.latest_version_model_id), None
        )
        if registration is None or model.latest_version is None:
            return None
        return {
            "source": registration.source.name,
            "model": registration.name,
            "version": model.latest_version,
        }

    @extend_schema_field(AliasSerializer(many=True))
    def get_aliases(self, model: CatalogModel):
        return _alias_links(model.listed_registrations)

    headline_alias = serializers.SerializerMethodField(
        help_text="The alias this model headlines: its own, else its team's, else "
        "REGISTRY_HEADLINE_ALIAS."
    )
    headline_version = serializers.SerializerMethodField()

    def get_headline_alias(self, model: CatalogModel) -> str:
        return model.headline.alias

    @extend_schema_field(HeadlineVersionSerializer(allow_null=True))
    def get_headline_version(self, model: CatalogModel):
        return headline_version_data(model.headline)


class RegisteredModelSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="source.name")
    tags = serializers.DictField(child=serializers.CharField(allow_blank=True))
    aliases = serializers.DictField(
        child=serializers.IntegerField(), help_text="alias -> version number"
    )

    class Meta:
        model = RegisteredModel
        fields = [
            "source",
            "name",
            "description",
            "tags",
            "aliases",
            "created_upstream_at",
            "updated_upstream_at",
            "deleted_upstream_at",
        ]


class CatalogModelDetailSerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.CharField(help_text="The model page.")
    description = serializers.CharField(allow_blank=True)
    kind = serializers.CharField(help_text="Effective kind: ml, rule_based or unknown.")
    serving = serializers.CharField(help_text="Effective serving: batch, real_time or unknown.")
    team = serializers.CharField(help_text="Effective team, or unknown.")
    overrides = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        help_text="kind, serving and team as set in the portal (blank: from the registry).",
    )
    registry_categories = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        help_text="kind, serving and team as the registry tags say.",
    )
    owners = serializers.ListField(child=serializers.CharField())
    registered = serializers.BooleanField()
    registered_models = RegisteredModelSerializer(many=True)
    aliases = AliasSerializer(many=True)
    headline_alias = serializers.CharField(
        help_text="The alias this model headlines: its own, else its team's, else "
        "REGISTRY_HEADLINE_ALIAS."
    )
    headline_rule = serializers.ChoiceField(
        choices=["model", "team", "default"], help_text="Where the headline alias comes from."
    )
    headline_version = HeadlineVersionSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ModelVersionSerializer(serializers.ModelSerializer):
    source = serializers.CharField(source="registered_model.source.name")
    model = serializers.CharField(
        source="registered_model.name", help_text="The registered model's name in that source."
    )
    aliases = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="The version page.")
    metrics = serializers.DictField(child=MetricValueField(allow_null=True))

    class Meta:
        model = ModelVersion
        fields = [
            "source",
            "model",
            "version",
            "url",
            "status",
            "stage",
            "aliases",
            "user_id",
            "run_id",
            "created_upstream_at",
            "updated_upstream_at",
            "deleted_upstream_at",
            "metrics",
        ]

    def get_aliases(self, version: ModelVersion) -> list[str]:
        return selectors.version_alias_names(version)

    def get_url(self, version: ModelVersion) -> str:
        rm = version.registered_model
        return reverse(
            "registry:version-detail",
            kwargs={"source": rm.source.name, "name": rm.name, "version": version.version},
        )


class ModelVersionDetailSerializer(ModelVersionSerializer):
    catalog_model = serializers.CharField(
        source="registered_model.catalog_model.name", allow_null=True, default=None
    )
    mlflow_run_url = serializers.SerializerMethodField(
        help_text="The run in the MLflow UI, when the source's UI, experiment and run are known."
    )
    tags = serializers.DictField(child=serializers.CharField(allow_blank=True))
    params = serializers.DictField(child=serializers.CharField(allow_blank=True))
    run_tags = serializers.DictField(child=serializers.CharField(allow_blank=True))

    class Meta(ModelVersionSerializer.Meta):
        fields = [
            *ModelVersionSerializer.Meta.fields,
            "catalog_model",
            "description",
            "status_message",
            "source_uri",
            "run_link",
            "experiment_id",
            "mlflow_run_url",
            "tags",
            "params",
            "run_tags",
            "run_fetched_at",
            "run_fetch_error",
        ]

    def get_mlflow_run_url(self, version: ModelVersion) -> str:
        return selectors.mlflow_run_url(version)


class CompareVersionSerializer(ModelVersionSerializer):
    ref = serializers.SerializerMethodField(help_text="This version's v= reference.")

    class Meta(ModelVersionSerializer.Meta):
        fields = ["ref", *ModelVersionSerializer.Meta.fields]

    def get_ref(self, version: ModelVersion) -> str:
        return self.context["refs"][version.pk]


class MetricCellSerializer(serializers.Serializer):
    value = FiniteJSONField(allow_null=True)
    delta = MetricValueField(allow_null=True, help_text="value minus the first version's value.")
    best = serializers.BooleanField(source="is_best")
    better = serializers.BooleanField(
        allow_null=True, help_text="Better than the first version (null: same or not comparable)."
    )


class MetricRowSerializer(serializers.Serializer):
    name = serializers.CharField()
    lower_is_better = serializers.BooleanField()
    values = MetricCellSerializer(many=True, source="cells")


class ParamRowSerializer(serializers.Serializer):
    name = serializers.CharField()
    values = serializers.ListField(child=FiniteJSONField(allow_null=True))
    differs = serializers.BooleanField()


class ComparisonSerializer(serializers.Serializer):
    catalog_model = serializers.CharField()
    versions = CompareVersionSerializer(many=True)
    metrics = MetricRowSerializer(many=True)
    params = ParamRowSerializer(many=True)
    about = ParamRowSerializer(
        many=True, help_text="description and source run (run name and id) of each version."
    )
    tags = ParamRowSerializer(many=True, help_text="The versions' tags.")
    run_tags = ParamRowSerializer(many=True, help_text="Their source runs' tags.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    request_id = serializers.CharField()


# The registry history -------------------------------------------------------------------------


class RegistryEventFilterSerializer(serializers.Serializer):
    """The filters of the events list (query parameters)."""

    kind = serializers.MultipleChoiceField(
        required=False,
        choices=RegistryEventKind.choices,
        help_text="Only these kinds (repeatable).",
    )
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="Only events of this version number."
    )
    since = serializers.DateTimeField(
        required=False, help_text="Observed at or after this moment (ISO-8601; no zone: UTC)."
    )
    until = serializers.DateTimeField(
        required=False, help_text="Observed before this moment (ISO-8601; no zone: UTC)."
    )

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since >= until:
            raise serializers.ValidationError("since must be before until.")
        return attrs


class RegistryEventSerializer(serializers.ModelSerializer):
    """One change a sync saw. It happened after ``happened_after`` (None: before the portal
    first looked) and no later than ``happened_by``."""

    kind_label = serializers.CharField(source="get_kind_display")
    source = serializers.CharField(source="source.name")
    registered_model = serializers.CharField(source="registered_model.name")
    old_value = serializers.JSONField(allow_null=True)
    new_value = serializers.JSONField(allow_null=True)
    happened_after = serializers.DateTimeField(allow_null=True)
    happened_by = serializers.DateTimeField()

    class Meta:
        model = RegistryEvent
        fields = [
            "id", "kind", "kind_label", "source", "registered_model", "version", "name",
            "old_value", "new_value", "observed_at", "previously_seen_at", "upstream_at",
            "happened_after", "happened_by", "seen_by",
        ]  # fmt: skip
        read_only_fields = fields


class AliasAtQuerySerializer(serializers.Serializer):
    alias = serializers.CharField(max_length=255, help_text="The alias, e.g. champion.")
    at = serializers.DateTimeField(help_text="The moment (ISO-8601; no zone: UTC).")
    source = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=50,
        help_text="The registration in this source (default: the central one first).",
    )


class AliasAnswerSerializer(serializers.Serializer):
    """What the alias pointed at: ``outcome`` "version" (``version``), "none", or "unknown"
    with the window the syncs could not see into and the versions it may have been."""

    alias = serializers.CharField()
    at = serializers.DateTimeField()
    outcome = serializers.ChoiceField(choices=selectors.ALIAS_OUTCOMES)
    version = serializers.IntegerField(allow_null=True)
    window_start = serializers.DateTimeField(allow_null=True)
    window_end = serializers.DateTimeField(allow_null=True)
    possible = serializers.ListField(child=serializers.IntegerField(allow_null=True))
    source = serializers.CharField()
    registered_model = serializers.CharField()
    text = serializers.CharField()


class ArtifactSerializer(serializers.Serializer):
    """A version's binary in JFrog Artifactory and its last check (docs/artifactory.md)."""

    state = serializers.CharField(
        help_text="ok, missing, differs, no_location, unreachable, not_configured; "
        '"" when configured but not checked yet at this location.'
    )
    label = serializers.CharField()
    flagged = serializers.BooleanField(source="is_bad", help_text="missing or differs")
    repo = serializers.CharField(source="location.repo", default="")
    path = serializers.CharField(source="location.path", default="")
    location_source = serializers.CharField(
        source="location.source", default="", help_text="version_tags or run_tags"
    )
    url = serializers.CharField(source="link", help_text="Where to see it (tag or Artifactory UI).")
    expected_sha256 = serializers.CharField()
    found_sha256 = serializers.CharField()
    size = serializers.IntegerField(allow_null=True)
    checked_at = serializers.DateTimeField(allow_null=True)
    message = serializers.CharField()


class MarkerSerializer(serializers.Serializer):
    text = serializers.CharField()
    tone = serializers.CharField(help_text="danger: in PROD now; secondary: served before.")
    title = serializers.CharField(allow_blank=True)


class SeriesPointSerializer(serializers.Serializer):
    source = serializers.CharField(source="version.registered_model.source.name")
    model = serializers.CharField(source="version.registered_model.name")
    version = serializers.IntegerField(source="version.version")
    url = serializers.SerializerMethodField(help_text="The version page.")
    created_upstream_at = serializers.DateTimeField(
        source="version.created_upstream_at", allow_null=True
    )
    value = MetricValueField(allow_null=True, help_text="null: this version lacks the metric.")
    aliases = serializers.ListField(child=serializers.CharField())
    markers = serializers.SerializerMethodField()

    def get_url(self, point) -> str:
        rm = point.version.registered_model
        return reverse(
            "registry:version-detail",
            kwargs={"source": rm.source.name, "name": rm.name, "version": point.version.version},
        )

    @extend_schema_field(MarkerSerializer(many=True))
    def get_markers(self, point):
        found = self.context["markers"].get(point.version.pk, [])
        return MarkerSerializer(found, many=True).data


class MetricSeriesSerializer(serializers.Serializer):
    catalog_model = serializers.CharField(source="catalog_model.name")
    metric = serializers.CharField(allow_null=True, help_text="null: no version has metrics.")
    lower_is_better = serializers.BooleanField(help_text="From REGISTRY_LOWER_IS_BETTER.")
    metrics = serializers.ListField(
        child=serializers.CharField(), help_text="Every metric some version has."
    )
    points = SeriesPointSerializer(many=True, help_text="Every live version, oldest first.")
