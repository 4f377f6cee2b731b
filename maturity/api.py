"""DRF API views under /api/v1/maturity/; each sets portal_access.

Reads (the criteria catalogue, the portfolio summary, each model's current maturity and its
history) are for every role, like the dashboard. A declaration goes through
``services.maturity_declare``, the very function the model page calls, so the API enforces
exactly what the page enforces; a refusal answers ``{"detail", "code"}`` with the service's
status: 400 bad input, 403 not a manager, 409 nothing to withdraw or already declared.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import roles
from core.api_support import PortalPagination, error_response, validated_filters
from core.roles import Role, user_has_role
from registry.models import CatalogModel, ModelKind, Serving

from . import selectors, services
from .serializers import (
    LEVEL_FILTER_CHOICES,
    CriterionSerializer,
    DeclarationInputSerializer,
    MaturityErrorSerializer,
    ModelMaturityDetailSerializer,
    ModelMaturitySerializer,
    PortfolioFilterSerializer,
    RecordSerializer,
    SummaryFilterSerializer,
    SummarySerializer,
    model_detail_data,
    summary_data,
)

# Everyone reads maturity (the dashboard is "managers; readable by all"); managers declare.
READERS = roles(Role.MANAGER, Role.APPROVER, Role.DATA_SCIENTIST, Role.ADMIN)
DECLARERS = roles(Role.MANAGER)
NOT_A_MANAGER = services.NOT_A_MANAGER


ERROR = MaturityErrorSerializer
BAD_FILTER = OpenApiResponse(ERROR, description="A filter has a bad value (the message says).")
NO_MODEL = OpenApiResponse(ERROR, description="No catalog model of this name.")
MODEL_NAME = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The catalog model's name."
)
CATEGORY_FILTERS = [
    OpenApiParameter("team", OpenApiTypes.STR, description="The model's effective team."),
    OpenApiParameter("kind", OpenApiTypes.STR, enum=list(ModelKind.values)),
    OpenApiParameter("serving", OpenApiTypes.STR, enum=list(Serving.values)),
]
MODEL_FILTERS = [
    *CATEGORY_FILTERS,
    OpenApiParameter(
        "level",
        OpenApiTypes.STR,
        enum=LEVEL_FILTER_CHOICES,
        description="The model's level (declared where declared, else assessed); 0 is below "
        "level 1; unassessed: no level yet.",
    ),
    OpenApiParameter("disagreement", OpenApiTypes.BOOL, description="Only declared ≠ assessed."),
    OpenApiParameter("q", OpenApiTypes.STR, description="Name or description contains."),
]


class CriterionListApi(APIView):
    """The criteria catalogue: what each level asks for, how it is evaluated, and the fix."""

    portal_access = READERS

    @extend_schema(operation_id="maturity_criteria_list", responses=CriterionSerializer(many=True))
    def get(self, request):
        return Response(CriterionSerializer(selectors.criteria_list(), many=True).data)


class SummaryApi(APIView):
    """The portfolio: models per level overall, by team and by kind, how many are unassessed
    or disputed, and the weekly trend (counts and average level) from the snapshots."""

    portal_access = READERS

    @extend_schema(
        operation_id="maturity_summary_retrieve",
        parameters=[
            *CATEGORY_FILTERS,
            OpenApiParameter(
                "weeks",
                {"type": "integer", "minimum": 1, "maximum": 104},
                description="Weeks of trend (1-104, default 52).",
            ),
        ],
        responses={200: SummarySerializer, 400: BAD_FILTER},
    )
    def get(self, request):
        serializer = validated_filters(
            SummaryFilterSerializer, request.query_params, code="bad_filter"
        )
        data = summary_data(
            filters=serializer.filters(), weeks=serializer.validated_data.get("weeks") or 52
        )
        return Response(SummarySerializer(data).data)


class ModelMaturityListApi(generics.ListAPIView):
    """Every catalog model's current maturity, by name, with the dashboard's filters; a model
    never assessed has null levels."""

    portal_access = READERS
    serializer_class = ModelMaturitySerializer
    pagination_class = PortalPagination
    queryset = CatalogModel.objects.none()  # for the schema; get_queryset builds the real one

    def get_queryset(self):
        serializer = validated_filters(
            PortfolioFilterSerializer, self.request.query_params, code="bad_filter"
        )
        return selectors.portfolio_models(filters=serializer.filters()).order_by("name", "pk")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "catalogue": selectors.criteria_by_code()}

    @extend_schema(
        operation_id="maturity_models_list",
        parameters=MODEL_FILTERS,
        responses={200: ModelMaturitySerializer(many=True), 400: BAD_FILTER},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ModelMaturityDetailApi(APIView):
    """One model: assessed level (when, by what) and declared level (who, why), whether they
    disagree, every criterion's result with its evidence, and the records, newest first."""

    portal_access = READERS

    @extend_schema(
        operation_id="maturity_models_retrieve",
        parameters=[MODEL_NAME],
        responses={200: ModelMaturityDetailSerializer, 404: NO_MODEL},
    )
    def get(self, request, name):
        view = selectors.model_maturity(catalog_model=get_object_or_404(CatalogModel, name=name))
        return Response(ModelMaturityDetailSerializer(model_detail_data(view)).data)


