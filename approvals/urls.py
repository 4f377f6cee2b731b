"""HTML pages under /approvals/ (urlpatterns) and the API under /api/v1/approvals/ (api_urlpatterns)."""

app_name = "approvals"

urlpatterns: list = []
api_urlpatterns: list = []
