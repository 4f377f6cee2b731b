"""The portal's URLs plus a stand-in of the rollback request page (pipelines:rollback-request),
for the history page's tests of its "Request rollback to this version" link."""

from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, include, path

from pipelines import urls as pipelines_urls
from portal import urls as portal_urls


def _rollback_stand_in(request, name):
    return HttpResponse(f"rollback of {name}")


_pipelines = [
    *pipelines_urls.urlpatterns,
    path("models/<str:name>/rollback/", _rollback_stand_in, name="rollback-request"),
]


def _swap(pattern: URLPattern | URLResolver):
    if (
        isinstance(pattern, URLResolver)
        and pattern.namespace == "pipelines"
        and (str(pattern.pattern) == "pipelines/")
    ):
        return path("pipelines/", include((_pipelines, "pipelines")))
    return pattern


urlpatterns = [_swap(p) for p in portal_urls.urlpatterns]
handler403 = portal_urls.handler403
handler404 = portal_urls.handler404
