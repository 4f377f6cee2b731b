"""Pages under /approvals/ (urlpatterns); API under /api/v1/approvals/ (api_urlpatterns)."""

from .api import api_urlpatterns  # noqa: F401 - portal.urls mounts it under /api/v1/approvals/

app_name = "approvals"

urlpatterns: list = []
