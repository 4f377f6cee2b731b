"""The signal endpoints: ``POST /api/v1/operations/signals/<source>/`` for azure-monitor,
event-grid (Event Grid schema and CloudEvents 1.0), databricks, evidently and generic
(docs/operations.md, "Signals in"). Each reads the raw body itself (so an HMAC covers the
bytes sent), authenticates the sender (intake_auth), and hands the rest to
``operations.services.intake.signals_receive``.

Not throttled: one sender must get 100 requests a second through (a burst of alerts), and
a refused request costs one small row. CSRF applies to browser sessions only (DRF's
SessionAuthentication); keys, signatures and tokens need none.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.access import roles
from core.client_address import client_ip
from core.errors import PortalError
from core.request_context import get_request_id
from core.roles import Role

from .intake_auth import sender_authenticate
from .payloads.generic import GenericSignalSerializer
from .services import intake


class RawBodyParser(BaseParser):
    """Declares the media types the endpoints take; the view reads ``request.body`` itself,
    so ``request.data`` stays an empty QueryDict (what a CSRF check of a form post reads)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return QueryDict("")


class JsonBody(RawBodyParser):
    media_type = "application/json"


class CloudEventBody(RawBodyParser):
    media_type = "application/cloudevents+json"


class CloudEventBatchBody(RawBodyParser):
    media_type = "application/cloudevents-batch+json"


class IntakeSignalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    model = serializers.CharField(allow_null=True, help_text="The catalog model, if matched.")
    disposition = serializers.CharField(
        help_text="What the trigger policy made of it (started, proposed, joined, unmatched...)."
    )


class IntakeAnswerSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="New signals.")
    duplicates = serializers.IntegerField(help_text="Signals the portal had already.")
    signals = IntakeSignalSerializer(many=True)
    raw_id = serializers.IntegerField(help_text="The kept raw payload.")
    ignored = serializers.CharField(required=False, help_text="What was not acted on, and why.")
    detail = serializers.CharField(required=False)


class IntakeErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    raw_id = serializers.IntegerField(required=False)
    request_id = serializers.CharField(allow_null=True)


ERROR = IntakeErrorSerializer
RESPONSES = {
    202: OpenApiResponse(IntakeAnswerSerializer, description="Accepted: new signal(s)."),
    200: OpenApiResponse(
        IntakeAnswerSerializer,
        description="Nothing new: all duplicates, or nothing to act on (ignored says why); "
        "or a handshake's answer.",
    ),
    400: OpenApiResponse(ERROR, description="Not a payload this endpoint reads (kept)."),
    401: OpenApiResponse(ERROR, description="No credential, or a wrong one."),
    403: OpenApiResponse(ERROR, description="Not an admin or data scientist, or a read token."),
    413: OpenApiResponse(ERROR, description="The body is over OPERATIONS_SIGNAL_MAX_BYTES."),
}
SENDERS = roles(Role.ADMIN, Role.DATA_SCIENTIST)  # or the source's shared secret (the view)


class SignalIntakeApi(APIView):
    portal_access = SENDERS
    permission_classes: list = []  # sender_authenticate decides (a secret needs no user)
    throttle_classes: list = []
    parser_classes = [JsonBody, CloudEventBody, CloudEventBatchBody, RawBodyParser]
    slug = ""

    def perform_authentication(self, request):
        """Deferred to ``post``: the raw body is read before anything else touches it."""

    def post(self, request, *args, **kwargs):
        django_request = request._request
        context = {
            "content_type": request.META.get("CONTENT_TYPE", ""),
            "headers": dict(request.headers),
            "remote_addr": client_ip(django_request),
            "request_id": get_request_id() or "",
        }
        declared = _content_length(request)
        if declared > intake.max_body_bytes():
            result = intake.body_too_large(fmt=self.slug, size=declared, **context)
            return self._answer(result)
        body = django_request.body
        try:
            sender = sender_authenticate(request, self.slug, body)
        except (PortalError, exceptions.APIException, PermissionDenied) as exc:
            intake.signals_refused(
                fmt=self.slug, reason=_reason(exc), query=request.GET.dict(), **context
            )
            raise
        result = intake.signals_receive(
            fmt=self.slug,
            body=body,
            sender=sender.name,
            query=request.GET.dict(),
            **context,
        )
        return self._answer(result)

    def options(self, request, *args, **kwargs):
        """The CloudEvents webhook abuse-protection handshake (Event Grid sends it before a
        CloudEvents subscription delivers): allow the origin that asks, at any rate."""
        origin = request.headers.get("WebHook-Request-Origin")
        if not origin:
            return super().options(request, *args, **kwargs)
        response = Response(status=200)
        response["WebHook-Allowed-Origin"] = origin
        response["WebHook-Allowed-Rate"] = "*"
        response["Allow"] = "POST, OPTIONS"
        return response

    @staticmethod
    def _answer(result) -> Response:
        body = dict(result.body_json)
        if result.status_code >= 400:
            body.setdefault("request_id", get_request_id())
        return Response(body, status=result.status_code)


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _reason(exc) -> str:
    if isinstance(exc, PortalError):
        return exc.message
    detail = getattr(exc, "detail", None)
    return str(detail if detail is not None else exc) or exc.__class__.__name__


