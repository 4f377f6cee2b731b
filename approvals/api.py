"""DRF API views under /api/v1/approvals/; each sets portal_access."""

api_urlpatterns: list = []
