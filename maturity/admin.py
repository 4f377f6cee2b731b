"""Django admin registrations for operators.

Everything here is read-only: the criteria are owned by the code (``maturity/criteria/``,
copied after every migrate), the records are append-only history (no add, change or delete,
even for a superuser), and the current-state rows and weekly snapshots are derived from them.
"""

from django.contrib import admin

from pipelines.admin import ReadOnlyAdmin

from .models import Criterion, MaturityRecord, MaturitySnapshot, ModelMaturity


@admin.register(Criterion)
class CriterionAdmin(ReadOnlyAdmin):
    list_display = ["code", "level", "title", "applies_to", "active"]
    list_filter = ["level", "applies_to", "active"]
    search_fields = ["code", "title", "description"]


@admin.register(MaturityRecord)
class MaturityRecordAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "catalog_model", "source", "level", "made_by"]
    list_filter = ["source", "level"]
    list_select_related = ["catalog_model"]
    search_fields = ["catalog_model__name", "made_by", "reason"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(ModelMaturity)
class ModelMaturityAdmin(ReadOnlyAdmin):
    list_display = [
        "catalog_model",
        "level",
        "assessed_level",
        "declared_level",
        "disagreement",
        "next_criterion",
        "checked_at",
    ]
    list_filter = ["level", "assessed_level", "disagreement"]
    list_select_related = ["catalog_model"]
    search_fields = ["catalog_model__name"]


@admin.register(MaturitySnapshot)
class MaturitySnapshotAdmin(ReadOnlyAdmin):
    list_display = ["week", "catalog_model", "team", "kind", "serving", "level"]
    list_filter = ["week", "kind", "serving", "level"]
    list_select_related = ["catalog_model"]
    search_fields = ["catalog_model__name", "team"]
    date_hierarchy = "week"
    show_full_result_count = False
