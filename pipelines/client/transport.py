"""The HTTP half of ``AdoClient``: one call to ADO sent with retries, pacing and typed errors.

``_request`` is a loop of named steps: wait for its turn (a Retry-After or a pacing pause an
earlier answer asked for), send (a failed connection is retried or raised there), classify
the answer (``retry.classify``), then return it, refresh the token once, retry it after a
backoff or a Retry-After, or raise its typed error. Rate-limit headers are read on every
answer. PATs and tokens are never logged.
"""

from __future__ import annotations

import base64
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Self
from urllib.parse import quote

import requests

from . import retry
from .credentials import AdoCredentials
from .errors import AdoAuthError, AdoError, AdoUnavailable, describe, error_from_response
from .retry import Answer

# One logger for the whole client (``pipelines.client``), whichever module logs.
logger = logging.getLogger(__package__)

#: The api-version of each resource, in one place. All but ``connectionData`` are GA at 7.1
#: (reference notes §1, §3; the SDK would send 7.1-preview.N). ``projects`` is the core
#: projects API (its id is needed to create service-hook subscriptions).
API_VERSIONS: dict[str, str] = {
    "pipelines": "7.1",  # GET _apis/pipelines, GET _apis/pipelines/{id}
    "runs": "7.1",  # GET / POST _apis/pipelines/{id}/runs[/{runId}]
    "builds": "7.1",  # GET _apis/build/builds[/{id}]
    "timeline": "7.1",  # GET _apis/build/builds/{id}/timeline
    "approvals": "7.1",  # GET / PATCH _apis/pipelines/approvals[/{approvalId}]
    "projects": "7.1",  # GET {org}/_apis/projects/{project}
    # The one exception: connectionData exists only as a preview (Location area).
    "connectionData": "7.1-preview.1",  # GET {org}/_apis/connectionData
    # An automated check's callback (plans.PlanClient): the events API as ADO's docs for the
    # Invoke REST API check give it, and the timeline record feed (GA since 4.0 in the SDKs).
    "plan_events": "2.0-preview.1",  # POST .../distributedtask/hubs/{hub}/plans/{plan}/events
    "timeline_feed": "4.1",  # POST .../plans/{plan}/timelines/{t}/records/{r}/feed
}

LOW_BUDGET_FRACTION = 0.10  # pace requests once X-RateLimit-Remaining falls below this share


@dataclass(frozen=True)
class RateLimit:
    """The ``X-RateLimit-*`` headers of the latest response that had them."""

    resource: str
    limit: float | None
    remaining: float | None
    reset: float | None  # Unix time when the usage is back to 0
    delay: float | None  # seconds ADO held this request back


class _Authorization(requests.auth.AuthBase):
    """Sets the header (passing ``auth`` also keeps requests from applying ~/.netrc)."""

    def __init__(self, value: str):
        self.value = value

    def __call__(self, request):
        request.headers["Authorization"] = self.value
        return request


@dataclass
class _Call:
    """One call of ``_request`` and what its attempts have used up."""

    method: str
    url: str
    query: dict
    body: object
    idempotent: bool
    bearer_token: str | None
    retries: int = 0
    refreshed: bool = False  # the token provider was asked for a new token after a 401

    @property
    def described(self) -> str:
        return f"{self.method} {self.url}"


