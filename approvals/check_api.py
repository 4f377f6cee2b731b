"""``POST /api/v1/approvals/checks/ado``: the portal as ADO's "Invoke REST API" check, in
asynchronous (callback) mode. Authenticate, validate, keep the call, answer 200 at once; a
worker evaluates it and posts TaskCompleted back (``services.check`` / ``check_callback``).

ADO signs nothing: the check's service connection sends the shared secret
(APPROVALS_CHECK_SECRET) as a basic-auth password or a bearer token. PlanUrl must be the
organization of an enabled ADO project, since the job's token is posted back there. Bad
input is a 400 that names the header or field; a repeat of the same (plan, job, task
instance) is a 200 that evaluates nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
import re

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.access import PUBLIC, access
from pipelines.hooks import basic_auth_password
from pipelines.models import AdoProject, Environment

from . import services

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
ID_HEADERS = ("ProjectId", "HubName", "PlanId", "JobId", "TaskInstanceId")
OPTIONAL_HEADERS = ("TimelineId", "BuildId")
ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
URL_PATTERN = re.compile(r"^https?://[^\s]{1,490}$")


class BadCheckCall(ValueError):
    """A call the check cannot take: the message names the header or the field."""


def _detail(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": message, **extra}, status=status)


def _authenticated(header: str, secret: str) -> bool:
    """The secret as a basic-auth password (any user name) or as a bearer token."""
    if header.startswith("Bearer "):
        given = header.removeprefix("Bearer ").strip()
    else:
        given = basic_auth_password(header)
    return given is not None and hmac.compare_digest(given.encode(), secret.encode())


@csrf_exempt
@access(PUBLIC)  # authenticated below by the shared secret: ADO cannot sign in
@require_POST
def ado_check(request):
    secret = settings.APPROVALS_CHECK_SECRET
    if not secret:
        return _detail(
            503, "The automated check is not configured (APPROVALS_CHECK_SECRET is unset)."
        )
    if not _authenticated(request.headers.get("Authorization", ""), secret):
        logger.warning("automated check refused: bad or missing credentials")
        response = _detail(401, "Authenticate with the check's secret (basic auth or bearer).")
        response["WWW-Authenticate"] = 'Basic realm="ado-check"'
        return response
    if len(request.body) > MAX_BODY_BYTES:
        return _detail(413, "The body is larger than 64 KB.")
    try:
        call = check_call(request.headers, request.body)
    except BadCheckCall as exc:
        return _detail(400, str(exc), code="bad_request")
    check, created = services.check_receive(call=call)
    return JsonResponse(
        {"status": "accepted" if created else "duplicate", "check": check.pk}, status=200
    )


def check_call(headers, raw_body: bytes) -> services.CheckCall:
    """ADO's headers and the check's body, validated (``BadCheckCall`` names what is wrong)."""
    values = {name: (headers.get(name) or "").strip() for name in (*ID_HEADERS, "AuthToken")}
    plan_url = (headers.get("PlanUrl") or "").strip()
    if not plan_url:
        raise BadCheckCall("The header 'PlanUrl' is required (ADO sends it).")
    if not URL_PATTERN.match(plan_url):
        raise BadCheckCall("The header 'PlanUrl' must be an http(s) URL.")
    if not _known_organization(plan_url):
        raise BadCheckCall(
            f"The header 'PlanUrl' ({plan_url}) is not the organization URL of an ADO project "
            "the portal knows: the job's token is only ever sent back there."
        )
    for name in ID_HEADERS:
        if not values[name]:
            raise BadCheckCall(f"The header '{name}' is required (ADO sends it).")
        if not ID_PATTERN.match(values[name]):
            raise BadCheckCall(f"The header '{name}' is not an id (letters, digits, '-').")
    if not values["AuthToken"]:
        raise BadCheckCall("The header 'AuthToken' is required (the job's token).")
    if len(values["AuthToken"]) > 8192:
        raise BadCheckCall("The header 'AuthToken' is longer than 8192 characters.")
    optional = {name: (headers.get(name) or "").strip() for name in OPTIONAL_HEADERS}
    for name, value in optional.items():
        if value and not ID_PATTERN.match(value):
            raise BadCheckCall(f"The header '{name}' is not an id (letters, digits, '-').")
    body = _body(raw_body)
    return services.CheckCall(
        plan_url=plan_url if plan_url.endswith("/") else plan_url + "/",
        project_id=values["ProjectId"],
        hub_name=values["HubName"],
        plan_id=values["PlanId"],
        job_id=values["JobId"],
        task_instance_id=values["TaskInstanceId"],
        auth_token=values["AuthToken"],
        timeline_id=optional["TimelineId"],
        build_id=optional["BuildId"],
        model_name=body["model"],
        version=body["version"],
        environment=body["environment"],
        run_id=body["runId"],
        body=body,
    )


def _known_organization(plan_url: str) -> bool:
    """PlanUrl is where the portal posts the job's token back: only to an organization one of
    its enabled ADO projects is in (no request forgery through a crafted PlanUrl)."""
    wanted = plan_url.rstrip("/").lower()
    urls = AdoProject.objects.filter(enabled=True).values_list("organization_url", flat=True)
    return any(url.rstrip("/").lower() == wanted for url in urls)


def _body(raw: bytes) -> dict:
    """{"model", "version", "environment", "runId"}: model and environment required."""
    try:
        data = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        raise BadCheckCall(
            'The body must be JSON: {"model": ..., "version": ..., "environment": "QA" or '
            '"PROD", "runId": ...}.'
        ) from None
    if not isinstance(data, dict):
        raise BadCheckCall("The body must be a JSON object.")
    fields = {}
    for name, limit in (("model", 255), ("version", 64), ("environment", 10), ("runId", 64)):
        value = data.get(name, "")
        if value is None:
            value = ""
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise BadCheckCall(f"The field '{name}' must be a string.")
        value = str(value).strip()
        if len(value) > limit:
            raise BadCheckCall(f"The field '{name}' is longer than {limit} characters.")
        if value.startswith("$("):
            raise BadCheckCall(
                f"The field '{name}' is {value!r}: the variable was not set in the pipeline."
            )
        fields[name] = value
    if not fields["model"]:
        raise BadCheckCall("The field 'model' is required (the catalog model's name).")
    fields["environment"] = fields["environment"].upper()
    if fields["environment"] not in (Environment.QA, Environment.PROD):
        raise BadCheckCall("The field 'environment' must be 'QA' or 'PROD'.")
    if fields["version"] and not fields["version"].isdigit():
        raise BadCheckCall("The field 'version' must be a version number.")
    if fields["runId"] and not fields["runId"].isdigit():
        raise BadCheckCall("The field 'runId' must be the run's (build's) id.")
    return {**data, **fields}
