"""Pages under /registry/ (urlpatterns); API under /api/v1/registry/ (api_urlpatterns)."""

app_name = "registry"

urlpatterns: list = []
api_urlpatterns: list = []
