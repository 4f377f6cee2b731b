"""Django admin registrations for operators.

Everything here is a mirror of ADO or a record of what happened, so it is read-only: approval
requests come from the sync, decisions and their outbox messages from approvers, and the audit
trail is append-only (no add, change or delete, even for a superuser). The one action is
"Retry delivery" on failed outbox messages, which goes through ``services.outbox_retry``
(audited) like the retry button of the pages. The automated check's requests, evaluations and
callbacks are shown too (the job's token never: it is left out of the form). Freeze windows
are edited here too, through the same audited services as their page.
"""

from django.contrib import admin, messages
from django.utils.text import Truncator

from pipelines.admin import ReadOnlyAdmin

from . import services
from .models import POLICY_EDITABLE_FIELDS as POLICY_FIELDS
from .models import (
    ApprovalRequest,
    ApprovalSync,
    AuditEvent,
    CheckCallback,
    CheckEvaluation,
    CheckRequest,
    Decision,
    FreezeWindow,
    Notification,
    OutboxMessage,
    OutboxState,
    PromotionPolicy,
)
from .models.policies import ApprovalPolicy, SignOff


def _short(text: str, length: int = 80) -> str:
    return Truncator(text).chars(length)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = [
        "__str__",
        "environment",
        "status",
        "ado_status",
        "model_version",
        "requested_by",
        "created_on",
        "decided_by",
        "decided_in",
        "decided_at",
    ]
    list_filter = ["environment", "status", "ado_status", "decided_in", "project"]
    list_select_related = ["catalog_model", "model_version__registered_model__source"]
    search_fields = [
        "ado_id",
        "catalog_model__name",
        "pipeline_name",
        "run_name",
        "requested_by",
        "decided_by",
    ]
    date_hierarchy = "created_on"
    show_full_result_count = False


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "approval", "user_name", "status", "via", "delivery_state"]
    list_filter = ["status", "via", "approval__environment"]
    list_select_related = ["approval__catalog_model", "outbox"]
    search_fields = ["user_name", "comment", "approval__catalog_model__name", "request_id"]
    date_hierarchy = "created_at"

    @admin.display(description="delivery")
    def delivery_state(self, decision):
        try:
            return decision.outbox.get_state_display()
        except OutboxMessage.DoesNotExist:
            return "—"


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = [
        "pk",
        "decision",
        "state",
        "attempts",
        "created_at",
        "next_attempt_at",
        "delivered_at",
        "short_error",
    ]
    list_filter = ["state", "approval__environment"]
    list_select_related = ["decision__approval__catalog_model"]
    search_fields = ["decision__user_name", "approval__ado_id", "last_error"]
    actions = ["retry_delivery"]

    @admin.display(description="last error")
    def short_error(self, message):
        return _short(message.last_error)

    @admin.action(description="Retry delivery (failed ones only)")
    def retry_delivery(self, request, queryset):
        """Back to the queue, one message at a time, each audited; the others are named."""
        for message in queryset.order_by("pk"):
            if message.state != OutboxState.FAILED:
                self.message_user(
                    request,
                    f"Outbox message #{message.pk} was not retried: only a failed delivery "
                    f"can be, and it is {message.get_state_display().lower()}.",
                    messages.WARNING,
                )
                continue
            try:
                services.outbox_retry(message_id=message.pk, user=request.user)
            except services.DecisionRefused as refusal:  # it changed meanwhile
                self.message_user(
                    request, f"Outbox message #{message.pk}: {refusal.message}", messages.WARNING
                )
                continue
            self.message_user(
                request,
                f"Outbox message #{message.pk} is queued for delivery again.",
                messages.SUCCESS,
            )


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Append-only: no add, change or delete permission, whoever asks (superusers too), so
    no form, no save and no delete action; the database refuses UPDATE and DELETE as well."""

    list_display = ["at", "action", "actor_name", "environment", "model_name", "short_message"]
    list_filter = ["action", "environment"]
    search_fields = ["actor_name", "model_name", "message", "request_id"]
    date_hierarchy = "at"
    show_full_result_count = False

    @admin.display(description="message")
    def short_message(self, event):
        return _short(event.message, 120)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "approval", "kind", "channel", "sent_at", "short_error"]
    list_filter = ["kind", "channel"]
    list_select_related = ["approval__catalog_model"]
    search_fields = ["approval__catalog_model__name", "error"]

    @admin.display(description="error")
    def short_error(self, note):
        return _short(note.error)


@admin.register(ApprovalSync)
class ApprovalSyncAdmin(ReadOnlyAdmin):
    list_display = [
        "project",
        "last_succeeded_at",
        "last_error_at",
        "short_error",
        "last_started_at",
    ]
    list_select_related = ["project"]

    @admin.display(description="last error")
    def short_error(self, state):
        return _short(state.last_error)


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(admin.ModelAdmin):
    """When a challenger may replace the champion (operations' evaluation reads it): per model,
    or a team default (blank model)."""

    list_display = [
        "__str__",
        "metric",
        "greater_is_better",
        "threshold",
        "min_absolute_change",
        "min_relative_change",
        "updated_at",
        "updated_by",
    ]
    list_filter = ["team"]
    search_fields = ["catalog_model__name", "team", "metric"]
    autocomplete_fields = ["catalog_model"]
    readonly_fields = ["updated_at", "updated_by"]
    fieldsets = [
        ("Applies to", {"fields": ["catalog_model", "team"]}),
        (
            "Comparison",
            {
                "fields": [
                    "metric",
                    "greater_is_better",
                    "threshold",
                    "min_absolute_change",
                    "min_relative_change",
                ]
            },
        ),
        ("Changed", {"fields": ["updated_at", "updated_by"]}),
    ]

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(admin.ModelAdmin):
    """Approval policies per environment: every model, a team, or one model (a blank field
    inherits). Saves and deletes go through ``services.policy_save`` / ``policy_delete``, so
    each edit is audited with its before and after, as the API's are."""

    list_display = [
        "__str__",
        "environment",
        "scope",
        "prod_approver_not_qa_approver",
        "execution_order",
        "soak_hours",
        "soak_mode",
        "signoff_required",
        "min_maturity_level",
        "updated_at",
        "updated_by",
    ]
    list_filter = ["environment", "scope", "team"]
    search_fields = ["catalog_model__name", "team", "note"]
    autocomplete_fields = ["catalog_model"]
    readonly_fields = ["updated_at", "updated_by"]
    fieldsets = [
        ("Applies to", {"fields": ["environment", "scope", "team", "catalog_model"]}),
        (
            "Who decides",
            {
                "fields": [
                    "prod_approver_not_qa_approver",
                    "execution_order",
                    "sequence_approvers",
                    "high_risk_min_approvers",
                ]
            },
        ),
        (
            "Gates",
            {"fields": ["soak_hours", "soak_mode", "min_maturity_level", "signoff_required"]},
        ),
        ("Why", {"fields": ["note"]}),
        ("Changed", {"fields": ["updated_at", "updated_by"]}),
    ]

    def save_model(self, request, obj, form, change):
        data = {name: getattr(obj, name) for name in POLICY_FIELDS}
        saved = services.policy_save(
            user=request.user, data=data, policy_id=obj.pk if change else None
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.policy_delete(user=request.user, policy_id=obj.pk)

    def delete_queryset(self, request, queryset):
        for pk in queryset.values_list("pk", flat=True):
            services.policy_delete(user=request.user, policy_id=pk)


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyAdmin):
    """Post-deployment sign-offs (closed by approvers on the pages or the API)."""

    list_display = [
        "__str__",
        "status",
        "deployed_at",
        "deployed_by",
        "closed_by_name",
        "closed_at",
    ]
    list_filter = ["status", "environment"]
    search_fields = ["catalog_model__name", "deployed_by", "closed_by_name", "comment"]
    list_select_related = ["catalog_model", "run"]


@admin.register(CheckRequest)
class CheckRequestAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "environment", "model_name", "version", "ado_run_id", "received_at"]
    list_filter = ["environment"]
    search_fields = ["model_name", "plan_id", "job_id", "task_instance_id", "ado_run_id"]
    exclude = ["auth_token"]  # encrypted, and of no use to a person
    date_hierarchy = "received_at"
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f for f in super().get_readonly_fields(request, obj) if f != "auth_token"]


