"""Pages under /maturity/ (urlpatterns); API under /api/v1/maturity/ (api_urlpatterns)."""

from django.urls import path  # noqa: F401

app_name = "maturity"

urlpatterns: list = [
    # dashboard pages (views.py)
    # model actions (model_views.py)
]
api_urlpatterns: list = [
    # API (api.py)
]
