"""ADO routes of approvals and checks: list, get, and the PATCH that decides (logged in the
patch log, with who called and how)."""

from __future__ import annotations

from datetime import UTC, datetime

from ..auth import Caller
from ..errors import ApiError, requested_version
from ..state import SimulatorState
from ..util import fmt_time
from .httpd import Request, Response, collection, expand_options


class ApprovalRoutes(SimulatorState):
    """Approvals: list, get, decide."""

    def _approvals_list(self, request: Request, caller: Caller, project: str) -> Response:
        expand = expand_options(request)
        items, token = self.list_approvals(project, request.query)
        rendered = [
            self.renderer.approval(a, steps="steps" in expand, permissions="permissions" in expand)
            for a in items
        ]
        return collection(rendered, token)

    def _approval_get(
        self, request: Request, caller: Caller, project: str, approval: str
    ) -> Response:
        found = self.approval(approval)
        if found.run.project is not self.project(project):
            self.approval("00000000-0000-0000-0000-000000000000")  # raises not found
        expand = expand_options(request)
        return Response(
            200,
            self.renderer.approval(
                found, steps="steps" in expand, permissions="permissions" in expand
            ),
        )

    def _approvals_patch(self, request: Request, caller: Caller, project: str) -> Response:
        entry: dict = {
            "id": len(self.patch_log) + 1,
            "at": datetime.now(UTC).isoformat(),
            "simulatedAt": fmt_time(self.clock.now()),
            "scheme": caller.scheme,
            "identity": caller.identity.summary(),
            "apiVersion": requested_version(request.raw_query, request.headers.get("accept")),
            "body": None,
            "status": None,
        }
        if caller.claims is not None:
            entry["claims"] = caller.to_json()["claims"]
        self.patch_log.append(entry)
        try:
            body = request.json()
            entry["body"] = body
            approvals = self.update_approvals(body, caller.identity, project)
        except ApiError as exc:
            entry["status"] = exc.status
            entry["error"] = exc.message
            raise
        entry["status"] = 200
        rendered = [self.renderer.approval(a, steps=True) for a in approvals]
        return collection(rendered)
