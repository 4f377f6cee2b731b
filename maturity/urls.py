"""Pages under /maturity/ (urlpatterns); API under /api/v1/maturity/ (api_urlpatterns)."""

from django.urls import path

from . import api, model_views, views

app_name = "maturity"

urlpatterns: list = [
    # dashboard pages (views.py)
    path("", views.dashboard, name="dashboard"),
    path("export.csv", views.dashboard_csv, name="dashboard-csv"),
    path("criteria/", views.criteria, name="criteria"),
    # model actions (model_views.py)
    path("models/<str:name>/declare/", model_views.declare, name="declare"),
    path("models/<str:name>/assess/", model_views.assess, name="assess"),
]
api_urlpatterns: list = [
    # API (api.py)
    *api.api_urlpatterns,
]
