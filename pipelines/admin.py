"""Django admin registrations for operators.

ADO projects are configured here, and a pipeline's kind and model can be corrected by hand
(the sync then keeps them). Runs, stages, run requests and hook deliveries are a mirror or a
log, so they are read-only.
"""

from django.contrib import admin
from django.db import models
from django.utils.text import Truncator

from core import admin_actions

from . import services
from .models import AdoProject, HookDelivery, Pipeline, PipelineRun, RunRequest, RunStage

# ADO is https only; also spares the Django 6 scheme-default warning of forms.URLField.
URL_FIELDS = {models.URLField: {"assume_scheme": "https"}}


class ReadOnlyAdmin(admin.ModelAdmin):
    """Look, never add, change or delete (the next sync would undo it)."""

    formfield_overrides = URL_FIELDS

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


SYNC_FIELDS = [
    "cursor",
    "last_sync_started_at",
    "last_sync_succeeded_at",
    "last_sync_error_at",
    "last_sync_error",
    "last_sync_stats",
    "lock_token",
    "lock_expires_at",
    "service_identity",
]


@admin.register(AdoProject)
class AdoProjectAdmin(
    admin_actions.EnvironmentDeclaredFields, admin_actions.SyncActions, admin.ModelAdmin
):
    formfield_overrides = URL_FIELDS
    list_display = [
        "name",
        "organization_url",
        "project",
        "from_environment",
        "enabled",
        "sync_state",
        "last_sync_succeeded_at",
        "last_sync_error_at",
        "short_error",
    ]
    list_filter = ["enabled"]
    search_fields = ["name", "organization_url", "project"]
    synced_what = "ADO project"
    readonly_fields = SYNC_FIELDS
    fieldsets = [
        (
            None,
            {"fields": ["name", "organization_url", "project", "enabled", "sync_interval_seconds"]},
        ),
        ("Sync state (written by the sync)", {"fields": SYNC_FIELDS}),
    ]

    @admin.display(description="sync")
    def sync_state(self, project):
        status = project.sync_status(project.name, system="Azure DevOps")
        if status.failing:
            return "failing"
        if project.last_sync_succeeded_at is None:
            return "never synced"
        return "stale" if status.stale else "ok"

    @admin.display(description="last error")
    def short_error(self, project):
        return Truncator(project.last_sync_error).chars(80)

    def queue_sync(self, project):
        services.project_sync_queue(project=project)

    def check_connection(self, project):
        return services.project_connection_check(project=project)


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    """Kind and model are editable; changing either marks them as set by hand."""

    formfield_overrides = URL_FIELDS

    list_display = [
        "name",
        "project",
        "kind",
        "catalog_model",
        "kind_set_by_hand",
        "last_synced_at",
        "deleted_upstream_at",
    ]
    list_filter = ["project", "kind", "kind_set_by_hand"]
    list_select_related = ["project", "catalog_model"]
    search_fields = ["name", "folder", "catalog_model__name"]
    autocomplete_fields = ["catalog_model"]
    fields = [
        "project",
        "ado_id",
        "name",
        "folder",
        "kind",
        "catalog_model",
        "kind_set_by_hand",
        "web_url",
        "first_seen_at",
        "last_synced_at",
        "deleted_upstream_at",
    ]
    readonly_fields = [
        "project",
        "ado_id",
        "name",
        "folder",
        "web_url",
        "first_seen_at",
        "last_synced_at",
        "deleted_upstream_at",
    ]

    def has_add_permission(self, request, obj=None):
        return False  # pipelines come from ADO

    def save_model(self, request, obj, form, change):
        if change and {"kind", "catalog_model"} & set(form.changed_data):
            obj.kind_set_by_hand = True
        super().save_model(request, obj, form, change)


class RunStageInline(admin.TabularInline):
    model = RunStage
    extra = 0
    can_delete = False
    fields = [
        "order",
        "name",
        "environment",
        "target",
        "state",
        "result",
        "waiting_for_approval",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(PipelineRun)
class PipelineRunAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "state",
        "result",
        "trigger",
        "reason",
        "model_version",
        "queued_at",
        "finished_at",
    ]
    list_filter = ["state", "result", "pipeline__kind", "pipeline__project"]
    list_select_related = ["pipeline", "model_version__registered_model__source"]
    search_fields = ["name", "pipeline__name", "requested_by"]
    date_hierarchy = "queued_at"
    show_full_result_count = False
    inlines = [RunStageInline]


@admin.register(RunStage)
class RunStageAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "environment",
        "target",
        "state",
        "result",
        "waiting_for_approval",
        "finished_at",
    ]
    list_filter = ["environment", "state", "result", "waiting_for_approval"]
    list_select_related = ["run__pipeline"]
    search_fields = ["name", "run__pipeline__name"]
    show_full_result_count = False


@admin.register(RunRequest)
class RunRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "requested_at",
        "pipeline",
        "reason",
        "requested_by",
        "status",
        "short_error",
        "sent_at",
        "run",
    ]
    list_filter = ["status", "reason"]
    list_select_related = ["pipeline", "requested_by", "run__pipeline"]
    search_fields = ["pipeline__name", "note", "error"]

    @admin.display(description="error")
    def short_error(self, request_row):
        return Truncator(request_row.error).chars(80)


@admin.register(HookDelivery)
class HookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "project", "event_type", "event_id"]
    list_filter = ["project", "event_type"]
    list_select_related = ["project"]
    search_fields = ["event_id", "event_type"]
