"""``AdoClient``: the ADO resources the portal reads and writes, one method each.

Pipelines, runs, builds, build timelines and YAML-pipeline approvals of one project, and the
organization's project and ``connectionData``. How each call is sent (auth, retries, pacing,
continuation tokens, typed errors) is ``transport.AdoTransport``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from .credentials import credentials_from_settings
from .errors import AdoError, describe
from .transport import AdoTransport

PAGE_SIZE = 1000  # $top for pipelines and builds (what ADO allows per page)
IDS_PER_REQUEST = 100  # buildIds / approvalIds per request, to keep URLs short


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


class AdoClient(AdoTransport):
    """Reads (and queues runs and acts on approvals in) one ADO project.

    ``AdoClient(organization_url, project, credentials, *, timeout=(5, 30), max_retries=5,
    backoff_base=0.5, backoff_max=30.0, user_agent="mlops-portal", sleep=time.sleep)``.
    Not thread-safe: make one per thread or task (``for_project`` is cheap; token providers
    are shared). ``request_count`` counts the HTTP requests that reached ADO.
    """

    @classmethod
    def for_project(cls, project, **options) -> AdoClient:
        """A client for a ``pipelines.models.AdoProject`` with the credentials of settings;
        ``options`` (``timeout``, ``max_retries``...) as for the constructor."""
        return cls(
            project.organization_url, project.project, credentials_from_settings(), **options
        )

    def __repr__(self) -> str:
        return f"AdoClient({self.organization_url!r}, {self.project!r}, {self.credentials.scheme})"

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
                request=describe(response),
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
                request=describe(response),
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


def _chunks(items: list, size: int = IDS_PER_REQUEST) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("min_time must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
