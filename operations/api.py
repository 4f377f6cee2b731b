"""The operations read and action API under /api/v1/operations/ (the signal endpoints are in
intake_api.py). Reads go through operations.selectors with the inbox's filters; confirm and
decline call the very services the episode page calls, so the API refuses what the page
refuses (403 a role, 409 not a proposal, 400 no reason)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import roles
from core.api_support import BadRequest, PortalPagination, errors_text, validated_filters
from core.roles import Role
from registry.models import CatalogModel

from . import selectors
from .models import Episode, Signal
from .serializers import (
    DeclineInputSerializer,
    EpisodeDetailSerializer,
    EpisodeFilterSerializer,
    EpisodeSerializer,
    ModelPolicySerializer,
    ModelSummarySerializer,
    OperationsErrorSerializer,
    SignalDetailSerializer,
    SignalFilterSerializer,
    SignalSerializer,
)
from .services import proposal_confirm, proposal_decline
from .views import _rule_suggestions

READERS = roles(Role.APPROVER, Role.DATA_SCIENTIST, Role.MANAGER, Role.ADMIN)
CONFIRMERS = roles(Role.DATA_SCIENTIST, Role.APPROVER, Role.ADMIN)
ERRORS = {
    400: OpenApiResponse(
        OperationsErrorSerializer, description="Bad input (the message says what)."
    ),
    403: OpenApiResponse(OperationsErrorSerializer, description="Your roles may not do this."),
    404: OpenApiResponse(
        OperationsErrorSerializer, description="No such episode, signal or model."
    ),
    409: OpenApiResponse(
        OperationsErrorSerializer, description="The episode is not a proposal any more."
    ),
}
ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _episode_filters(query) -> selectors.EpisodeFilters:
    data = validated_filters(EpisodeFilterSerializer, query, code="invalid_filters").validated_data
    return selectors.EpisodeFilters(
        model=(data.get("model") or "").strip(),
        state=data.get("state") or "open",
        stalled=data.get("stalled"),
        kind=data.get("kind") or "",
        trigger_kind=data.get("trigger_kind") or "",
        sort=data.get("sort") or "",
    )


class EpisodeListApi(generics.ListAPIView):
    """Episodes, open by default: stalled first, then the oldest."""

    portal_access = READERS
    serializer_class = EpisodeSerializer
    pagination_class = PortalPagination
    queryset = Episode.objects.none()

    def get_queryset(self):
        return selectors.episode_list(filters=_episode_filters(self.request.query_params))

    @extend_schema(
        operation_id="operations_episodes_list",
        parameters=[EpisodeFilterSerializer],
        responses={200: EpisodeSerializer(many=True), 400: ERRORS[400]},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


def _detail_response(pk: int, status: int = 200) -> Response:
    try:
        detail = selectors.episode_detail(pk)
    except Episode.DoesNotExist:
        raise Http404("No episode with this id") from None
    data = EpisodeDetailSerializer(detail.episode, context={"detail": detail}).data
    return Response(data, status=status)


class EpisodeDetailApi(APIView):
    """One episode: its timeline, durations, evaluation (the numbers) and signals."""

    portal_access = READERS

    @extend_schema(
        operation_id="operations_episodes_retrieve",
        parameters=[ID],
        responses={200: EpisodeDetailSerializer, 404: ERRORS[404]},
    )
    def get(self, request, pk):
        return _detail_response(pk)


class EpisodeConfirmApi(APIView):
    """Confirm a proposal: its run is requested now."""

    portal_access = CONFIRMERS

    @extend_schema(
        operation_id="operations_episodes_confirm",
        parameters=[ID],
        request=None,
        responses={200: EpisodeDetailSerializer, **{k: ERRORS[k] for k in (403, 404, 409)}},
    )
    def post(self, request, pk):
        episode = get_object_or_404(Episode, pk=pk)
        proposal_confirm(episode=episode, user=request.user)
        return _detail_response(pk)


class EpisodeDeclineApi(APIView):
    """Decline a proposal, with the reason; the episode closes as declined."""

    portal_access = CONFIRMERS

    @extend_schema(
        operation_id="operations_episodes_decline",
        parameters=[ID],
        request=DeclineInputSerializer,
        responses={200: EpisodeDetailSerializer, **{k: ERRORS[k] for k in (400, 403, 404, 409)}},
    )
    def post(self, request, pk):
        episode = get_object_or_404(Episode, pk=pk)
        data = DeclineInputSerializer(data=request.data)
        if not data.is_valid():
            errors = {k: [str(e) for e in v] for k, v in data.errors.items()}
            raise BadRequest(
                {
                    "detail": errors_text(errors).replace("Invalid filters", "Invalid input"),
                    "code": "reason_required",
                    "errors": errors,
                }
            )
        proposal_decline(episode=episode, user=request.user, reason=data.validated_data["reason"])
        return _detail_response(pk)


class SignalListApi(generics.ListAPIView):
    """Signals, newest first; ``unmatched=true``: those that named no known model."""

    portal_access = READERS
    serializer_class = SignalSerializer
    pagination_class = PortalPagination
    queryset = Signal.objects.none()

    def get_queryset(self):
        data = validated_filters(
            SignalFilterSerializer, self.request.query_params, code="invalid_filters"
        ).validated_data
        return selectors.signal_list(
            filters=selectors.SignalFilters(
                model=(data.get("model") or "").strip(),
                kind=data.get("kind") or "",
                disposition=data.get("disposition") or "",
                unmatched=bool(data.get("unmatched")),
                sort=data.get("sort") or "",
            )
        )

    @extend_schema(
        operation_id="operations_signals_list",
        parameters=[SignalFilterSerializer],
        responses={200: SignalSerializer(many=True), 400: ERRORS[400]},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SignalDetailApi(APIView):
    """One signal with its raw payload and, when unmatched, the rules that would match it."""

    portal_access = READERS

    @extend_schema(
        operation_id="operations_signals_retrieve",
        parameters=[ID],
        responses={200: SignalDetailSerializer, 404: ERRORS[404]},
    )
    def get(self, request, pk):
        try:
            signal = selectors.signal_get(pk)
        except Signal.DoesNotExist:
            raise Http404("No signal with this id") from None
        suggestions = _rule_suggestions(signal) if signal.catalog_model_id is None else []
        return Response(SignalDetailSerializer(signal, context={"suggestions": suggestions}).data)


class PolicyListApi(APIView):
    """The trigger policy in effect for each catalog model (``model``: one)."""

    portal_access = READERS

    @extend_schema(
        operation_id="operations_policies_list",
        parameters=[OpenApiParameter("model", OpenApiTypes.STR, description="Catalog model name.")],
        responses={200: ModelPolicySerializer(many=True), 400: ERRORS[400], 404: ERRORS[404]},
    )
    def get(self, request):
        models = CatalogModel.objects.order_by("name")
        name = request.query_params.get("model")
        if name:
            models = models.filter(name=name)
            if not models.exists():
                raise Http404(f"No catalog model named {name!r}")
        rows = [{"model": m.name, "policy": p} for m, p in selectors.policies_in_effect(models)]
        return Response(ModelPolicySerializer(rows, many=True).data)


class ModelOperationsApi(APIView):
    """A model's operations: signals and episodes per week (90 days), recent episodes, the
    policy in effect and when monitoring was last heard from."""

    portal_access = READERS

    @extend_schema(
        operation_id="operations_model_summary",
        responses={200: ModelSummarySerializer, 404: ERRORS[404]},
    )
    def get(self, request, name):
        model = CatalogModel.objects.filter(name=name).first()
        if model is None:
            raise Http404(f"No catalog model named {name!r}")
        return Response(ModelSummarySerializer(selectors.model_summary(model)).data)


urlpatterns = [
    path("episodes/", EpisodeListApi.as_view(), name="episode-list"),
    path("episodes/<int:pk>/", EpisodeDetailApi.as_view(), name="episode-detail"),
    path("episodes/<int:pk>/confirm", EpisodeConfirmApi.as_view(), name="episode-confirm"),
    path("episodes/<int:pk>/decline", EpisodeDeclineApi.as_view(), name="episode-decline"),
    path("signals/", SignalListApi.as_view(), name="signal-list"),
    path("signals/<int:pk>/", SignalDetailApi.as_view(), name="signal-detail"),
    path("policies/", PolicyListApi.as_view(), name="policy-list"),
    path("models/<str:name>/operations", ModelOperationsApi.as_view(), name="model-operations"),
]
