"""DRF API of approval policies and post-deployment sign-offs, under /api/v1/approvals/.

Everyone with a role reads policies (and a model's effective policy); managers and admins
create and change them (``services.policy_save``, audited with before and after). Sign-offs:
everyone reads; approvers close one (``services.signoff_close``), never the deployer.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import roles
from core.api_support import BadRequest, PortalPagination, error_response
from core.machine_access import machine_credential
from core.roles import Role
from pipelines.models import Environment
from registry.models import CatalogModel

from . import selectors, services
from .models import ApprovalPolicy, SignOff, SignOffStatus
from .serializers import ApprovalsErrorSerializer
from .serializers.policies import (
    ApprovalPolicyInputSerializer,
    ApprovalPolicySerializer,
    EffectivePolicySerializer,
    SignOffCloseInputSerializer,
    SignOffSerializer,
)

READERS = roles(Role.APPROVER, Role.MANAGER, Role.ADMIN, Role.DATA_SCIENTIST)
ERROR = ApprovalsErrorSerializer
POLICY_ERRORS = {
    400: OpenApiResponse(ERROR, description="Bad input (the message says which field)."),
    403: OpenApiResponse(ERROR, description="Only managers and admins change policies."),
}
POLICY_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The policy's id."
)


def _validation_error_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(
            f"{name}: {' '.join(m for e in errors for m in e.messages)}"
            if name != "__all__"
            else " ".join(m for e in errors for m in e.messages)
            for name, errors in exc.error_dict.items()
        )
    return " ".join(exc.messages)


class PolicyWriteMixin:
    """Reads for every role; writes only for managers and admins (403, with the reason)."""

    portal_access = READERS

    def check_permissions(self, request):
        super().check_permissions(request)
        if request.method not in SAFE_METHODS:
            services.policy_edit_check(user=request.user)

    def _save(self, request, *, partial: bool, policy_id: int | None = None):
        if not isinstance(request.data, dict):
            return error_response(400, "Send a JSON object of policy fields.", "bad_request")
        body = ApprovalPolicyInputSerializer(data=request.data, partial=partial)
        unknown = sorted(set(request.data) - set(body.fields))
        if unknown:
            return error_response(400, f"Unknown fields: {', '.join(unknown)}.", "bad_request")
        if not body.is_valid():
            errors = {k: [str(e) for e in v] for k, v in body.errors.items()}
            text = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
            return error_response(400, f"Invalid policy: {text}", "invalid_policy", errors=errors)
        data = {
            k: ("" if v is None and k in ("execution_order", "soak_mode") else v)
            for k, v in body.validated_data.items()
        }
        try:
            policy = services.policy_save(user=request.user, data=data, policy_id=policy_id)
        except ValidationError as exc:
            return error_response(
                400, f"Invalid policy: {_validation_error_text(exc)}", "invalid_policy"
            )
        return Response(ApprovalPolicySerializer(policy).data, status=200 if policy_id else 201)


class PolicyListApi(PolicyWriteMixin, ListAPIView):
    """Approval policies (every scope), optionally of one environment; POST creates one."""

    serializer_class = ApprovalPolicySerializer
    pagination_class = PortalPagination
    queryset = ApprovalPolicy.objects.none()

    def get_queryset(self):
        rows = ApprovalPolicy.objects.select_related("catalog_model", "updated_by")
        environment = self.request.query_params.get("environment")
        if environment:
            if environment not in Environment.values:
                raise BadRequest({"detail": "environment: QA or PROD.", "code": "bad_request"})
            rows = rows.filter(environment=environment)
        return rows

    @extend_schema(
        operation_id="approvals_policies_list",
        parameters=[OpenApiParameter("environment", OpenApiTypes.STR, enum=Environment.values)],
        responses={200: ApprovalPolicySerializer(many=True), 400: POLICY_ERRORS[400]},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="approvals_policies_create",
        request=ApprovalPolicyInputSerializer,
        responses={201: ApprovalPolicySerializer, **POLICY_ERRORS},
    )
    def post(self, request):
        return self._save(request, partial=False)


class PolicyDetailApi(PolicyWriteMixin, APIView):
    """One policy; PATCH changes the fields sent (null or "" to inherit again)."""

    def _policy(self, pk) -> ApprovalPolicy:
        policy = ApprovalPolicy.objects.select_related("catalog_model").filter(pk=pk).first()
        if policy is None:
            raise Http404
        return policy

    @extend_schema(
        operation_id="approvals_policies_retrieve",
        parameters=[POLICY_ID],
        responses={200: ApprovalPolicySerializer, 404: OpenApiResponse(ERROR)},
    )
    def get(self, request, pk):
        return Response(ApprovalPolicySerializer(self._policy(pk)).data)

    @extend_schema(
        operation_id="approvals_policies_partial_update",
        parameters=[POLICY_ID],
        request=ApprovalPolicyInputSerializer,
        responses={200: ApprovalPolicySerializer, 404: OpenApiResponse(ERROR), **POLICY_ERRORS},
    )
    def patch(self, request, pk):
        return self._save(request, partial=True, policy_id=self._policy(pk).pk)


class EffectivePolicyApi(APIView):
    """A model's effective policy in an environment, each value with where it comes from."""

    portal_access = READERS

    @extend_schema(
        operation_id="approvals_policies_effective",
        parameters=[
            OpenApiParameter(
                "environment", OpenApiTypes.STR, enum=Environment.values, required=True
            ),
            OpenApiParameter(
                "model",
                OpenApiTypes.STR,
                description="Catalog model name; none: the global policy.",
            ),
        ],
        responses={
            200: EffectivePolicySerializer,
            400: POLICY_ERRORS[400],
            404: OpenApiResponse(ERROR),
        },
    )
    def get(self, request):
        environment = request.query_params.get("environment", "")
        if environment not in Environment.values:
            return error_response(400, "environment: QA or PROD.", "bad_request")
        name = request.query_params.get("model") or ""
        if "\x00" in name:
            raise Http404
        model = None
        if name:
            model = CatalogModel.objects.filter(name=name).first()
            if model is None:
                raise Http404
        policy = services.approval_policy_for(catalog_model=model, environment=environment)
        data = {
            "environment": environment,
            "model": name or None,
            "sequence_approvers": list(policy.sequence_approvers),
            "values": policy.rows(),
        }
        return Response(EffectivePolicySerializer(data).data)


