"""Pages under /approvals/ (urlpatterns); API under /api/v1/approvals/ (api_urlpatterns)."""

from django.urls import path

from . import views
from .api import api_urlpatterns as decision_api_urlpatterns
from .api_policies import policy_api_urlpatterns

app_name = "approvals"

# portal.urls mounts it under /api/v1/approvals/
api_urlpatterns: list = [*decision_api_urlpatterns, *policy_api_urlpatterns]

urlpatterns: list = [
    path("", views.inbox, name="inbox"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/decide/", views.decide, name="decide"),
    path("<int:pk>/decision-box/", views.decision_box, name="decision-box"),
    path("outbox/<int:pk>/retry/", views.outbox_retry, name="outbox-retry"),
    path("bulk/", views.bulk, name="bulk"),
    path("bulk/decide/", views.bulk_decide, name="bulk-decide"),
    path("bulk/result/<str:token>/", views.bulk_result, name="bulk-result"),
    path("signoffs/<int:pk>/close/", views.signoff_close, name="signoff-close"),
    path("audit/", views.audit, name="audit"),
    path("audit.csv", views.audit_csv, name="audit-csv"),
    path("freeze/", views.freeze_page, name="freeze"),
    path("freeze/new/", views.freeze_new, name="freeze-new"),
    path("freeze/<int:pk>/edit/", views.freeze_edit, name="freeze-edit"),
    path("freeze/<int:pk>/active/", views.freeze_deactivate, name="freeze-active"),
    path("freeze/<int:pk>/delete/", views.freeze_delete, name="freeze-delete"),
]