class DeclarationApi(APIView):
    """A manager declares the model's level (1-5) with a reason, or withdraws it (level
    null). The declaration is a record of its own; the assessment goes on beside it."""

    portal_access = DECLARERS

    def permission_denied(self, request, message=None, code=None):
        """A signed-in non-manager is told why, in the service's words."""
        user = request.user
        if user.is_authenticated and not user_has_role(user, Role.MANAGER):
            raise services.DeclarationRefused(NOT_A_MANAGER, code="not_manager", http_status=403)
        super().permission_denied(request, message=message, code=code)

    @extend_schema(
        operation_id="maturity_declaration_create",
        parameters=[MODEL_NAME],
        request=DeclarationInputSerializer,
        responses={
            201: RecordSerializer,
            400: OpenApiResponse(ERROR, description="Bad level or missing reason."),
            403: OpenApiResponse(
                ERROR, description="Not signed in, no CSRF token, or not a manager."
            ),
            404: NO_MODEL,
            409: OpenApiResponse(
                ERROR, description="Nothing to withdraw, or this level is already declared."
            ),
        },
    )
    def post(self, request, name):
        try:
            data = request.data
        except exceptions.ParseError as exc:
            return error_response(400, f"The body could not be read: {exc.detail}", "bad_request")
        if not hasattr(data, "get") or "level" not in data:
            return error_response(
                400,
                'Send a JSON object: {"level": 1 to 5, or null to withdraw, "reason": "..."}.',
                "bad_request",
            )
        level, reason = data.get("level"), data.get("reason", "")
        if reason is None:
            reason = ""
        if isinstance(level, str) and level.strip().isdigit():  # a form-encoded body
            level = int(level)
        if isinstance(level, bool) or not (level is None or isinstance(level, int)):
            return error_response(
                400, "The level must be a whole number from 1 to 5, or null.", "bad_level"
            )
        if not isinstance(reason, str):
            return error_response(400, "The reason must be a string.", "bad_request")
        catalog_model = get_object_or_404(CatalogModel, name=name)
        # A refusal (DeclarationRefused) answers {"detail", "code"} with its status through
        # core.api_support's exception handler.
        record = services.maturity_declare(
            catalog_model=catalog_model, level=level, reason=reason, user=request.user
        )
        return Response(RecordSerializer(record).data, status=201)


api_urlpatterns: list = [
    path("criteria/", CriterionListApi.as_view(), name="criteria"),
    path("summary/", SummaryApi.as_view(), name="summary"),
    path("models/", ModelMaturityListApi.as_view(), name="model-list"),
    path("models/<str:name>/", ModelMaturityDetailApi.as_view(), name="model-detail"),
    path("models/<str:name>/declaration/", DeclarationApi.as_view(), name="declaration"),
]