class SignOffListApi(ListAPIView):
    """Post-deployment sign-offs: open ones oldest first (``status=open``), or all, newest
    first."""

    portal_access = READERS
    serializer_class = SignOffSerializer
    pagination_class = PortalPagination
    queryset = SignOff.objects.none()

    def get_queryset(self):
        status = self.request.query_params.get("status", "")
        if status and status not in SignOffStatus.values:
            choices = ", ".join(SignOffStatus.values)
            raise BadRequest({"detail": f"status: one of {choices}.", "code": "bad_request"})
        return selectors.signoff_list(status=status)

    @extend_schema(
        operation_id="approvals_signoffs_list",
        parameters=[OpenApiParameter("status", OpenApiTypes.STR, enum=SignOffStatus.values)],
        responses={200: SignOffSerializer(many=True), 400: POLICY_ERRORS[400]},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class SignOffCloseApi(APIView):
    """Close a sign-off: ``signed_off``, or ``flagged`` with a comment. Approvers only, never
    the one who deployed the run, never with a token (a person signs off)."""

    portal_access = READERS

    @extend_schema(
        operation_id="approvals_signoffs_close",
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Sign-off.")
        ],
        request=SignOffCloseInputSerializer,
        responses={
            200: SignOffSerializer,
            400: POLICY_ERRORS[400],
            403: OpenApiResponse(ERROR, description="Not an approver, or you deployed it."),
            404: OpenApiResponse(ERROR),
            409: OpenApiResponse(ERROR, description="Already closed."),
        },
    )
    def post(self, request, pk):
        if machine_credential(request) is not None:
            return error_response(
                403, "A person signs off, signed in: no token can.", "human_decision_required"
            )
        if not isinstance(request.data, dict):
            return error_response(400, 'Send {"status": ..., "comment": ...}.', "bad_request")
        if not SignOff.objects.filter(pk=pk).exists():
            raise Http404
        status, comment = request.data.get("status", ""), request.data.get("comment") or ""
        if not isinstance(status, str) or not isinstance(comment, str):
            return error_response(400, "status and comment must be strings.", "bad_request")
        if "\x00" in status or "\x00" in comment:
            return error_response(400, "No NUL characters, please.", "bad_request")
        try:  # the service checks the status itself, so a wrong one is audited as refused
            signoff = services.signoff_close(
                signoff_id=pk,
                user=request.user,
                status=status,
                comment=comment,
                via="api",
            )
        except SignOff.DoesNotExist:
            raise Http404 from None
        return Response(SignOffSerializer(signoff).data)


policy_api_urlpatterns: list = [
    path("signoffs/", SignOffListApi.as_view(), name="signoff-list"),
    path("signoffs/<int:pk>/close", SignOffCloseApi.as_view(), name="signoff-close"),
    path("policies/", PolicyListApi.as_view(), name="policy-list"),
    path("policies/effective", EffectivePolicyApi.as_view(), name="policy-effective"),
    path("policies/<int:pk>", PolicyDetailApi.as_view(), name="policy-detail"),
]
