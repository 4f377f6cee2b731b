"""The one module that speaks HTTP to Azure DevOps (ADO) for the portal.

Pipelines, runs, builds, build timelines and YAML-pipeline approvals go over plain ``requests``,
not the ``azure-devops`` SDK: the SDK has no YAML-approvals client, drops continuation tokens,
hides ``Retry-After`` / ``X-RateLimit-*``, does not retry 429 and sits on deprecated msrest
(docs/decisions/0001-azure-devops-client.md). Only ``manage.py register_ado_hooks`` uses the
SDK, for service-hook subscriptions.

What the client does for every call:

- api-version ``7.1`` (one table, ``API_VERSIONS``), default timeouts, a ``User-Agent`` so the
  organization's Usage page names the portal;
- PAT as ``Basic base64(":" + PAT)`` or an Entra ``Bearer`` token fetched from a provider per
  request (the provider caches); a 401 with a provider refreshes the token once and retries;
- idempotent GETs are retried on 5xx (except 501 / 505), connection errors and timeouts, with
  exponential backoff and full jitter; POST / PATCH (queue a run, act on approvals) only when
  the request surely did not take effect: connection refused before sending, 429, 503 with
  ``Retry-After``, a 401 answered before anything happened;
- ``Retry-After`` on any response (429, 503, even 200) is honoured before the next request, up
  to 300 s; ``X-RateLimit-Remaining`` below 10 % of ``X-RateLimit-Limit`` spreads the rest of
  the budget until ``X-RateLimit-Reset`` with a short pause before each request;
- collections follow ``x-ms-continuationtoken``;
- failures are typed (``AdoAuthError``, ``AdoNotFound``...) and carry the HTTP status and ADO's
  ``message`` / ``typeKey``. PATs and tokens are never logged.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

import requests
import urllib3.exceptions
from django.core.exceptions import ImproperlyConfigured

from core.clients import confidential_client

logger = logging.getLogger(__name__)

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
}

#: Azure DevOps as an Entra ID resource; ``/.default`` = the permissions granted to the app.
ADO_RESOURCE_ID = "499b84ac-1321-427f-aa17-267ca6975798"
ADO_SCOPE = f"{ADO_RESOURCE_ID}/.default"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"

PAGE_SIZE = 1000  # $top for pipelines and builds (what ADO allows per page)
MAX_RETRY_AFTER = 300.0  # the longest Retry-After honoured (ADO asks for up to a few minutes)
LOW_BUDGET_FRACTION = 0.10  # pace requests once X-RateLimit-Remaining falls below this share
IDS_PER_REQUEST = 100  # buildIds / approvalIds per request, to keep URLs short
NOT_RETRIED_5XX = frozenset({501, 505})  # "not implemented" / "version not supported": final


# ==== errors =====================================================================================


class AdoError(Exception):
    """Anything that went wrong talking to ADO.

    ``status``: the HTTP status (``None`` when no response came); ``message`` and ``type_key``:
    ADO's error body (``typeKey`` is ``""`` when ADO sent none); ``retry_after``: seconds ADO
    asked to wait, if it did; ``request``: ``"METHOD url"`` of the failed call.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        type_key: str = "",
        retry_after: float | None = None,
        request: str = "",
    ):
        super().__init__(message)
        self.message = message
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


class AdoNotFound(AdoError):
    """404: no such project, pipeline, run, build, approval..."""


class AdoBadRequest(AdoError):
    """Any other 4xx except 429: a bad parameter, an approval already completed..."""


class AdoThrottled(AdoError):
    """429, still after the retries (ADO's TF400733 "request was blocked")."""


class AdoUnavailable(AdoError):
    """5xx, connection errors or timeouts, still after the retries (or not retried)."""


