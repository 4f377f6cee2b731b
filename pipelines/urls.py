"""Pages under /pipelines/ (urlpatterns); API under /api/v1/pipelines/ (api_urlpatterns)."""

app_name = "pipelines"

urlpatterns: list = []
api_urlpatterns: list = []
