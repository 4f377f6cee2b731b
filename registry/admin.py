"""Django admin registrations for operators.

Sources and catalog entries are edited here; registered models, versions and webhook
deliveries are a mirror (written by the sync and the webhook endpoint), and the registry history
is append-only, so they are read-only; so are the binaries' Artifactory checks (written by the
check, docs/artifactory.md).
"""

from django import forms
from django.contrib import admin
from django.db import models
from django.utils.text import Truncator

from core import admin_actions

from . import services
from .models import (
    ArtifactCheck,
    CatalogModel,
    ModelCard,
    ModelCardRevision,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    RegistrySource,
    TeamPreference,
    WebhookDelivery,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """A mirror: look, never add, change or delete (the next sync would undo it)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RegistrySource)
class RegistrySourceAdmin(
    admin_actions.EnvironmentDeclaredFields, admin_actions.SyncActions, admin.ModelAdmin
):
    # Links to the MLflow UI: https when no scheme is typed (Django 6's default too).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = [
        "name",
        "tracking_uri",
        "is_central",
        "from_environment",
        "enabled",
        "last_sync_succeeded_at",
        "last_sync_error_at",
        "short_error",
    ]
    list_filter = ["enabled", "is_central"]
    search_fields = ["name", "tracking_uri"]
    synced_what = "registry source"
    readonly_fields = [
        "cursor_ms",
        "last_sync_started_at",
        "last_sync_succeeded_at",
        "last_full_sync_at",
        "last_sync_error_at",
        "last_sync_error",
        "last_sync_stats",
        "lock_token",
        "lock_expires_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "tracking_uri",
                    "registry_uri",
                    "ui_url",
                    "is_central",
                    "enabled",
                    "sync_interval_seconds",
                    "full_sync_interval_seconds",
                ]
            },
        ),
        (
            "Sync state (written by the sync)",
            {
                "fields": [
                    "last_sync_started_at",
                    "last_sync_succeeded_at",
                    "last_full_sync_at",
                    "last_sync_error_at",
                    "last_sync_error",
                    "last_sync_stats",
                    "cursor_ms",
                    "lock_token",
                    "lock_expires_at",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]

    @admin.display(description="last error")
    def short_error(self, source):
        return Truncator(source.last_sync_error).chars(80)

    def queue_sync(self, source):
        services.registry_sync_queue(source=source)

    def check_connection(self, source):
        return services.registry_connection_check(source=source)


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "kind",
        "registry_kind",
        "serving",
        "registry_serving",
        "team",
        "registry_team",
        "headline_alias",
        "updated_at",
    ]
    list_filter = ["kind", "serving", "registry_kind", "registry_serving"]
    search_fields = ["name", "team", "registry_team", "description"]
    readonly_fields = [
        "registry_kind",
        "registry_serving",
        "registry_team",
        "created_by",
        "created_at",
        "updated_at",
    ]


@admin.register(RegisteredModel)
class RegisteredModelAdmin(ReadOnlyAdmin):
    list_display = ["name", "source", "catalog_model", "updated_upstream_at", "deleted_upstream_at"]
    list_filter = ["source"]
    list_select_related = ["source", "catalog_model"]
    search_fields = ["name"]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = [
        "registered_model",
        "version",
        "status",
        "user_id",
        "created_upstream_at",
        "deleted_upstream_at",
    ]
    list_filter = ["registered_model__source", "status"]
    list_select_related = ["registered_model__source"]
    search_fields = ["registered_model__name", "run_id"]
    show_full_result_count = False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "source", "event", "model_name", "delivery_id"]
    list_filter = ["source", "event"]
    list_select_related = ["source"]
    search_fields = ["delivery_id", "model_name"]


@admin.register(RegistryEvent)
class RegistryEventAdmin(ReadOnlyAdmin):
    """The registry history: what each sync saw change (append-only)."""

    list_display = [
        "observed_at",
        "registered_model",
        "version",
        "kind",
        "name",
        "old_value",
        "new_value",
        "previously_seen_at",
        "seen_by",
    ]
    list_filter = ["kind", "seen_by", "source"]
    list_select_related = ["registered_model__source", "source"]
    search_fields = ["registered_model__name", "name"]
    date_hierarchy = "observed_at"
    show_full_result_count = False


@admin.register(ModelCard)
class ModelCardAdmin(ReadOnlyAdmin):
    """Cards are changed on the card page (audited); the admin only reads them."""

    list_display = ["catalog_model", "risk_rating", "review_status", "reviewed_by", "updated_at"]
    list_filter = ["risk_rating", "review_status"]
    search_fields = ["catalog_model__name"]


@admin.register(ModelCardRevision)
class ModelCardRevisionAdmin(ReadOnlyAdmin):
    list_display = ["card", "action", "user_name", "at"]
    list_filter = ["action"]
    search_fields = ["card__catalog_model__name", "user_name"]


@admin.register(ArtifactCheck)
class ArtifactCheckAdmin(ReadOnlyAdmin):
    list_display = ["model_version", "state", "repo", "path", "checked_at"]
    list_filter = ["state", "model_version__registered_model__source"]
    list_select_related = ["model_version__registered_model__source"]
    search_fields = ["model_version__registered_model__name", "path"]


class TeamPreferenceForm(forms.ModelForm):
    class Meta:
        model = TeamPreference
        fields = ["team", "headline_alias"]

    def clean_headline_alias(self):
        # The same rule as the team preferences page and the catalog edit form.
        return services.headline_alias_clean(self.cleaned_data.get("headline_alias"), field=None)


@admin.register(TeamPreference)
class TeamPreferenceAdmin(admin.ModelAdmin):
    form = TeamPreferenceForm
    list_display = ["team", "headline_alias", "updated_by", "updated_at"]
    search_fields = ["team", "headline_alias"]
    readonly_fields = ["updated_by", "updated_at"]

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user.get_username()[:300]
        super().save_model(request, obj, form, change)
