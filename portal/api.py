from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import ANY_ROLE, HasPortalAccess
from core.roles import user_roles

from .serializers import MeSerializer


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
