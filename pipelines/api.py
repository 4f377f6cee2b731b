"""DRF API views under /api/v1/pipelines/; each sets portal_access.

Read-only views of the ADO mirror, with the same filters as the pages (both read through
pipelines.selectors). Bad input is a 400 whose ``detail`` says what was wrong.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import ANY_ROLE, roles
from core.api_support import BadRequest, PortalPagination
from registry.models import CatalogModel, ModelVersion

from . import selectors, services
from .forms import PipelineFilterForm, RunFilterForm, form_errors_text
from .models import Pipeline, PipelineKind, PipelineRun
from .sections import TRIGGER_ROLES
from .serializers import (
    ModelDeploymentsSerializer,
    PipelineRunDetailSerializer,
    PipelineRunListSerializer,
    PipelineSerializer,
    PipelinesErrorSerializer,
    RollbackInputSerializer,
    RollbackRequestSerializer,
)


def _bad_filters(form) -> BadRequest:
    errors = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
    return BadRequest({"detail": form_errors_text(form), "errors": errors})


ERRORS = {
    400: OpenApiResponse(
        PipelinesErrorSerializer, description="Bad input (the message says what)."
    ),
    404: OpenApiResponse(PipelinesErrorSerializer, description="No such run or model."),
}
PIPELINE_FILTERS = [
    OpenApiParameter("model", OpenApiTypes.STR, description="Catalog model name (exact)."),
    OpenApiParameter(
        "kind",
        OpenApiTypes.STR,
        enum=[k for k, _ in PipelineKind.choices],
        description="Pipeline kind.",
    ),
    OpenApiParameter("project", OpenApiTypes.STR, description="ADO project (its short name)."),
]
RUN_FILTERS = [
    *PIPELINE_FILTERS,
    OpenApiParameter(
        "state",
        OpenApiTypes.STR,
        enum=list(selectors.STATE_FILTERS),
        description="running (in progress or canceling), waiting (running, a stage waits for "
        "an approval) or completed.",
    ),
    OpenApiParameter(
        "result", OpenApiTypes.STR, enum=list(selectors.RESULT_FILTERS), description="Result."
    ),
    OpenApiParameter(
        "trigger",
        OpenApiTypes.STR,
        description="Why it ran: manual, schedule, new-data, drift, threshold, or an ADO "
        "build reason (any case).",
    ),
    OpenApiParameter(
        "date_from", OpenApiTypes.DATE, description="Queued on or after this day (UTC)."
    ),
    OpenApiParameter(
        "date_to", OpenApiTypes.DATE, description="Queued on or before this day (UTC)."
    ),
    OpenApiParameter(
        "sort",
        OpenApiTypes.STR,
        enum=[*selectors.SORTS, *(f"-{k}" for k in selectors.SORTS)],
        description="Sort key; '-' prefix for descending. Default: -started (newest first).",
    ),
]


class PipelineListApi(generics.ListAPIView):
    """ADO pipelines the portal mirrors, each with its kind and the model it serves."""

    portal_access = ANY_ROLE
    serializer_class = PipelineSerializer
    pagination_class = PortalPagination
    queryset = Pipeline.objects.none()  # for the schema; get_queryset builds the real one

    def get_queryset(self):
        form = PipelineFilterForm(self.request.query_params)
        if not form.is_valid():
            raise _bad_filters(form)
        return selectors.pipeline_list(filters=form.filters())

    @extend_schema(
        operation_id="pipelines_list",
        parameters=PIPELINE_FILTERS,
        responses={200: PipelineSerializer(many=True), 400: ERRORS[400]},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PipelineRunListApi(generics.ListAPIView):
    """Pipeline runs, newest first, with their stages: the same filters as the runs page."""

    portal_access = ANY_ROLE
    serializer_class = PipelineRunListSerializer
    pagination_class = PortalPagination
    queryset = PipelineRun.objects.none()  # for the schema; get_queryset builds the real one

    def get_queryset(self):
        form = RunFilterForm(self.request.query_params)
        if not form.is_valid():
            raise _bad_filters(form)
        return selectors.run_list(filters=form.filters())

    @extend_schema(
        operation_id="pipelines_runs_list",
        parameters=RUN_FILTERS,
        responses={200: PipelineRunListSerializer(many=True), 400: ERRORS[400]},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PipelineRunDetailApi(APIView):
    """One run with its stages and parameters."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="pipelines_run_retrieve",
        parameters=[OpenApiParameter("pk", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: PipelineRunDetailSerializer, 404: ERRORS[404]},
    )
    def get(self, request, pk):
        try:
            run = selectors.run_get(pk=pk)
        except PipelineRun.DoesNotExist:
            raise Http404 from None
        return Response(PipelineRunDetailSerializer(run).data)


class ModelDeploymentListApi(APIView):
    """What is deployed now for one model: every version per environment, by target."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="pipelines_model_deployments",
        parameters=[
            OpenApiParameter(
                "name",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="Catalog model name (may contain dots and spaces; URL-encode it).",
            )
        ],
        responses={200: ModelDeploymentsSerializer, 404: ERRORS[404]},
    )
    def get(self, request, name):
        try:
            model, deployments = selectors.model_deployments_get(name=name)
        except CatalogModel.DoesNotExist:
            raise Http404 from None
        data = {"model": model.name, **deployments}
        return Response(ModelDeploymentsSerializer(data).data)


class RollbackApi(APIView):
    """Request a rollback: the model's release pipeline for a version that served before."""

    portal_access = roles(*TRIGGER_ROLES)

    @extend_schema(
        operation_id="pipelines_model_rollback",
        parameters=[
            OpenApiParameter(
                "name",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="Catalog model name (may contain dots and spaces; URL-encode it).",
            )
        ],
        request=RollbackInputSerializer,
        responses={201: RollbackRequestSerializer, 400: ERRORS[400], 404: ERRORS[404]},
    )
    def post(self, request, name):
        model = get_object_or_404(CatalogModel, name=name)
        data = RollbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = ModelVersion.objects.filter(
            pk=data.validated_data["version"], registered_model__catalog_model=model
        ).first()
        if version is None:
            raise BadRequest({"detail": f"{model.name} has no version with this id."})
        run_request = services.rollback_request(
            catalog_model=model,
            version=version,
            environment=data.validated_data["environment"],
            reason=data.validated_data["reason"],
            user=request.user,
        )
        return Response(RollbackRequestSerializer(run_request).data, status=201)