@dataclass(frozen=True)
class ServiceIdentity:
    """Who the portal's credentials are in ADO (``connectionData``'s ``authenticatedUser``)."""

    id: str
    display_name: str
    account: str  # the sign-in name (UPN / e-mail), "" for a service principal without one

    @property
    def name(self) -> str:
        """The name ADO shows for it: the display name, else the account, else the id."""
        return self.display_name or self.account or self.id


# ==== credentials ================================================================================


@dataclass(frozen=True, repr=False)
class AdoCredentials:
    """Exactly one of a PAT or a provider of fresh Entra access tokens.

    A provider is called before every request (it should cache: msal does). A provider may
    also have an ``invalidate()`` method: the client calls it after a 401, before the one
    retry with a fresh token.
    """

    pat: str = field(default="", repr=False)
    bearer_token_provider: Callable[[], str] | None = field(default=None, repr=False)

    def __post_init__(self):
        if bool(self.pat) == (self.bearer_token_provider is not None):
            raise ValueError("AdoCredentials takes exactly one of pat or bearer_token_provider")

    @property
    def scheme(self) -> str:
        return "Basic" if self.pat else "Bearer"

    def __repr__(self) -> str:  # never the PAT
        kind = (
            "pat=<hidden>" if self.pat else f"bearer_token_provider={self.bearer_token_provider!r}"
        )
        return f"AdoCredentials({kind})"


