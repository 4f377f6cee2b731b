"""DRF API views under /api/v1/approvals/; each sets portal_access.

Reads go through approvals.selectors with the inbox page's filters; a decision goes through
``services.approval_decide``, the very function the page calls, so the API enforces exactly
what the page enforces. A refusal answers ``{"detail", "code"}`` with the service's status:
400 bad input, 403 a rule says no, 409 already decided or expired, 401 sign in again (PROD);
the refusals are ``core.errors.PortalError``s, answered by ``core.api_support`` in one place.
"""

from __future__ import annotations

from django.http import Http404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import roles
from core.api_support import PortalPagination, error_response, validated_filters
from core.machine_access import machine_credential
from core.roles import Role, user_has_role
from core.sessions import session_authenticated_at
from pipelines.models import Environment

from . import check_api, selectors, services
from .freeze_api import freeze_api_urlpatterns
from .models import ApprovalRequest, AuditAction, AuditEvent, OutboxMessage
from .serializers import (
    DECIDED_STATUSES,
    ApprovalDetailSerializer,
    ApprovalFilterSerializer,
    ApprovalListSerializer,
    ApprovalsErrorSerializer,
    AuditEventSerializer,
    AuditFilterSerializer,
    BulkDecisionInputSerializer,
    BulkDecisionResultSerializer,
    DecisionInputSerializer,
    DecisionSerializer,
    OutboxMessageSerializer,
    evidence_data,
)

# The same roles as the pages (approvals.views): approvers, managers, admins and data
# scientists (who follow their versions' approvals) read approvals; the audit trail is for
# approvers, managers and admins; only approvers decide; only admins retry a delivery.
READERS = roles(Role.APPROVER, Role.MANAGER, Role.ADMIN, Role.DATA_SCIENTIST)
AUDIT_READERS = roles(Role.APPROVER, Role.MANAGER, Role.ADMIN)
DECIDERS = roles(Role.APPROVER)
OPERATORS = roles(Role.ADMIN)


ERROR = ApprovalsErrorSerializer
ERRORS = {
    400: OpenApiResponse(ERROR, description="Bad input (the message says what)."),
    401: OpenApiResponse(
        ERROR, description="A PROD decision needs a recent sign-in: go to reauthenticate_url."
    ),
    403: OpenApiResponse(
        ERROR,
        description="Not signed in, no CSRF token, or a rule refuses you (the message says "
        "which: not an approver, not assigned, separation of duties, QA first...); a token "
        "(either kind) is always refused here: human_decision_required.",
    ),
    404: OpenApiResponse(ERROR, description="No such approval."),
    409: OpenApiResponse(ERROR, description="Already decided, or expired."),
}
# drf-spectacular names a "pk" path parameter "id"; these describe it.
APPROVAL_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The approval's id in the portal."
)
OUTBOX_ID = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The outbox message's id."
)
APPROVAL_FILTERS = [
    OpenApiParameter(
        "tab",
        OpenApiTypes.STR,
        enum=list(selectors.TABS),
        description="pending (open, oldest first; the default) or decided (newest first).",
    ),
    OpenApiParameter("environment", OpenApiTypes.STR, enum=list(Environment.values)),
    OpenApiParameter("model", OpenApiTypes.STR, description="Catalog model name (exact)."),
    OpenApiParameter("team", OpenApiTypes.STR, description="The model's owning team."),
    OpenApiParameter("overdue", OpenApiTypes.BOOL, description="Only open ones waiting too long."),
    OpenApiParameter(
        "older_than",
        OpenApiTypes.STR,
        enum=list(selectors.AGE_CHOICES),
        description="Opened longer ago than this.",
    ),
    OpenApiParameter(
        "status",
        OpenApiTypes.STR,
        enum=["", *(value for value, _ in DECIDED_STATUSES)],
        description="decided tab: how it was decided.",
    ),
    OpenApiParameter(
        "q", OpenApiTypes.STR, description="Search model, pipeline, run and requester."
    ),
    OpenApiParameter(
        "sort",
        OpenApiTypes.STR,
        enum=list(selectors.SORTS),
        description="Default: waiting (pending tab), decided (decided tab).",
    ),
]
AUDIT_FILTERS = [
    OpenApiParameter("action", OpenApiTypes.STR, enum=list(AuditAction.values)),
    OpenApiParameter("actor", OpenApiTypes.STR, description="Part of who acted."),
    OpenApiParameter("environment", OpenApiTypes.STR, enum=list(Environment.values)),
    OpenApiParameter("model", OpenApiTypes.STR, description="Model name (exact)."),
    OpenApiParameter(
        "approval", {"type": "integer", "minimum": 1}, description="One approval's trail."
    ),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="At or after (ISO 8601)."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Before (ISO 8601)."),
]


