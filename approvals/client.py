"""The ADO client the approvals app reads and PATCHes approvals with.

The HTTP code lives in ``pipelines.client.AdoClient`` (one client module per external system);
this module decides *which* client a job gets: the sync reads with the portal's own
credentials, and delivery fails fast so a worker never holds a decision while ADO sleeps.
"""

from __future__ import annotations

from django.conf import settings

from pipelines.client import (  # noqa: F401 - re-exported for the approvals app
    AdoAuthError,
    AdoBadRequest,
    AdoClient,
    AdoError,
    AdoNotFound,
    AdoThrottled,
    AdoUnavailable,
    PlanClient,
    credentials_from_settings,
)


def sync_client(project) -> AdoClient:
    return AdoClient.for_project(project)


def delivery_client(project) -> AdoClient:
    """Few in-client retries and short waits: the outbox retries with its own backoff, and a
    delivery must finish well inside its claim (APPROVALS_DELIVERY_CLAIM_SECONDS)."""
    return AdoClient(
        project.organization_url,
        project.project,
        credentials_from_settings(),
        timeout=(5, 20),
        max_retries=settings.APPROVALS_DELIVERY_CLIENT_RETRIES,
        backoff_max=5.0,
    )


def plan_client(check_request, token: str) -> PlanClient:
    """The client an automated check answers ADO with: the plan ADO named, the job's token;
    few retries (the callback outbox retries with its own backoff)."""
    return PlanClient(
        check_request.plan_url,
        check_request.project_id,
        check_request.hub_name,
        check_request.plan_id,
        token,
        timeout=(5, 20),
        max_retries=settings.APPROVALS_DELIVERY_CLIENT_RETRIES,
        backoff_max=5.0,
    )