class ServicePrincipalTokenProvider:
    """Access tokens for ADO from Entra ID's client-credentials flow, through msal.

    msal keeps the token in its in-memory cache and asks Entra ID again only when it nears
    expiry, so calling this before every request costs nothing. ``invalidate()`` drops the
    cached token (msal refuses ``force_refresh`` for this flow). The msal application (and its
    OIDC discovery request) is created on first use.
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        verify: bool | str = True,
        timeout: float | tuple[float, float] = (5, 30),
    ):
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._verify = verify
        self._timeout = timeout
        self._app = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"ServicePrincipalTokenProvider(authority={self.authority!r}, "
            f"client_id={self.client_id!r})"
        )

    def _application(self):
        if self._app is None:
            try:
                self._app = confidential_client(
                    self.client_id,
                    self._client_secret,
                    self.authority,
                    timeout=self._timeout,
                    verify=self._verify,
                )
            except requests.RequestException as exc:
                raise AdoUnavailable(
                    f"Entra ID at {self.authority} could not be reached: {type(exc).__name__}"
                ) from exc
            except ValueError as exc:  # bad authority URL, unknown tenant (OIDC discovery 400)
                raise AdoAuthError(f"Entra ID authority {self.authority}: {exc}") from exc
        return self._app

    def __call__(self) -> str:
        with self._lock:
            app = self._application()
            try:
                result = app.acquire_token_for_client(scopes=[ADO_SCOPE])
            except requests.RequestException as exc:
                raise AdoUnavailable(
                    f"Entra ID token endpoint of {self.authority} could not be reached: "
                    f"{type(exc).__name__}"
                ) from exc
        if result and result.get("access_token"):
            return result["access_token"]
        result = result or {}
        raise AdoAuthError(
            result.get("error_description") or result.get("error") or "Entra ID issued no token",
            type_key=result.get("error", ""),
        )

    def invalidate(self) -> None:
        with self._lock:
            if self._app is not None:
                self._app.remove_tokens_for_client()


_PROVIDERS: dict[tuple, ServicePrincipalTokenProvider] = {}
_PROVIDERS_LOCK = threading.Lock()


def service_principal_token_provider(
    tenant_id: str,
    client_id: str,
    client_secret: str,
    *,
    authority_host: str = DEFAULT_AUTHORITY_HOST,
    verify: bool | str = True,
) -> Callable[[], str]:
    """A provider of ADO access tokens for a service principal (client credentials).

    One provider per (tenant, client, secret, authority) and process, so every client shares
    msal's token cache: one token request per token lifetime, not one per client. ``verify``
    is passed to requests (a CA bundle path for a TLS-inspecting proxy or a test stand-in).
    Raises ``AdoAuthError`` with msal's ``error_description`` when Entra ID refuses.
    """
    digest = hashlib.sha256(client_secret.encode()).hexdigest()
    key = (tenant_id, client_id, digest, authority_host.rstrip("/").lower(), verify)
    with _PROVIDERS_LOCK:
        provider = _PROVIDERS.get(key)
        if provider is None:
            provider = ServicePrincipalTokenProvider(
                tenant_id,
                client_id,
                client_secret,
                authority_host=authority_host,
                verify=verify,
            )
            _PROVIDERS[key] = provider
        return provider


def credentials_from_settings() -> AdoCredentials:
    """``AZURE_DEVOPS_PAT`` if set, else the ``ENTRA_*`` service principal."""
    from django.conf import settings

    pat = getattr(settings, "AZURE_DEVOPS_PAT", "")
    if pat:
        return AdoCredentials(pat=pat)
    names = ("ENTRA_TENANT_ID", "ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET")
    values = {name: getattr(settings, name, "") for name in names}
    if all(values.values()):
        return AdoCredentials(
            bearer_token_provider=service_principal_token_provider(
                values["ENTRA_TENANT_ID"],
                values["ENTRA_CLIENT_ID"],
                values["ENTRA_CLIENT_SECRET"],
                authority_host=getattr(settings, "ENTRA_AUTHORITY_HOST", "")
                or DEFAULT_AUTHORITY_HOST,
            )
        )
    missing = [name for name, value in values.items() if not value]
    partly = f" ({', '.join(missing)} missing)" if len(missing) < len(names) else ""
    raise ImproperlyConfigured(
        "No Azure DevOps credentials: set AZURE_DEVOPS_PAT, or ENTRA_TENANT_ID, ENTRA_CLIENT_ID "
        f"and ENTRA_CLIENT_SECRET for a service principal{partly}."
    )


# ==== the client =================================================================================


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


class AdoClient:
    """Reads (and queues runs and acts on approvals in) one ADO project.

    Not thread-safe: make one per thread or task (``for_project`` is cheap; token providers
    are shared). ``request_count`` counts the HTTP requests that reached ADO.
    """

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

    @classmethod
    def for_project(cls, project, **options) -> AdoClient:
        """A client for a ``pipelines.models.AdoProject`` with the credentials of settings;
        ``options`` (``timeout``, ``max_retries``...) as for the constructor."""
        return cls(
            project.organization_url, project.project, credentials_from_settings(), **options
        )

    def __repr__(self) -> str:
        return f"AdoClient({self.organization_url!r}, {self.project!r}, {self.credentials.scheme})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> AdoClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- pipelines and runs ---------------------------------------------------------------

    def list_pipelines(self) -> Iterator[dict]:
        """Every pipeline of the project (``$top=1000`` pages, continuation tokens followed)."""
        for page in self._pages("pipelines", "pipelines", {"$top": PAGE_SIZE}):
            yield from page

    def get_pipeline(self, pipeline_id: int) -> dict:
        return self._get_json(f"pipelines/{int(pipeline_id)}", "pipelines")

    def get_run(self, pipeline_id: int, run_id: int) -> dict:
        return self._get_json(f"pipelines/{int(pipeline_id)}/runs/{int(run_id)}", "runs")

    def queue_run(
        self,
        pipeline_id: int,
        *,
        template_parameters: dict[str, str] | None = None,
        branch: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> dict:
        """Queue a run (``POST pipelines/{id}/runs``); returns the Run.

        Not retried when it may have taken effect (a 500 or a timeout after sending could have
        queued it): only a refused connection, 429, 503 with Retry-After or a 401 before a
        token refresh are retried. Anything else raises; look for the run before queueing again.
        """
        body: dict = {}
        if template_parameters:
            body["templateParameters"] = {str(k): str(v) for k, v in template_parameters.items()}
        if branch:
            ref = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
            body["resources"] = {"repositories": {"self": {"refName": ref}}}
        if variables:
            body["variables"] = {
                str(k): {"value": str(v), "isSecret": False} for k, v in variables.items()
            }
        response = self._request(
            "POST",
            self._url(f"pipelines/{int(pipeline_id)}/runs"),
            "runs",
            body=body,
            idempotent=False,
        )
        return self._json(response) or {}

    # ---- builds and timelines -------------------------------------------------------------

    def list_builds(
        self,
        *,
        definitions: list[int] | None = None,
        min_time: datetime | None = None,
        query_order: str = "queueTimeDescending",
        status_filter: str | None = None,
        build_ids: list[int] | None = None,
        top: int = 1000,
    ) -> Iterator[dict]:
        """Builds (= runs) of the project, following ``x-ms-continuationtoken``.

        ``min_time`` (timezone-aware) filters on the time of ``query_order`` (ADO's rule: a
        ``finishTime*`` order returns finished builds only). An empty ``definitions`` or
        ``build_ids`` list yields nothing. ``build_ids`` are asked for 100 at a time (the
        order holds within each batch only).
        """
        if definitions is not None and not definitions:
            return
        params: dict = {"queryOrder": query_order, "$top": int(top)}
        if definitions:
            params["definitions"] = ",".join(str(int(d)) for d in definitions)
        if min_time is not None:
            params["minTime"] = _iso(min_time)
        if status_filter:
            params["statusFilter"] = status_filter
        batches: Iterable[list[int] | None] = (
            [None] if build_ids is None else _chunks([int(b) for b in build_ids])
        )
        for batch in batches:
            if batch is not None:
                params["buildIds"] = ",".join(str(b) for b in batch)
            for page in self._pages("build/builds", "builds", params):
                yield from page

    def get_build(self, build_id: int) -> dict:
        return self._get_json(f"build/builds/{int(build_id)}", "builds")

    def get_timeline(self, build_id: int) -> dict:
        """The build's timeline; ``{"records": []}`` while ADO has none yet (204 or null)."""
        response = self._request(
            "GET", self._url(f"build/builds/{int(build_id)}/timeline"), "timeline"
        )
        timeline = self._json(response) or {}
        if not isinstance(timeline, dict):
            raise AdoError(
                "ADO answered the timeline with something other than an object",
                response.status_code,
                request=_describe(response),
            )
        timeline["records"] = timeline.get("records") or []
        return timeline

    # ---- approvals (YAML pipelines; the SDK has no client for them) -----------------------

    def list_approvals(
        self,
        *,
        state: str | None = None,
        expand_steps: bool = True,
        approval_ids: list[str] | None = None,
    ) -> Iterator[dict]:
        """Approvals of the project (pass ``state="pending"``: ADO returns every state by
        default). ``approval_ids`` are asked for 100 at a time; an empty list yields nothing."""
        if approval_ids is not None and not approval_ids:
            return
        params: dict = {}
        if state:
            params["state"] = state
        if expand_steps:
            params["$expand"] = "steps"
        batches: Iterable[list[str] | None] = (
            [None] if approval_ids is None else _chunks([str(a) for a in approval_ids])
        )
        for batch in batches:
            if batch is not None:
                params["approvalIds"] = ",".join(batch)
            for page in self._pages("pipelines/approvals", "approvals", params):
                yield from page

    def get_approval(self, approval_id: str, *, expand_steps: bool = True) -> dict:
        params = {"$expand": "steps"} if expand_steps else {}
        return self._get_json(
            f"pipelines/approvals/{quote(str(approval_id), safe='')}", "approvals", params
        )

    def update_approvals(
        self, updates: list[dict], *, bearer_token: str | None = None
    ) -> list[dict]:
        """Approve / reject: ``PATCH pipelines/approvals`` with ``[{approvalId, status,
        comment}]``; returns the updated approvals.

        ``bearer_token``: a user's delegated Entra token, so ADO records that user as the
        approver (it replaces the client's credentials for this call; it is not refreshed).
        Retried only when it cannot have taken effect (as ``queue_run``).
        """
        response = self._request(
            "PATCH",
            self._url("pipelines/approvals"),
            "approvals",
            body=list(updates),
            idempotent=False,
            bearer_token=bearer_token,
        )
        body = self._json(response) or {}
        return list(body.get("value") or []) if isinstance(body, dict) else list(body)

    # ---- organization ---------------------------------------------------------------------

    def get_project(self) -> dict:
        """The project (``id``, ``name``...): its id is what service-hook filters take."""
        response = self._request(
            "GET",
            f"{self._org_base}projects/{quote(self.project, safe='')}",
            "projects",
        )
        return self._json(response) or {}

    def get_service_identity(self) -> ServiceIdentity:
        """Whom the client's credentials authenticate as (``GET {org}/_apis/connectionData``):
        the identity ADO records the portal's own approvals under. Needs no extra PAT scope."""
        response = self._request("GET", f"{self._org_base}connectionData", "connectionData")
        body = self._json(response) or {}
        user = body.get("authenticatedUser") if isinstance(body, dict) else None
        if not isinstance(user, dict) or not user.get("id"):
            raise AdoError(
                "ADO's connectionData names no authenticated user",
                response.status_code,
                request=_describe(response),
            )
        properties = user.get("properties")
        account = properties.get("Account") if isinstance(properties, dict) else None
        if isinstance(account, dict):  # ADO's property bag: {"$type": ..., "$value": ...}
            account = account.get("$value")
        return ServiceIdentity(
            id=str(user["id"]),
            display_name=str(
                user.get("providerDisplayName") or user.get("customDisplayName") or ""
            ),
            account=str(account or ""),
        )

    # ---- HTTP -----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self._project_base + path

    def _get_json(self, path: str, resource: str, params: dict | None = None) -> dict:
        return self._json(self._request("GET", self._url(path), resource, params=params)) or {}

    def _pages(self, path: str, resource: str, params: dict) -> Iterator[list[dict]]:
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
                    request=_describe(response),
                )
            seen.add(token)

    def _authorization(self, bearer_token: str | None) -> str:
        if bearer_token:
            return f"Bearer {bearer_token}"
        if self._basic:
            return self._basic
        return f"Bearer {self.credentials.bearer_token_provider()}"

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
        described = f"{method} {url}"
        retries = 0
        refreshed = False
        while True:
            self._wait_for_turn()
            authorization = self._authorization(bearer_token)
            started = time.monotonic()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=query,
                    json=body,
                    auth=_Authorization(authorization),
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.exceptions.SSLError as exc:
                raise AdoUnavailable(f"TLS error talking to ADO: {exc}", request=described) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                sent = not _not_sent(exc)
                if sent:
                    self.request_count += 1
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                if (idempotent or not sent) and retries < self.max_retries:
                    retries += 1
                    logger.warning(
                        "ADO %s %s: %s (%s); retry %d of %d",
                        method,
                        url,
                        kind,
                        type(exc).__name__,
                        retries,
                        self.max_retries,
                    )
                    self._backoff(retries)
                    continue
                hint = (
                    "; it may have taken effect: read it back before trying again"
                    if sent and not idempotent
                    else ""
                )
                raise AdoUnavailable(
                    f"ADO {kind}: {type(exc).__name__}: {_short(exc)}{hint}", request=described
                ) from exc
            except requests.RequestException as exc:  # invalid URL and such: configuration
                raise AdoError(f"{type(exc).__name__}: {exc}", request=described) from exc

            self.request_count += 1
            status = response.status_code
            retry_after = _retry_after(response)
            self._observe_rate_limit(response, paced=retry_after is not None)
            logger.debug(
                "ADO %s %s -> %d in %.0f ms",
                method,
                url,
                status,
                (time.monotonic() - started) * 1000,
            )
            if 200 <= status < 300 and status != 203:
                if retry_after:
                    logger.warning(
                        "ADO answered %d with Retry-After %.1f s on %s %s; waiting before the "
                        "next request",
                        status,
                        retry_after,
                        method,
                        url,
                    )
                    self._defer(retry_after)
                return response
            if status == 401 and bearer_token is None and not self._basic and not refreshed:
                refreshed = True
                invalidate = getattr(self.credentials.bearer_token_provider, "invalidate", None)
                if callable(invalidate):
                    invalidate()
                logger.info(
                    "ADO answered 401 to %s %s; retrying once with a new token", method, url
                )
                continue
            retryable = status == 429 or (status == 503 and retry_after is not None)
            if idempotent and status >= 500 and status not in NOT_RETRIED_5XX:
                retryable = True
            if retryable and retries < self.max_retries:
                retries += 1
                if retry_after is not None:
                    logger.warning(
                        "ADO answered %d with Retry-After %.1f s on %s %s; waiting, retry %d of %d",
                        status,
                        retry_after,
                        method,
                        url,
                        retries,
                        self.max_retries,
                    )
                    self._pause(retry_after)
                else:
                    logger.warning(
                        "ADO answered %d on %s %s; retry %d of %d",
                        status,
                        method,
                        url,
                        retries,
                        self.max_retries,
                    )
                    self._backoff(retries)
                continue
            if retry_after:
                self._defer(retry_after)  # whoever calls next still waits as told
            raise _error(response, retry_after, described)

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
                request=_describe(response),
            ) from exc

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
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        self._not_before = 0.0
        self._wait(self._random.uniform(0, ceiling))

    def _observe_rate_limit(self, response: requests.Response, *, paced: bool) -> None:
        headers = response.headers
        if not any(k.lower().startswith("x-ratelimit-") for k in headers):
            return
        state = RateLimit(
            resource=headers.get("X-RateLimit-Resource", ""),
            limit=_number(headers.get("X-RateLimit-Limit")),
            remaining=_number(headers.get("X-RateLimit-Remaining")),
            reset=_number(headers.get("X-RateLimit-Reset")),
            delay=_number(headers.get("X-RateLimit-Delay")),
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


# ==== helpers ====================================================================================


def _chunks(items: list, size: int = IDS_PER_REQUEST) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("min_time must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from ``Retry-After`` (seconds or an HTTP date), capped at 300 s."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    seconds = _number(value.strip())
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds):
        return None
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def _not_sent(exc: Exception) -> bool:
    """True when the request surely never reached ADO (the connection was not established)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.Timeout):
        return False  # a read timeout: sent, maybe processed
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


_TAGS = re.compile(r"<[^>]+>")


def _error(response: requests.Response, retry_after: float | None, described: str) -> AdoError:
    status = response.status_code
    message, type_key = "", ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message") or "")
        type_key = str(body.get("typeKey") or "")
    if not message:
        if status == 203:
            message = "ADO answered with a sign-in page: the credentials were not accepted"
        elif 300 <= status < 400:
            message = (
                f"ADO redirected to {response.headers.get('Location', '?')} (a sign-in page?): "
                "the credentials were not accepted"
            )
        else:
            text = " ".join(_TAGS.sub(" ", response.text or "").split())
            message = f"{status} {response.reason or ''}".strip()
            if text:
                message += f": {text[:300]}"
    if status in (401, 403, 203) or 300 <= status < 400:
        cls: type[AdoError] = AdoAuthError
    elif status == 404:
        cls = AdoNotFound
    elif status == 429:
        cls = AdoThrottled
    elif status >= 500:
        cls = AdoUnavailable
    elif 400 <= status < 500:
        cls = AdoBadRequest
    else:
        cls = AdoError
    return cls(message, status, type_key, retry_after, described)


def _describe(response: requests.Response) -> str:
    request = response.request
    return f"{request.method} {request.url}" if request is not None else ""


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."
