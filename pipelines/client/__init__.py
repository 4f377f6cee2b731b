"""The one package that speaks HTTP to Azure DevOps (ADO) for the portal.

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

The modules: ``errors`` (the typed failures), ``credentials`` (PAT, service-principal token
provider, ``credentials_from_settings``), ``retry`` (when to send again, how long to wait),
``transport`` (one call: send, classify, retry or raise; pacing), ``resources`` (``AdoClient``
and its methods), ``plans`` (``PlanClient``: an automated check's log lines and
TaskCompleted). Callers import from here: ``from pipelines.client import AdoClient``.
"""

from .credentials import (
    ADO_RESOURCE_ID,
    ADO_SCOPE,
    DEFAULT_AUTHORITY_HOST,
    AdoCredentials,
    ServicePrincipalTokenProvider,
    credentials_from_settings,
    service_principal_token_provider,
)
from .errors import (
    AdoAuthError,
    AdoBadRequest,
    AdoError,
    AdoNotFound,
    AdoThrottled,
    AdoUnavailable,
)
from .plans import PlanClient
from .resources import IDS_PER_REQUEST, PAGE_SIZE, AdoClient, ServiceIdentity
from .retry import MAX_RETRY_AFTER, NOT_RETRIED_5XX
from .transport import API_VERSIONS, LOW_BUDGET_FRACTION, RateLimit

__all__ = [
    "ADO_RESOURCE_ID",
    "ADO_SCOPE",
    "API_VERSIONS",
    "DEFAULT_AUTHORITY_HOST",
    "IDS_PER_REQUEST",
    "LOW_BUDGET_FRACTION",
    "MAX_RETRY_AFTER",
    "NOT_RETRIED_5XX",
    "PAGE_SIZE",
    "AdoAuthError",
    "AdoBadRequest",
    "AdoClient",
    "AdoCredentials",
    "AdoError",
    "AdoNotFound",
    "AdoThrottled",
    "AdoUnavailable",
    "PlanClient",
    "RateLimit",
    "ServiceIdentity",
    "ServicePrincipalTokenProvider",
    "credentials_from_settings",
    "service_principal_token_provider",
]