AZURE_EXAMPLE = {
    "schemaId": "azureMonitorCommonAlertSchema",
    "data": {
        "essentials": {
            "alertId": "/subscriptions/.../providers/Microsoft.AlertsManagement/alerts/b9569717",
            "alertRule": "fraud-detector-auc-drop",
            "severity": "Sev2",
            "signalType": "Metric",
            "monitorCondition": "Fired",
            "alertTargetIDs": ["/subscriptions/.../workspaces/fraud-ws"],
            "firedDateTime": "2025-03-22T13:58:24.3713213Z",
        },
        "alertContext": {},
        "customProperties": {"model": "fraud-detector", "signalKind": "performance_drop"},
    },
}


def _post_schema(summary: str, description: str, request, examples=()):
    return extend_schema(
        operation_id=f"operations_signals_{summary}",
        summary=f"Receive {summary.replace('_', ' ')} signals",
        description=description,
        request=request,
        responses=RESPONSES,
        examples=list(examples),
        tags=["operations"],
    )


class AzureMonitorSignalsApi(SignalIntakeApi):
    """Azure Monitor alerts (action group webhook, common alert schema)."""

    slug = "azure-monitor"

    @_post_schema(
        "azure_monitor",
        "An alert in the common alert schema: Fired opens a signal, Resolved closes it "
        "(dedupe on alertId + monitorCondition). customProperties signalKind/kind and model "
        "name the kind and the model.",
        OpenApiTypes.OBJECT,
        [OpenApiExample("Metric alert fired", value=AZURE_EXAMPLE, request_only=True)],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class EventGridSignalsApi(SignalIntakeApi):
    """Azure Event Grid: Event Grid schema (array) or CloudEvents 1.0 (single or batch)."""

    slug = "event-grid"

    @_post_schema(
        "event_grid",
        "Microsoft.Storage.BlobCreated (data arrival by container/path) and "
        "Microsoft.MachineLearningServices.RunStatusChanged with the model monitor's "
        "azureml_modelmonitor_threshold_breached tag (threshold breach); the "
        'SubscriptionValidationEvent is answered with {"validationResponse": code}; other '
        "types are ignored. The CloudEvents handshake is an OPTIONS request with "
        "WebHook-Request-Origin.",
        OpenApiTypes.OBJECT,
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class DatabricksSignalsApi(SignalIntakeApi):
    """Databricks job notifications (HTTP webhook destination)."""

    slug = "databricks"

    @_post_schema(
        "databricks",
        "jobs.on_success and jobs.on_failure become signals mapped by job id (match rule "
        "job_id, whose kind applies); jobs.on_start and duration warnings are ignored.",
        OpenApiTypes.OBJECT,
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class EvidentlySignalsApi(SignalIntakeApi):
    """Evidently reports (current report.dict() or legacy as_dict()/json())."""

    slug = "evidently"

    @_post_schema(
        "evidently",
        'A report, bare (model in ?model=) or wrapped as {"model": ..., "report": {...}}. '
        "Drift (dataset drift, drifted share at or over the threshold, a failed test) is a "
        "drift signal; a clean report counts as monitoring heard from.",
        OpenApiTypes.OBJECT,
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class GenericSignalsApi(SignalIntakeApi):
    """A plain JSON signal."""

    slug = "generic"

    @_post_schema(
        "generic",
        "One signal as plain JSON. The same id (and source) twice is one signal.",
        GenericSignalSerializer,
        [
            OpenApiExample(
                "Drift from a custom monitor",
                value={
                    "model": "fraud-detector",
                    "kind": "drift",
                    "severity": "warning",
                    "observed_at": "2025-03-22T13:58:24Z",
                    "id": "run-2025-03-22",
                    "source": "nightly-monitor",
                    "title": "PSI 0.31 on amount",
                    "details": {"psi": 0.31},
                    "tags": {"team": "risk"},
                },
                request_only=True,
            )
        ],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


VIEWS = {
    "azure-monitor": AzureMonitorSignalsApi,
    "event-grid": EventGridSignalsApi,
    "databricks": DatabricksSignalsApi,
    "evidently": EvidentlySignalsApi,
    "generic": GenericSignalsApi,
}

urlpatterns: list = [
    path(f"signals/{slug}/", view.as_view(), name=f"signals-{slug}") for slug, view in VIEWS.items()
]