@admin.register(CheckEvaluation)
class CheckEvaluationAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "result", "evaluated_at"]
    list_filter = ["result"]
    list_select_related = ["request"]
    search_fields = ["request__model_name", "request__plan_id"]
    show_full_result_count = False


@admin.register(CheckCallback)
class CheckCallbackAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "result", "state", "attempts", "delivered_at", "short_error"]
    list_filter = ["state", "result"]
    search_fields = ["request__model_name", "request__plan_id"]
    show_full_result_count = False

    @admin.display(description="last error")
    def short_error(self, obj):
        return _short(obj.last_error)


@admin.register(FreezeWindow)
class FreezeWindowAdmin(admin.ModelAdmin):
    """Freeze windows (the page /approvals/freeze/ edits them too). Saving and deleting go
    through the services, so the audit trail records every edit with before and after;
    ``dtstart`` here is in UTC (the page's form takes it in the window's own zone)."""

    list_display = [
        "name",
        "kind",
        "environment",
        "team",
        "catalog_model",
        "rrule",
        "timezone",
        "active",
        "updated_at",
        "updated_by",
    ]
    list_filter = ["kind", "environment", "active"]
    search_fields = ["name", "reason", "team", "catalog_model__name"]
    autocomplete_fields = ["catalog_model"]
    readonly_fields = ["created_at", "created_by", "updated_at", "updated_by"]

    def save_model(self, request, obj, form, change):
        fields = {name: getattr(obj, name) for name in services.FREEZE_EDITABLE_FIELDS}
        if change:
            services.freeze_window_update(window_id=obj.pk, user=request.user, **fields)
        else:
            obj.pk = services.freeze_window_create(user=request.user, **fields).pk

    def delete_model(self, request, obj):
        services.freeze_window_delete(window_id=obj.pk, user=request.user)

    def delete_queryset(self, request, queryset):
        for pk in list(queryset.values_list("pk", flat=True)):
            services.freeze_window_delete(window_id=pk, user=request.user)
