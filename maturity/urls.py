"""Pages under /maturity/ (urlpatterns); API under /api/v1/maturity/ (api_urlpatterns)."""

app_name = "maturity"

urlpatterns: list = []
api_urlpatterns: list = []
