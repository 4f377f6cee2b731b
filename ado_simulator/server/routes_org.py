"""ADO routes of the organization: the resource locations (``OPTIONS {org}/_apis``) and areas
the azure-devops SDK resolves its routes from, projects, and ``connectionData`` (who the
credentials of a call belong to)."""

from __future__ import annotations

from ..auth import Caller
from ..errors import ApiError
from ..state import SimulatorState
from ..util import fmt_time
from .httpd import Request, Response, collection

#: Resource locations, as ADO's ``OPTIONS {org}/_apis`` lists them, for the resources simulated:
#: (id, area, resourceName, routeTemplate, resourceVersion, minVersion, maxVersion, released).
#: The azure-devops SDK resolves its routes from these (and the build area from ResourceAreas).
LOCATIONS = (
    ("28e1305e-2afe-47bf-abaf-cbb0e6a91988", "pipelines", "pipelines",
     "{project}/_apis/{resource}/{pipelineId}", 1, 6.0, 7.2, "7.1"),
    ("7859261e-d2e9-4a68-b820-a5d84cc5bb3d", "pipelines", "runs",
     "{project}/_apis/pipelines/{pipelineId}/{resource}/{runId}", 1, 6.0, 7.2, "7.1"),
    ("0cd358e1-9217-4d94-8269-1c1ee6f93dcf", "build", "builds",
     "{project}/_apis/build/{resource}/{buildId}", 7, 2.0, 7.2, "7.1"),
    ("8baac422-4c6e-4de5-8532-db96d92acffa", "build", "Timeline",
     "{project}/_apis/build/builds/{buildId}/{resource}/{timelineId}", 2, 2.0, 7.2, "7.1"),
    ("fc50d02a-849f-41fb-8af1-0a5216103269", "hooks", "subscriptions",
     "_apis/{area}/{resource}/{subscriptionId}", 1, 1.0, 7.2, "7.1"),
    ("e81700f7-3be2-46de-8624-2eb35882fcaa", "Location", "ResourceAreas",
     "_apis/{resource}/{areaId}", 1, 3.2, 7.2, "0.0"),
)  # fmt: skip
BUILD_AREA_ID = "965220d5-5bb9-42cf-8d67-9b146df2a5a4"
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
MAX_BODY = 4 * 1024 * 1024


class OrgRoutes(SimulatorState):
    """Resource locations and areas, projects, connectionData."""

    def _locations(self, request: Request, caller: Caller) -> Response:
        """What ``OPTIONS {org}/_apis`` answers: the resource locations (for the SDK)."""
        keys = (
            "id",
            "area",
            "resourceName",
            "routeTemplate",
            "resourceVersion",
            "minVersion",
            "maxVersion",
            "releasedVersion",
        )
        return collection([dict(zip(keys, loc, strict=True)) for loc in LOCATIONS])

    def _resource_areas(
        self, request: Request, caller: Caller, area: str | None = None
    ) -> Response:
        areas = [
            {"id": BUILD_AREA_ID, "name": "build", "locationUrl": f"{self.renderer.org_url}/"},
        ]
        if area is not None:
            found = [a for a in areas if a["id"] == area.lower()]
            if not found:
                raise ApiError(
                    404, f"The resource area {area} is not simulated.", "VssServiceException"
                )
            return Response(200, found[0])
        return collection(areas)

    def _project_get(self, request: Request, caller: Caller, project: str) -> Response:
        """``GET {org}/_apis/projects/{name or id}`` (core): the id service hooks filter on."""
        found = self.project(project)
        return Response(
            200,
            {
                "id": found.id,
                "name": found.name,
                "url": f"{self.renderer.org_url}/_apis/projects/{found.id}",
                "state": "wellFormed",
                "revision": 1,
                "visibility": "private",
                "lastUpdateTime": fmt_time(self.clock.now()),
            },
        )

    def _connection_data(self, request: Request, caller: Caller) -> Response:
        """``GET {org}/_apis/connectionData``: the identity the call's PAT (or token) belongs
        to, which is whom ADO records the portal's approvals as."""
        return Response(200, self.renderer.connection_data(caller.identity))
