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
    path("signoffs/<int:pk>/close/", views.signoff_close, name="signoff-close"),
    path("audit/", views.audit, name="audit"),
    path("audit.csv", views.audit_csv, name="audit-csv"),
]