class ApprovalListApi(generics.ListAPIView):
    """Approval requests, pending first (or the decided history), with the inbox's filters."""

    portal_access = READERS
    serializer_class = ApprovalListSerializer
    pagination_class = PortalPagination
    queryset = ApprovalRequest.objects.none()  # for the schema; get_queryset builds the real one

    def get_queryset(self):
        filters = validated_filters(ApprovalFilterSerializer, self.request.query_params).filters()
        return selectors.approval_list(filters=filters)

    @extend_schema(
        operation_id="approvals_list",
        parameters=APPROVAL_FILTERS,
        responses={200: ApprovalListSerializer(many=True), 400: ERRORS[400]},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ApprovalDetailApi(APIView):
    """One approval: the evidence (metrics against the champion, QA outcome for PROD), the
    run's stages, ADO's steps, the portal's decisions with their delivery state, the rules
    that apply to the caller, and the audit trail."""

    portal_access = READERS

    @extend_schema(
        operation_id="approvals_retrieve",
        parameters=[APPROVAL_ID],
        responses={200: ApprovalDetailSerializer, 404: ERRORS[404]},
    )
    def get(self, request, pk):
        try:
            approval = selectors.approval_get(pk=pk)
        except ApprovalRequest.DoesNotExist:
            raise Http404 from None
        evidence = selectors.approval_evidence(approval)
        qa_ok = approval.is_prod and services.qa_succeeded(approval)
        context = {
            "evidence": evidence_data(approval, evidence, qa_ok),
            "stages": selectors.approval_stages(approval),
            "decisions": selectors.approval_decisions(approval),
            "rules": _rules_for_caller(request, approval),
            "audit": selectors.approval_audit(approval),
        }
        return Response(ApprovalDetailSerializer(approval, context=context).data)


def _rules_for_caller(request, approval) -> list:
    """The decision rules for whoever asks; a token (either kind) is told first that it can
    never decide, so ``can_decide`` is false for it whatever its roles."""
    rules = services.decision_rules(
        approval=approval, user=request.user, authenticated_at=session_authenticated_at(request)
    )
    if machine_credential(request) is not None:
        rules = [
            services.Rule("human_decision_required", False, services.HUMAN_DECISION_REQUIRED),
            *rules,
        ]
    return rules


class ApprovalDecisionApi(APIView):
    """Approve, or reject with a comment. The same rules as the page, by the same service:
    the decision, its outbox message and its audit row are written together, then delivered
    to ADO by a worker; the answer shows its delivery state."""

    portal_access = DECIDERS

    def check_permissions(self, request):
        """A token of either kind is refused before anything else (audited): decisions stay
        human, whatever roles the token carries."""
        services.decision_token_check(
            approval_id=self.kwargs.get("pk"),
            user=request.user,
            credential=machine_credential(request),
        )
        super().check_permissions(request)

    def permission_denied(self, request, message=None, code=None):
        """A signed-in non-approver is told why, in the service's words, and audited."""
        user = request.user
        if user.is_authenticated and not user_has_role(user, Role.APPROVER):
            # Raises DecisionRefused (a PortalError: core.api_support answers it with its 403).
            services.decision_role_check(approval_id=self.kwargs.get("pk"), user=user, via="api")
        super().permission_denied(request, message=message, code=code)

    @extend_schema(
        operation_id="approvals_decision_create",
        parameters=[APPROVAL_ID],
        request=DecisionInputSerializer,
        responses={
            201: DecisionSerializer,
            400: ERRORS[400],
            401: ERRORS[401],
            403: ERRORS[403],
            404: ERRORS[404],
            409: ERRORS[409],
        },
    )
    def post(self, request, pk):
        try:
            data = request.data
        except exceptions.ParseError as exc:
            return error_response(400, f"The body could not be read: {exc.detail}", "bad_request")
        if not hasattr(data, "get"):
            return error_response(
                400,
                'Send a JSON object: {"status": "approved" or "rejected", "comment": "..."}.',
                "bad_request",
            )
        status, comment = data.get("status", ""), data.get("comment", "")
        if comment is None:
            comment = ""
        if not isinstance(status, str) or not isinstance(comment, str):
            return error_response(400, "status and comment must be strings.", "bad_request")
        if not ApprovalRequest.objects.filter(pk=pk).exists():
            raise Http404
        try:
            decision = services.approval_decide(
                approval_id=pk,
                user=request.user,
                status=status,
                comment=comment,
                authenticated_at=session_authenticated_at(request),
                via="api",
            )
        except ApprovalRequest.DoesNotExist:
            raise Http404 from None
        # A refusal (DecisionRefused, ReauthenticationRequired with its reauthenticate_url) is
        # a PortalError: core.api_support.exception_handler answers it with its status.
        return Response(DecisionSerializer(decision).data, status=201)


class BulkDecisionApi(APIView):
    """Approve, or reject with a comment, several requests of one environment at once. Each
    is re-checked and decided on its own by ``services.approvals_decide_bulk`` (through the
    very function a single decision goes through: its own decision, outbox message and audit
    row), so a rule that refuses one request refuses it here too; the answer (200, like a
    207) says per request what happened. The batch as a whole is refused (nothing decided)
    for bad input (400), more than APPROVALS_BULK_MAX requests (400), mixed environments
    (400), a token of either kind or not an approver (403), and for PROD a sign-in that is
    not recent (401)."""

    portal_access = DECIDERS

    def check_permissions(self, request):
        """A token of either kind is refused before anything else (audited), as for a
        single decision: decisions stay human."""
        services.decision_token_check(
            approval_id=None, user=request.user, credential=machine_credential(request)
        )
        super().check_permissions(request)

    def permission_denied(self, request, message=None, code=None):
        user = request.user
        if user.is_authenticated and not user_has_role(user, Role.APPROVER):
            services.decision_role_check(approval_id=None, user=user, via="api")
        super().permission_denied(request, message=message, code=code)

    @extend_schema(
        operation_id="approvals_bulk_decisions_create",
        request=BulkDecisionInputSerializer,
        responses={
            200: BulkDecisionResultSerializer,
            400: OpenApiResponse(
                ERROR,
                description="Bad input: no ids, an id that is not one, more than "
                "APPROVALS_BULK_MAX, a rejection without a comment, or requests of more than "
                "one environment (code bulk_mixed_environments, with environments per id).",
            ),
            401: ERRORS[401],
            403: ERRORS[403],
        },
    )
    def post(self, request):
        try:
            data = request.data
        except exceptions.ParseError as exc:
            return error_response(400, f"The body could not be read: {exc.detail}", "bad_request")
        example = '{"ids": [1, 2], "status": "approved" or "rejected", "comment": "..."}'
        if not hasattr(data, "get") or not isinstance(data.get("ids"), list):
            return error_response(400, f"Send a JSON object: {example}.", "bad_request")
        status, comment = data.get("status", ""), data.get("comment", "")
        if comment is None:
            comment = ""
        if not isinstance(status, str) or not isinstance(comment, str):
            return error_response(400, "status and comment must be strings.", "bad_request")
        # A refused batch is a PortalError: core.api_support answers it with its status.
        outcomes = services.approvals_decide_bulk(
            approval_ids=data["ids"],
            user=request.user,
            status=status,
            comment=comment,
            authenticated_at=session_authenticated_at(request),
            via="api",
        )
        decided = sum(1 for o in outcomes if o.decided)
        body = {
            "status": status,
            "decided": decided,
            "refused": len(outcomes) - decided,
            "results": outcomes,
        }
        return Response(BulkDecisionResultSerializer(body).data)


class AuditEventListApi(generics.ListAPIView):
    """The approvals audit trail, newest first (read-only: it is append-only)."""

    portal_access = AUDIT_READERS
    serializer_class = AuditEventSerializer
    pagination_class = PortalPagination
    queryset = AuditEvent.objects.none()  # for the schema; get_queryset builds the real one

    def get_queryset(self):
        filters = validated_filters(AuditFilterSerializer, self.request.query_params).filters()
        return selectors.audit_list(filters=filters)

    @extend_schema(
        operation_id="approvals_audit_list",
        parameters=AUDIT_FILTERS,
        responses={200: AuditEventSerializer(many=True), 400: ERRORS[400]},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class OutboxRetryApi(APIView):
    """An operator sends a failed delivery back to the queue (audited)."""

    portal_access = OPERATORS

    @extend_schema(
        operation_id="approvals_outbox_retry",
        parameters=[OUTBOX_ID],
        request=None,
        responses={
            200: OutboxMessageSerializer,
            404: OpenApiResponse(ERROR, description="No such outbox message."),
            409: OpenApiResponse(ERROR, description="Only a failed delivery can be retried."),
        },
    )
    def post(self, request, pk):
        try:
            message = services.outbox_retry(message_id=pk, user=request.user)
        except OutboxMessage.DoesNotExist:
            raise Http404 from None
        return Response(OutboxMessageSerializer(message).data)


api_urlpatterns: list = [
    path("", ApprovalListApi.as_view(), name="approval-list"),
    path("<int:pk>/", ApprovalDetailApi.as_view(), name="approval-detail"),
    path("<int:pk>/decision", ApprovalDecisionApi.as_view(), name="approval-decision"),
    path("bulk-decisions", BulkDecisionApi.as_view(), name="bulk-decisions"),
    path("audit/", AuditEventListApi.as_view(), name="audit-list"),
    path("outbox/<int:pk>/retry", OutboxRetryApi.as_view(), name="outbox-retry"),
    path("checks/ado", check_api.ado_check, name="check-ado"),
    *freeze_api_urlpatterns,
]
