"""Pages under /pipelines/ (urlpatterns); API under /api/v1/pipelines/ (api_urlpatterns).

Model names may contain dots (Unity Catalog ``catalog.schema.model``) and spaces, never "/",
so they travel as ``<str:name>``.
"""

from django.urls import path

from . import api, api_history, hooks, views, views_history, views_rollback

app_name = "pipelines"

urlpatterns: list = [
    path("", views.run_list, name="run-list"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/row/", views.run_row, name="run-row"),
    path("pipelines/<int:pk>/trigger/", views.pipeline_trigger, name="trigger"),
    path("models/<str:name>/history/", views_history.model_history, name="model-history"),
    path(
        "models/<str:name>/history.csv",
        views_history.model_history_csv,
        name="model-history-csv",
    ),
    path(
        "models/<str:name>/rollback/",
        views_rollback.rollback_request_page,
        name="rollback-request",
    ),
    path("hooks/ado/<slug:project>/", hooks.ado_hook, name="ado-hook"),
]

api_urlpatterns: list = [
    path("pipelines/", api.PipelineListApi.as_view(), name="pipeline-list"),
    path("runs/", api.PipelineRunListApi.as_view(), name="run-list"),
    path("runs/<int:pk>/", api.PipelineRunDetailApi.as_view(), name="run-detail"),
    path(
        "models/<str:name>/deployments/",
        api.ModelDeploymentListApi.as_view(),
        name="model-deployments",
    ),
    path(
        "models/<str:name>/history",
        api_history.ModelHistoryApi.as_view(),
        name="model-history",
    ),
    path(
        "models/<str:name>/serving",
        api_history.ModelServingApi.as_view(),
        name="model-serving",
    ),
    path("models/<str:name>/rollback", api.RollbackApi.as_view(), name="model-rollback"),
]
