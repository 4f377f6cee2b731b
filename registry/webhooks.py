"""MLflow registry webhooks: the receiving view, its signature check and the delivery log.

MLflow (OSS, >= 3.3, SQL backend) POSTs ``{entity, action, timestamp, data}`` with the headers
``X-MLflow-Delivery-Id``, ``X-MLflow-Timestamp`` and ``X-MLflow-Signature``
(``v1,<base64 HMAC-SHA256(secret, "{delivery_id}.{timestamp}.{raw body}")>``, Standard Webhooks
style). Register the webhook with ``manage.py register_mlflow_webhook``.

A delivery about a model only queues the task ``registry.sync_model``: the payload is thin and
MLflow does not persist or replay deliveries, so the periodic sync remains the source of truth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.access import PUBLIC, access

from . import services
from .models import RegistrySource, WebhookDelivery

logger = logging.getLogger(__name__)  # "registry.webhooks"

DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
SIGNATURE_HEADER = "X-MLflow-Signature"
SIGNATURE_VERSION = "v1"
MAX_BODY_BYTES = 1024 * 1024

# The model-registry events (what the webhook subscribes to); each one names a registered model.
MODEL_EVENTS: tuple[str, ...] = (
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.created",
    "model_version_alias.deleted",
)

_DELIVERY_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")  # MLflow sends a uuid4
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")  # unix seconds
_MODEL_NAME_MAX = WebhookDelivery._meta.get_field("model_name").max_length
_EVENT_MAX = WebhookDelivery._meta.get_field("event").max_length


@dataclass(frozen=True)
class Envelope:
    entity: str
    action: str
    timestamp: str
    data: dict

    @property
    def event(self) -> str:
        return f"{self.entity}.{self.action}"

    @property
    def is_model_event(self) -> bool:
        return self.event in MODEL_EVENTS


def signature_compute(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends for this delivery."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_is_valid(
    secret: str, delivery_id: str, timestamp: str, body: bytes, header: str
) -> bool:
    """True when one of the space-separated signatures in ``header`` matches (constant time)."""
    expected = signature_compute(secret, delivery_id, timestamp, body).encode()
    # Standard Webhooks allows several signatures (e.g. during a secret rotation).
    candidates = [c.encode("utf-8", "replace") for c in header.split(" ") if c]
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(matches)


def timestamp_is_fresh(timestamp: str, tolerance_seconds: int, now: float | None = None) -> bool:
    """True for unix seconds no further than ``tolerance_seconds`` from now, either way."""
    if not _TIMESTAMP_RE.match(timestamp):
        return False
    now = time.time() if now is None else now
    return abs(now - int(timestamp)) <= tolerance_seconds


def envelope_parse(body: bytes) -> Envelope | None:
    """The documented envelope ``{entity, action, timestamp, data}``, or None if it is not one.

    A model event must name its model in ``data["name"]``.
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, or absurd nesting
        return None
    if not isinstance(payload, dict):
        return None
    entity, action = payload.get("entity"), payload.get("action")
    timestamp, data = payload.get("timestamp"), payload.get("data")
    if not all(isinstance(v, str) and v for v in (entity, action, timestamp)):
        return None
    if not isinstance(data, dict):
        return None
    envelope = Envelope(entity=entity, action=action, timestamp=timestamp, data=data)
    if envelope.is_model_event:
        name = data.get("name")
        if not isinstance(name, str) or not name or len(name) > _MODEL_NAME_MAX:
            return None
    return envelope


def delivery_record(*, source: RegistrySource, delivery_id: str, envelope: Envelope) -> bool:
    """Record the delivery and, for a model event, queue its sync on commit.

    False when the delivery id was seen before (the unique constraint settles races).
    """
    model_name = envelope.data["name"] if envelope.is_model_event else ""
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(
                delivery_id=delivery_id,
                source=source,
                event=envelope.event[:_EVENT_MAX],
                model_name=model_name,
            )
            if envelope.is_model_event:
                # After the commit the delivery is recorded, so MLflow cannot retry it: a
                # broker that is down is logged (core.tasks) and the periodic sync catches up,
                # instead of answering 500.
                services.registered_model_sync_queue(source=source, name=model_name)
    except IntegrityError:
        return False
    return True


