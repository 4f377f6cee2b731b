"""The ADO service-hook endpoint: authenticate, de-duplicate, queue a re-read. Nothing else.

ADO signs nothing: the subscription sends basic auth (any user name, ADO_HOOK_SECRET as the
password). The payload is only a trigger; the truth is re-read over REST.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.access import PUBLIC, access

from .models import AdoProject
from .services import hook_delivery_accept

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024  # ADO's own payload limit


def _detail(http_status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": message, **extra}, status=http_status)


def basic_auth_password(header: str) -> str | None:
    if not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


@csrf_exempt
@access(PUBLIC)  # authenticated below by basic auth, since ADO cannot sign in
@require_POST
def ado_hook(request, project: str):
    secret = settings.ADO_HOOK_SECRET
    if not secret:
        return _detail(503, "ADO service hooks are not configured (ADO_HOOK_SECRET is unset).")
    password = basic_auth_password(request.headers.get("Authorization", ""))
    if password is None or not hmac.compare_digest(password.encode(), secret.encode()):
        logger.warning("ADO hook for %s refused: bad or missing basic auth", project)
        response = _detail(401, "Basic authentication with the hook secret is required.")
        response["WWW-Authenticate"] = 'Basic realm="ado-hooks"'
        return response
    ado_project = AdoProject.objects.filter(name=project, enabled=True).first()
    if ado_project is None:
        return _detail(404, f"No enabled ADO project named '{project}'.")
    if len(request.body) > MAX_BODY_BYTES:
        return _detail(413, "Payload larger than 2 MB.")
    try:
        envelope = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return _detail(400, "The body is not JSON.")
    if not isinstance(envelope, dict) or not envelope.get("id") or not envelope.get("eventType"):
        return _detail(400, "Not a service-hook envelope: 'id' and 'eventType' are required.")
    if not isinstance(envelope.get("resource") or {}, dict):
        return _detail(400, "'resource' must be an object.")

    outcome = hook_delivery_accept(project=ado_project, envelope=envelope)
    logger.info(
        "ADO hook %s (%s) for %s: %s",
        envelope.get("eventType"),
        envelope.get("id"),
        project,
        outcome.status,
    )
    if outcome.status == "duplicate":
        return _detail(200, "Already received; nothing to do.", status="duplicate")
    return JsonResponse({"status": outcome.status, "build_id": outcome.build_id}, status=202)
