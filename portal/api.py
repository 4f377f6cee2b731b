from csp.decorators import csp_update
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.decorators import method_decorator
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from core.access import ANY_ROLE, HasPortalAccess
from core.request_context import get_request_id
from core.roles import user_roles

from .serializers import MeSerializer


def exception_handler(exc, context):
    """DRF's handler, plus Django's ValidationError as 400, and the code and the request id
    in every error (the body Django's own error handlers answer too: portal.errors)."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        )
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict):
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        if isinstance(codes, str):
            response.data.setdefault("code", codes)
        response.data.setdefault("request_id", get_request_id())
    return response


class MeApi(APIView):
    """Who the caller is and which roles they hold."""

    portal_access = ANY_ROLE

    @extend_schema(responses=MeSerializer, operation_id="me_retrieve")
    def get(self, request):
        user = request.user
        data = {
            "username": user.get_username(),
            "full_name": user.get_full_name(),
            "email": user.email,
            "roles": sorted(user_roles(user)),
        }
        return Response(MeSerializer(data).data)


class SchemaApi(SpectacularAPIView):
    portal_access = ANY_ROLE
    permission_classes = [HasPortalAccess]


@method_decorator(csp_update({"style-src": ["'unsafe-inline'"]}), name="dispatch")
class SchemaDocsView(SpectacularSwaggerSplitView):
    """Swagger UI, the one page whose inline styles the policy allows (it sets them)."""

    portal_access = ANY_ROLE
    permission_classes = [HasPortalAccess]
    url_name = "api-schema"
