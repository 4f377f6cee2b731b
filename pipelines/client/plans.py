"""The calls an automated check makes back to ADO, on the plan that called it: append log
lines to the check's timeline record, and post ``TaskCompleted``.

Not the project's client: the URL is the ``PlanUrl`` / ``ProjectId`` ADO sent with the check,
and the credential is the job's ``AuthToken`` (a Bearer token, 48 h), not the portal's PAT.
Same transport (retries, Retry-After, typed errors) as ``AdoClient``.
"""

from __future__ import annotations

from urllib.parse import quote

from .credentials import AdoCredentials
from .transport import AdoTransport


class PlanClient(AdoTransport):
    """``PlanClient(plan_url, project_id, hub_name, plan_id, auth_token)``."""

    def __init__(
        self,
        plan_url: str,
        project_id: str,
        hub_name: str,
        plan_id: str,
        auth_token: str,
        **options,
    ):
        credentials = AdoCredentials(bearer_token_provider=lambda: auth_token)
        super().__init__(plan_url, project_id, credentials, **options)
        hub, plan = quote(hub_name, safe=""), quote(plan_id, safe="")
        self._plan = f"distributedtask/hubs/{hub}/plans/{plan}"

    def __repr__(self) -> str:  # never the token
        return f"PlanClient({self.organization_url!r}, {self.project!r}, {self._plan!r})"

    def append_feed(self, *, timeline_id: str, record_id: str, lines: list[str]) -> None:
        """Lines on the check's timeline record (what people read in ADO's check log)."""
        path = (
            f"{self._plan}/timelines/{quote(timeline_id, safe='')}/records/"
            f"{quote(record_id, safe='')}/feed"
        )
        self._request(
            "POST",
            self._url(path),
            "timeline_feed",
            body={"count": len(lines), "value": lines},
            idempotent=False,
        )

    def task_completed(self, *, task_id: str, job_id: str, result: str) -> None:
        """The check's answer: ``result`` is ``succeeded`` or ``failed``."""
        self._request(
            "POST",
            self._url(f"{self._plan}/events"),
            "plan_events",
            body={"name": "TaskCompleted", "taskId": task_id, "jobId": job_id, "result": result},
            idempotent=False,
        )