class AdoTransport:
    """Session, credentials, retries and pacing of an ``AdoClient`` (see there)."""

    def __init__(
        self,
        organization_url: str,
        project: str,
        credentials: AdoCredentials,
        *,
        timeout: float | tuple[float, float] = (5, 30),
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        user_agent: str = "mlops-portal",
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.organization_url = organization_url.rstrip("/")
        self.project = project
        self.credentials = credentials
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self.request_count = 0
        self.waited_seconds = 0.0  # time spent honouring Retry-After, pacing and backing off
        self.rate_limit: RateLimit | None = None
        self._not_before = 0.0  # time.monotonic() before which no request may be sent
        self._random = random.Random()  # noqa: S311 - jitter, not cryptography
        self._basic = (
            "Basic " + base64.b64encode(f":{credentials.pat}".encode()).decode()
            if credentials.pat
            else ""
        )
        self.session = requests.Session()
        self.session.headers.update(
            {
                "User-Agent": user_agent,
                "Accept": "application/json",
                # Ask for a 401 instead of a redirect / 203 sign-in page on bad credentials.
                "X-TFS-FedAuthRedirect": "Suppress",
            }
        )
        self._project_base = f"{self.organization_url}/{quote(project, safe='')}/_apis/"
        self._org_base = f"{self.organization_url}/_apis/"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- reading answers ------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self._project_base + path

    def _get_json(self, path: str, resource: str, params: dict | None = None) -> dict:
        return self._json(self._request("GET", self._url(path), resource, params=params)) or {}

    def _pages(self, path: str, resource: str, params: dict) -> Iterator[list[dict]]:
        """The ``value`` of each page of a collection, following ``x-ms-continuationtoken``."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            query = dict(params)
            if token:
                query["continuationToken"] = token
            response = self._request("GET", self._url(path), resource, params=query)
            body = self._json(response) or {}
            yield list(body.get("value") or [])
            token = response.headers.get("x-ms-continuationtoken")
            if not token:
                return
            if token in seen:
                raise AdoError(
                    f"ADO repeated the continuation token {token!r}; stopping to avoid a loop",
                    response.status_code,
                    request=describe(response),
                )
            seen.add(token)

    def _json(self, response: requests.Response):
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            content_type = response.headers.get("Content-Type", "")
            cls = AdoAuthError if "html" in content_type else AdoError
            raise cls(
                f"ADO answered {response.status_code} with {content_type or 'a body'} that is not "
                "JSON (a sign-in page?)",
                response.status_code,
                request=describe(response),
            ) from exc

    # ---- one call -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        resource: str,
        *,
        params: dict | None = None,
        body: object = None,
        idempotent: bool = True,
        bearer_token: str | None = None,
    ) -> requests.Response:
        """Send one call with retries, pacing and typed errors; return a 2xx response."""
        query = {**(params or {}), "api-version": API_VERSIONS[resource]}
        call = _Call(method, url, query, body, idempotent, bearer_token)
        while True:
            self._wait_for_turn()
            response = self._send(call)
            if response is None:  # the connection failed; backed off, send it again
                continue
            retry_after = retry.retry_after_seconds(response)
            self._observe_rate_limit(response, paced=retry_after is not None)
            answer = retry.classify(
                response.status_code,
                retry_after=retry_after,
                idempotent=idempotent,
                can_refresh=self._can_refresh(call),
            )
            if answer is Answer.OK:
                self._honour_retry_after(call, response.status_code, retry_after)
                return response
            if answer is Answer.REAUTHENTICATE:
                self._refresh_token(call)
                continue
            if answer is Answer.RETRY and self._retry_answer(call, response, retry_after):
                continue
            if retry_after:
                self._defer(retry_after)  # whoever calls next still waits as told
            raise error_from_response(response, retry_after, call.described)

    def _send(self, call: _Call) -> requests.Response | None:
        """One attempt: the response, or None when the connection failed and a retry (after
        its backoff) is due; raises when it is not, or when retrying cannot help."""
        started = time.monotonic()
        try:
            response = self.session.request(
                call.method,
                call.url,
                params=call.query,
                json=call.body,
                auth=_Authorization(self._authorization(call.bearer_token)),
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            raise AdoUnavailable(
                f"TLS error talking to ADO: {exc}", request=call.described
            ) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            self._retry_connection_failure(call, exc)
            return None
        except requests.RequestException as exc:  # invalid URL and such: configuration
            raise AdoError(f"{type(exc).__name__}: {exc}", request=call.described) from exc
        self.request_count += 1
        logger.debug(
            "ADO %s %s -> %d in %.0f ms",
            call.method,
            call.url,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return response

    def _authorization(self, bearer_token: str | None) -> str:
        if bearer_token:
            return f"Bearer {bearer_token}"
        if self._basic:
            return self._basic
        return f"Bearer {self.credentials.bearer_token_provider()}"

    # ---- what to do about an answer -------------------------------------------------------

    def _take_retry(self, call: _Call) -> bool:
        """Count one more retry of ``call``; False when it has used them all."""
        if call.retries >= self.max_retries:
            return False
        call.retries += 1
        return True

    def _retry_connection_failure(self, call: _Call, exc: Exception) -> None:
        """Back off before sending again, or raise ``AdoUnavailable`` (with a hint when a
        POST / PATCH may have taken effect)."""
        sent = not retry.not_sent(exc)
        if sent:
            self.request_count += 1
        kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
        if retry.connection_failure_retryable(
            idempotent=call.idempotent, sent=sent
        ) and self._take_retry(call):
            logger.warning(
                "ADO %s %s: %s (%s); retry %d of %d",
                call.method,
                call.url,
                kind,
                type(exc).__name__,
                call.retries,
                self.max_retries,
            )
            self._backoff(call.retries)
            return
        hint = (
            "; it may have taken effect: read it back before trying again"
            if sent and not call.idempotent
            else ""
        )
        raise AdoUnavailable(
            f"ADO {kind}: {type(exc).__name__}: {_short(exc)}{hint}", request=call.described
        ) from exc

    def _can_refresh(self, call: _Call) -> bool:
        """A 401 is retried once with a new token from the provider (not a PAT, not a
        caller's delegated token: neither would change)."""
        return call.bearer_token is None and not self._basic and not call.refreshed

    def _refresh_token(self, call: _Call) -> None:
        call.refreshed = True
        invalidate = getattr(self.credentials.bearer_token_provider, "invalidate", None)
        if callable(invalidate):
            invalidate()
        logger.info(
            "ADO answered 401 to %s %s; retrying once with a new token", call.method, call.url
        )

    def _retry_answer(
        self, call: _Call, response: requests.Response, retry_after: float | None
    ) -> bool:
        """Wait as ADO asked (Retry-After) or back off, if a retry is left."""
        if not self._take_retry(call):
            return False
        status = response.status_code
        if retry_after is not None:
            logger.warning(
                "ADO answered %d with Retry-After %.1f s on %s %s; waiting, retry %d of %d",
                status,
                retry_after,
                call.method,
                call.url,
                call.retries,
                self.max_retries,
            )
            self._pause(retry_after)
        else:
            logger.warning(
                "ADO answered %d on %s %s; retry %d of %d",
                status,
                call.method,
                call.url,
                call.retries,
                self.max_retries,
            )
            self._backoff(call.retries)
        return True

    def _honour_retry_after(self, call: _Call, status: int, retry_after: float | None) -> None:
        """A Retry-After on a success (ADO sends them with 200 too) holds the next request."""
        if retry_after:
            logger.warning(
                "ADO answered %d with Retry-After %.1f s on %s %s; waiting before the next request",
                status,
                retry_after,
                call.method,
                call.url,
            )
            self._defer(retry_after)

    # ---- waiting --------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.waited_seconds += seconds
            self._sleep(seconds)

    def _wait_for_turn(self) -> None:
        """Sleep off a Retry-After or a pacing pause asked for by an earlier response."""
        if self._not_before:
            remaining = self._not_before - time.monotonic()
            self._not_before = 0.0
            self._wait(remaining)

    def _defer(self, seconds: float) -> None:
        self._not_before = max(self._not_before, time.monotonic() + seconds)

    def _pause(self, seconds: float) -> None:
        """Wait exactly ``seconds`` now (a Retry-After), instead of any pending pause."""
        self._not_before = 0.0
        self._wait(seconds)

    def _backoff(self, attempt: int) -> None:
        """Exponential backoff with full jitter: uniform(0, min(max, base * 2^(attempt-1)))."""
        ceiling = retry.backoff_ceiling(attempt, self.backoff_base, self.backoff_max)
        self._not_before = 0.0
        self._wait(self._random.uniform(0, ceiling))

    def _observe_rate_limit(self, response: requests.Response, *, paced: bool) -> None:
        headers = response.headers
        if not any(k.lower().startswith("x-ratelimit-") for k in headers):
            return
        state = RateLimit(
            resource=headers.get("X-RateLimit-Resource", ""),
            limit=retry.number(headers.get("X-RateLimit-Limit")),
            remaining=retry.number(headers.get("X-RateLimit-Remaining")),
            reset=retry.number(headers.get("X-RateLimit-Reset")),
            delay=retry.number(headers.get("X-RateLimit-Delay")),
        )
        self.rate_limit = state
        if state.delay:
            logger.info("ADO delayed a request by %.3f s (%s)", state.delay, state.resource)
        if paced or not state.limit or state.remaining is None:
            return  # a Retry-After (which wins) or nothing to go by
        if state.remaining >= state.limit * LOW_BUDGET_FRACTION:
            return
        until_reset = (state.reset - time.time()) if state.reset else self.backoff_max
        pause = min(self.backoff_max, max(0.0, until_reset) / max(state.remaining, 1.0))
        if pause > 0:
            logger.info(
                "ADO rate limit low: %g of %g left (%s) for %.0f s; pausing %.2f s per request",
                state.remaining,
                state.limit,
                state.resource,
                until_reset,
                pause,
            )
            self._defer(pause)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."
