from django.contrib import admin
from django.urls import include, path

from approvals.urls import api_urlpatterns as approvals_api
from maturity.urls import api_urlpatterns as maturity_api
from operations.urls import api_urlpatterns as operations_api
from pipelines.urls import api_urlpatterns as pipelines_api
from registry.urls import api_urlpatterns as registry_api

from . import api, token_views, views

api_v1 = [
    path("me", api.MeApi.as_view(), name="me"),
    path("registry/", include((registry_api, "registry"))),
    path("pipelines/", include((pipelines_api, "pipelines"))),
    path("approvals/", include((approvals_api, "approvals"))),
    path("operations/", include((operations_api, "operations"))),
    path("maturity/", include((maturity_api, "maturity"))),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/reauthenticate/", views.ReauthenticateView.as_view(), name="reauthenticate"),
    path("auth/sign-in/", views.entra_sign_in, name="entra-sign-in"),
    path("auth/callback/", views.entra_callback, name="entra-callback"),
    path(
        "auth/front-channel-logout/",
        views.entra_front_channel_logout,
        name="entra-front-channel-logout",
    ),
    path("account/api-tokens/", token_views.api_tokens_page, name="api-tokens"),
    path(
        "account/api-tokens/<int:pk>/revoke/",
        token_views.api_token_revoke,
        name="api-token-revoke",
    ),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", api.SchemaApi.as_view(), name="api-schema"),
    path("api/docs/", api.SchemaDocsView.as_view(), name="api-docs"),
    path("registry/", include("registry.urls")),
    path("pipelines/", include("pipelines.urls")),
    path("approvals/", include("approvals.urls")),
    path("operations/", include("operations.urls")),
    path("maturity/", include("maturity.urls")),
]

handler403 = "portal.errors.permission_denied"
handler404 = "portal.errors.page_not_found"
handler500 = "portal.errors.server_error"
handler400 = "portal.errors.bad_request"
