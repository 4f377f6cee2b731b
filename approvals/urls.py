"""Pages under /approvals/ (urlpatterns); API under /api/v1/approvals/ (api_urlpatterns)."""

from django.urls import path

from . import views
from .api import api_urlpatterns  # noqa: F401 - portal.urls mounts it under /api/v1/approvals/

app_name = "approvals"

urlpatterns: list = [
    path("", views.inbox, name="inbox"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/decide/", views.decide, name="decide"),
    path("<int:pk>/decision-box/", views.decision_box, name="decision-box"),
    path("outbox/<int:pk>/retry/", views.outbox_retry, name="outbox-retry"),
    path("bulk/", views.bulk, name="bulk"),
    path("bulk/decide/", views.bulk_decide, name="bulk-decide"),
    path("bulk/result/<str:token>/", views.bulk_result, name="bulk-result"),
    path("audit/", views.audit, name="audit"),
    path("audit.csv", views.audit_csv, name="audit-csv"),
]