def webhook_deliveries_prune(older_than_days: int = 7) -> int:
    """Delete delivery records older than ``older_than_days``; returns how many.

    Safe because deliveries older than MLFLOW_WEBHOOK_TOLERANCE_SECONDS are refused on their
    timestamp anyway. Meant for a daily Celery beat entry (not wired yet), e.g. a thin task
    calling ``webhook_deliveries_prune()``.
    """
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = WebhookDelivery.objects.filter(received_at__lt=cutoff).delete()
    return deleted


def _refuse(status: int, detail: str, *, source: str, delivery_id: str = "") -> JsonResponse:
    logger.warning(
        "webhook refused: source=%s delivery=%r status=%s detail=%s",
        source,
        delivery_id[:100],
        status,
        detail,
    )
    return JsonResponse({"detail": detail}, status=status)


def _body_read(request) -> bytes | None:
    """The raw body, or None when it is larger than MAX_BODY_BYTES."""
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            return None
    except ValueError:
        pass  # Django reads no body for a bad Content-Length
    try:
        body = request.body
    except RequestDataTooBig:  # above DATA_UPLOAD_MAX_MEMORY_SIZE
        return None
    return None if len(body) > MAX_BODY_BYTES else body


@access(PUBLIC)  # the HMAC signature is the authentication
@csrf_exempt
@require_POST
def mlflow_webhook(request, source: str):
    """Receive one MLflow registry webhook delivery for the registry source named ``source``."""
    registry_source = RegistrySource.objects.filter(name=source, enabled=True).first()
    if registry_source is None:
        return _refuse(404, "unknown or disabled registry source", source=source)
    secret = getattr(settings, "MLFLOW_WEBHOOK_SECRET", "")
    if not secret:
        return _refuse(503, "webhooks are not configured", source=source)
    body = _body_read(request)
    if body is None:
        return _refuse(413, f"body larger than {MAX_BODY_BYTES} bytes", source=source)

    delivery_id = request.headers.get(DELIVERY_ID_HEADER, "")
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    missing = [
        name
        for name, value in (
            (DELIVERY_ID_HEADER, delivery_id),
            (TIMESTAMP_HEADER, timestamp),
            (SIGNATURE_HEADER, signature),
        )
        if not value
    ]
    if missing:
        return _refuse(400, f"missing headers: {', '.join(missing)}", source=source)
    if not _DELIVERY_ID_RE.match(delivery_id):
        return _refuse(400, f"malformed {DELIVERY_ID_HEADER}", source=source)
    tolerance = settings.MLFLOW_WEBHOOK_TOLERANCE_SECONDS
    if not timestamp_is_fresh(timestamp, tolerance):
        return _refuse(400, "stale or future timestamp", source=source, delivery_id=delivery_id)
    if not signature_is_valid(secret, delivery_id, timestamp, body, signature):
        return _refuse(401, "invalid signature", source=source, delivery_id=delivery_id)

    envelope = envelope_parse(body)
    if envelope is None:
        return _refuse(
            400,
            "body is not the MLflow webhook envelope {entity, action, timestamp, data}",
            source=source,
            delivery_id=delivery_id,
        )
    if not delivery_record(source=registry_source, delivery_id=delivery_id, envelope=envelope):
        return _refuse(409, "replayed delivery", source=source, delivery_id=delivery_id)

    if envelope.is_model_event:
        name = envelope.data["name"]
        logger.info(
            "webhook accepted: source=%s delivery=%s event=%s model=%r: sync queued",
            source,
            delivery_id,
            envelope.event,
            name,
        )
        return JsonResponse({"queued": name}, status=202)
    logger.info(
        "webhook accepted: source=%s delivery=%s event=%r: ignored",
        source,
        delivery_id,
        envelope.event[:_EVENT_MAX],
    )
    return JsonResponse({"ignored": envelope.event}, status=202)
