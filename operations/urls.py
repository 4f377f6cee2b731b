"""Pages under /operations/ (urlpatterns); API under /api/v1/operations/ (api_urlpatterns):
the signal endpoints (intake_api.py) and the read and action API (api.py)."""

from . import api, intake_api, views

app_name = "operations"

urlpatterns: list = [*views.urlpatterns]
api_urlpatterns: list = [*intake_api.urlpatterns, *api.urlpatterns]
