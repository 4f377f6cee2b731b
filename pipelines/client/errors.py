"""What can go wrong talking to ADO, typed by what the caller does about it.

Every error carries ADO's HTTP status and its error body (``message``, ``typeKey``), so a
caller decides on the type (``AdoNotFound``: gone; ``AdoThrottled``: later...) and an operator
reads the rest. They are ``PortalError``s: one that reached a response would answer 502 (503
for the temporary ones) with its message, not a 500 page; today every caller catches them.
"""

from __future__ import annotations

import re

import requests

from core.errors import PortalError


class AdoError(PortalError):
    """Anything that went wrong talking to ADO.

    ``status``: the HTTP status (``None`` when no response came); ``message`` and ``type_key``:
    ADO's error body (``typeKey`` is ``""`` when ADO sent none); ``retry_after``: seconds ADO
    asked to wait, if it did; ``request``: ``"METHOD url"`` of the failed call. ``http_status``
    and ``code`` are what the portal would answer (``PortalError``), not what ADO answered.
    """

    code = "ado_error"
    http_status = 502  # ADO, upstream of the portal, failed

    def __init__(
        self,
        message: str,
        status: int | None = None,
        type_key: str = "",
        retry_after: float | None = None,
        request: str = "",
    ):
        super().__init__(message)
        self.status = status
        self.type_key = type_key or ""
        self.retry_after = retry_after
        self.request = request

    def __str__(self) -> str:
        details = [f"HTTP {self.status}" if self.status is not None else "no response"]
        if self.type_key:
            details.append(self.type_key)
        if self.request:
            details.append(self.request)
        return f"{self.message} ({', '.join(details)})"


class AdoAuthError(AdoError):
    """401 / 403 (and ADO's 203 sign-in page): the PAT or token was refused or lacks rights."""

    code = "ado_auth"


class AdoNotFound(AdoError):
    """404: no such project, pipeline, run, build, approval..."""

    code = "ado_not_found"


class AdoBadRequest(AdoError):
    """Any other 4xx except 429: a bad parameter, an approval already completed..."""

    code = "ado_bad_request"


class AdoThrottled(AdoError):
    """429, still after the retries (ADO's TF400733 "request was blocked")."""

    code = "ado_throttled"
    http_status = 503


class AdoUnavailable(AdoError):
    """5xx, connection errors or timeouts, still after the retries (or not retried)."""

    code = "ado_unavailable"
    http_status = 503


_TAGS = re.compile(r"<[^>]+>")


def error_from_response(
    response: requests.Response, retry_after: float | None, described: str
) -> AdoError:
    """The typed error for a final non-2xx answer (or a 203 / 3xx sign-in page)."""
    status = response.status_code
    message, type_key = _error_body(response)
    if not message:
        message = _message_without_body(response)
    return _error_class(status)(message, status, type_key, retry_after, described)


def _error_body(response: requests.Response) -> tuple[str, str]:
    """ADO's ``message`` and ``typeKey``, ``("", "")`` when the body has none."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("message") or ""), str(body.get("typeKey") or "")


def _message_without_body(response: requests.Response) -> str:
    status = response.status_code
    if status == 203:
        return "ADO answered with a sign-in page: the credentials were not accepted"
    if 300 <= status < 400:
        return (
            f"ADO redirected to {response.headers.get('Location', '?')} (a sign-in page?): "
            "the credentials were not accepted"
        )
    text = " ".join(_TAGS.sub(" ", response.text or "").split())
    message = f"{status} {response.reason or ''}".strip()
    return f"{message}: {text[:300]}" if text else message


def _error_class(status: int) -> type[AdoError]:
    if status in (401, 403, 203) or 300 <= status < 400:
        return AdoAuthError
    if status == 404:
        return AdoNotFound
    if status == 429:
        return AdoThrottled
    if status >= 500:
        return AdoUnavailable
    if 400 <= status < 500:
        return AdoBadRequest
    return AdoError


def describe(response: requests.Response) -> str:
    """``"METHOD url"`` of the request a response answers ("" when requests kept none)."""
    request = response.request
    return f"{request.method} {request.url}" if request is not None else ""
