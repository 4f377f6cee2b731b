"""The deployment history API: a model's records with who approved them, and what served in
an environment at a moment (the history page's question). Bad input is a 400 with a message."""

from __future__ import annotations

from django import forms
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import ANY_ROLE
from core.api_support import BadRequest, PortalPagination
from registry.models import CatalogModel

from . import selectors_history as history
from .api import ERRORS
from .forms import form_errors_text
from .forms_history import ENVIRONMENT_CHOICES, ServingForm
from .serializers_history import (
    DeploymentRecordSerializer,
    ServingAnswerSerializer,
    record_item,
    serving_item,
)

NAME = OpenApiParameter(
    "name",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Catalog model name (may contain dots and spaces; URL-encode it).",
)
ENVIRONMENTS = [value for value, _ in ENVIRONMENT_CHOICES]


class _EnvironmentFilter(forms.Form):
    environment = forms.ChoiceField(required=False, choices=[("", "any"), *ENVIRONMENT_CHOICES])


def _bad(form) -> BadRequest:
    errors = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
    return BadRequest({"detail": form_errors_text(form), "errors": errors})


class ModelHistoryApi(APIView):
    """A model's deployment history, newest first: per environment and target, the version
    that started serving, when, until when, the run and who approved it."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="pipelines_model_history",
        parameters=[
            NAME,
            OpenApiParameter(
                "environment", OpenApiTypes.STR, enum=ENVIRONMENTS, description="QA or PROD."
            ),
        ],
        responses={
            200: DeploymentRecordSerializer(many=True),
            400: ERRORS[400],
            404: ERRORS[404],
        },
    )
    def get(self, request, name):
        model = get_object_or_404(CatalogModel, name=name)
        form = _EnvironmentFilter(request.query_params)
        if not form.is_valid():
            raise _bad(form)
        placed = history.placed_records(list(history.deployment_records(model)))
        environment = form.cleaned_data.get("environment") or ""
        items = [
            record_item(item)
            for item in reversed(placed_sorted(placed))
            if not environment or item.record.environment == environment
        ]
        paginator = PortalPagination()
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response(DeploymentRecordSerializer(page, many=True).data)


def placed_sorted(placed):
    return sorted(placed, key=lambda item: (item.record.started_at, item.record.pk))


class ModelServingApi(APIView):
    """What served in an environment at a moment: per target, the version, since when and
    until when, the run and who approved it. ``at`` is ISO 8601 (UTC if no offset)."""

    portal_access = ANY_ROLE

    @extend_schema(
        operation_id="pipelines_model_serving",
        parameters=[
            NAME,
            OpenApiParameter(
                "environment",
                OpenApiTypes.STR,
                enum=ENVIRONMENTS,
                required=True,
                description="QA or PROD.",
            ),
            OpenApiParameter(
                "at",
                OpenApiTypes.DATETIME,
                required=True,
                description="The moment, e.g. 2026-10-03T14:00:00Z.",
            ),
        ],
        responses={200: ServingAnswerSerializer, 400: ERRORS[400], 404: ERRORS[404]},
    )
    def get(self, request, name):
        model = get_object_or_404(CatalogModel, name=name)
        form = ServingForm(request.query_params)
        if not form.is_valid():
            raise _bad(form)
        environment, at = form.cleaned_data["environment"], form.cleaned_data["at"]
        answer = history.serving_at(model, environment, at)
        data = {
            "model": model.name,
            "environment": environment,
            "at": at,
            "serving": [serving_item(s) for s in answer],
        }
        return Response(ServingAnswerSerializer(data).data)
