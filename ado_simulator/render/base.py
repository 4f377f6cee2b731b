"""What every shape is built from: the organization's URLs, identities, ``connectionData`` and
projects."""

from __future__ import annotations

from datetime import datetime

from ..auth import Identity
from ..model import Pipeline, Project, Run
from ..util import fmt_time, stable_guid


class RenderBase:
    def __init__(self, base_url: str, org: str, org_id: str, created: datetime):
        self.base_url = base_url.rstrip("/")
        self.org = org
        self.org_id = org_id
        self.created = created

    # --- urls ----------------------------------------------------------------------------------

    @property
    def org_url(self) -> str:
        return f"{self.base_url}/{self.org}"

    def api(self, project: Project) -> str:
        return f"{self.org_url}/{project.id}/_apis"

    def web(self, project: Project) -> str:
        return f"{self.org_url}/{project.id}"

    def run_web(self, run: Run) -> str:
        return f"{self.web(run.project)}/_build/results?buildId={run.id}"

    def pipeline_url(self, pipeline: Pipeline) -> str:
        return f"{self.api(pipeline.project)}/Pipelines/{pipeline.id}"

    def definition_web(self, pipeline: Pipeline) -> str:
        return f"{self.web(pipeline.project)}/_build/definition?definitionId={pipeline.id}"

    def identity(self, identity: Identity) -> dict:
        return identity.to_json(self.org_url)

    def connection_identity(self, identity: Identity) -> dict:
        """An identity as ``_apis/connectionData`` serializes it (the Identities API shape,
        not an ``IdentityRef``): the name in ``providerDisplayName``, the sign-in name in
        ``properties.Account``."""
        return {
            "id": identity.id,
            "descriptor": f"Microsoft.IdentityModel.Claims.ClaimsIdentity;{identity.unique_name}",
            "subjectDescriptor": identity.descriptor,
            "providerDisplayName": identity.display_name,
            "isActive": True,
            "properties": {"Account": {"$type": "System.String", "$value": identity.unique_name}},
            "resourceVersion": 2,
            "metaTypeId": 0,
        }

    def connection_data(self, identity: Identity) -> dict:
        """``GET {org}/_apis/connectionData``: who the credentials of the call belong to."""
        who = self.connection_identity(identity)
        return {
            "authenticatedUser": who,
            "authorizedUser": dict(who),
            "instanceId": self.org_id,
            "deploymentId": stable_guid("deployment", self.org),
            "deploymentType": "hosted",
            "locationServiceData": {
                "serviceOwner": "00025394-6065-48ca-87d9-7f5672854ef7",
                "defaultAccessMappingMoniker": "PublicAccessMapping",
                "lastChangeId": 1,
                "lastChangeId64": 1,
            },
        }

    # --- projects and pipelines ----------------------------------------------------------------

    def project(self, project: Project) -> dict:
        return {
            "id": project.id,
            "name": project.name,
            "url": f"{self.org_url}/_apis/projects/{project.id}",
            "state": "wellFormed",
            "revision": 1,
            "visibility": "private",
            "lastUpdateTime": fmt_time(self.created),
        }
