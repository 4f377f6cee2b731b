"""The freeze windows API under /api/v1/approvals/freeze-windows: everyone with a role reads
the windows and what is frozen now; managers and admins create, change and delete them
(403 otherwise), through the same audited services as the page. Bad input (an RRULE that does
not parse or never matches, an unknown time zone) is a 400 that says what is wrong."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import roles
from core.api_support import error_response
from core.roles import Role, user_has_role

from . import selectors, services
from .models import FreezeWindow
from .serializers import ApprovalsErrorSerializer
from .serializers.freeze import (
    FreezeWindowInputSerializer,
    FreezeWindowListSerializer,
    FreezeWindowSerializer,
)

READERS = roles(Role.APPROVER, Role.MANAGER, Role.ADMIN, Role.DATA_SCIENTIST)
EDITORS = (Role.MANAGER, Role.ADMIN)
FORBIDDEN = "Only managers and admins edit freeze windows."

ERROR = ApprovalsErrorSerializer
BAD_INPUT = OpenApiResponse(
    ERROR,
    description="Bad input: an RRULE that does not parse, or has no occurrence in the next 2 "
    "years; an unknown time zone; no duration (code invalid_freeze_window, errors per field).",
)
NOT_EDITOR = OpenApiResponse(ERROR, description=f"{FORBIDDEN} (or no CSRF token).")
NOT_FOUND = OpenApiResponse(ERROR, description="No such freeze window.")
WINDOW_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The freeze window's id."
)


def _editor_only(request) -> None:
    if not user_has_role(request.user, *EDITORS):
        raise exceptions.PermissionDenied(FORBIDDEN)


def _bad_input(errors: dict) -> Response:
    flat = {
        name: [str(m) for m in (msgs if isinstance(msgs, list) else [msgs])]
        for name, msgs in errors.items()
    }
    text = "; ".join(
        " ".join(msgs) if name in ("non_field_errors", "__all__") else f"{name}: {' '.join(msgs)}"
        for name, msgs in flat.items()
    )
    return error_response(
        400, f"Invalid freeze window: {text}", "invalid_freeze_window", errors=flat
    )


def _body(request):
    try:
        data = request.data
    except exceptions.ParseError as exc:
        return None, error_response(400, f"The body could not be read: {exc.detail}", "bad_request")
    if not hasattr(data, "get"):
        return None, error_response(400, "Send a JSON object.", "bad_request")
    return data, None


def _model_errors(error: ValidationError) -> dict:
    if hasattr(error, "error_dict"):
        renamed = {"catalog_model": "model"}
        return {
            renamed.get(k, k): [m for e in v for m in e.messages]
            for k, v in error.error_dict.items()
        }
    return {"non_field_errors": error.messages}


class FreezeWindowListApi(APIView):
    """Every freeze window (active first) and what is frozen now per environment; POST
    creates one (managers and admins)."""

    portal_access = READERS

    @extend_schema(
        operation_id="approvals_freeze_windows_list", responses={200: FreezeWindowListSerializer}
    )
    def get(self, request):
        windows = list(selectors.freeze_window_list())
        frozen = selectors.frozen_now(windows=windows, now=timezone.now())
        body = {"frozen_now": frozen, "count": len(windows), "results": windows}
        return Response(FreezeWindowListSerializer(body).data)

    @extend_schema(
        operation_id="approvals_freeze_windows_create",
        request=FreezeWindowInputSerializer,
        responses={201: FreezeWindowSerializer, 400: BAD_INPUT, 403: NOT_EDITOR},
    )
    def post(self, request):
        _editor_only(request)
        data, problem = _body(request)
        if problem:
            return problem
        serializer = FreezeWindowInputSerializer(data=data)
        if not serializer.is_valid():
            return _bad_input(serializer.errors)
        try:
            window = services.freeze_window_create(user=request.user, **serializer.validated_data)
        except ValidationError as error:
            return _bad_input(_model_errors(error))
        return Response(FreezeWindowSerializer(window).data, status=201)


class FreezeWindowDetailApi(APIView):
    """One window; PATCH changes any of its fields (``active: false`` deactivates it),
    DELETE removes it (managers and admins; both audited with the window before and after)."""

    portal_access = READERS

    def _window(self, pk) -> FreezeWindow:
        try:
            return selectors.freeze_window_get(pk=pk)
        except FreezeWindow.DoesNotExist:
            raise Http404 from None

    @extend_schema(
        operation_id="approvals_freeze_windows_retrieve",
        parameters=[WINDOW_ID],
        responses={200: FreezeWindowSerializer, 404: NOT_FOUND},
    )
    def get(self, request, pk):
        return Response(FreezeWindowSerializer(self._window(pk)).data)

    @extend_schema(
        operation_id="approvals_freeze_windows_partial_update",
        parameters=[WINDOW_ID],
        request=FreezeWindowInputSerializer(partial=True),
        responses={200: FreezeWindowSerializer, 400: BAD_INPUT, 403: NOT_EDITOR, 404: NOT_FOUND},
    )
    def patch(self, request, pk):
        _editor_only(request)
        window = self._window(pk)
        data, problem = _body(request)
        if problem:
            return problem
        serializer = FreezeWindowInputSerializer(window, data=data, partial=True)
        if not serializer.is_valid():
            return _bad_input(serializer.errors)
        try:
            window = services.freeze_window_update(
                window_id=window.pk, user=request.user, **serializer.validated_data
            )
        except ValidationError as error:
            return _bad_input(_model_errors(error))
        return Response(FreezeWindowSerializer(window).data)

    @extend_schema(
        operation_id="approvals_freeze_windows_destroy",
        parameters=[WINDOW_ID],
        responses={204: None, 403: NOT_EDITOR, 404: NOT_FOUND},
    )
    def delete(self, request, pk):
        _editor_only(request)
        window = self._window(pk)
        services.freeze_window_delete(window_id=window.pk, user=request.user)
        return Response(status=204)


freeze_api_urlpatterns: list = [
    path("freeze-windows", FreezeWindowListApi.as_view(), name="freeze-window-list"),
    path("freeze-windows/<int:pk>", FreezeWindowDetailApi.as_view(), name="freeze-window-detail"),
]
