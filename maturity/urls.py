"""HTML pages under /maturity/ (urlpatterns) and the API under /api/v1/maturity/ (api_urlpatterns)."""

app_name = "maturity"

urlpatterns: list = []
api_urlpatterns: list = []
