"""Pages under /registry/ (urlpatterns); API under /api/v1/registry/ (api_urlpatterns).

Model names may contain dots (Unity Catalog ``catalog.schema.model``) and spaces, never "/" or
":", so they travel as ``<str:name>``.
The create page lives at ``catalog/new/`` so that no model name can hide it or be hidden by it.
"""

from django.urls import path

from . import api, api_cards, views, views_cards, webhooks

app_name = "registry"

urlpatterns: list = [
    path("models/", views.model_list, name="model-list"),
    path("catalog/new/", views.model_create, name="model-create"),
    path("catalog/teams/", views.team_preferences, name="team-preferences"),
    path("models/<str:name>/", views.model_detail, name="model-detail"),
    path("models/<str:name>/edit/", views.model_edit, name="model-edit"),
    path("models/<str:name>/card/", views_cards.model_card, name="model-card"),
    path("models/<str:name>/compare/", views.model_compare, name="model-compare"),
    path("models/<str:name>/metrics/", views.model_metrics, name="model-metrics"),
    path(
        "sources/<slug:source>/models/<str:name>/versions/<int:version>/",
        views.version_detail,
        name="version-detail",
    ),
    path(
        "sources/<slug:source>/models/<str:name>/versions/<int:version>/artifact/check/",
        views.version_artifact_check,
        name="version-artifact-check",
    ),
    path("webhooks/mlflow/<slug:source>/", webhooks.mlflow_webhook, name="mlflow-webhook"),
]

api_urlpatterns: list = [
    path("sources/", api.RegistrySourceListApi.as_view(), name="source-list"),
    path("models/", api.CatalogModelListApi.as_view(), name="model-list"),
    path("models/<str:name>/", api.CatalogModelDetailApi.as_view(), name="model-detail"),
    path("models/<str:name>/versions/", api.ModelVersionListApi.as_view(), name="version-list"),
    path("models/<str:name>/card", api_cards.ModelCardApi.as_view(), name="model-card"),
    path(
        "models/<str:name>/card/review",
        api_cards.ModelCardReviewApi.as_view(),
        name="model-card-review",
    ),
    path(
        "models/<str:name>/card/revisions",
        api_cards.ModelCardRevisionListApi.as_view(),
        name="model-card-revisions",
    ),
    path("models/<str:name>/compare/", api.ModelVersionCompareApi.as_view(), name="model-compare"),
    path("models/<str:name>/events", api.RegistryEventListApi.as_view(), name="model-events"),
    path("models/<str:name>/aliases/at", api.AliasAtApi.as_view(), name="model-alias-at"),
    path(
        "models/<str:name>/metric-series",
        api.MetricSeriesApi.as_view(),
        name="model-metric-series",
    ),
    path(
        "sources/<slug:source>/models/<str:name>/versions/<int:version>/",
        api.ModelVersionDetailApi.as_view(),
        name="version-detail",
    ),
    path(
        "sources/<slug:source>/models/<str:name>/versions/<int:version>/artifact/",
        api.ModelVersionArtifactApi.as_view(),
        name="version-artifact",
    ),
]
