"""Pages under /approvals/ (urlpatterns); API under /api/v1/approvals/ (api_urlpatterns)."""

app_name = "approvals"

urlpatterns: list = []
api_urlpatterns: list = []
