"""Pipelines, runs (the Pipelines API) and builds (the Build API) as ADO returns them."""

from __future__ import annotations

from ..model import Pipeline, Run
from ..util import fmt_time
from .base import RenderBase

RUN_STATE = {"notStarted": "inProgress", "inProgress": "inProgress"}


class RunRenderer(RenderBase):
    """Pipelines, runs and builds."""

    def pipeline_ref(self, pipeline: Pipeline) -> dict:
        return {
            "url": f"{self.pipeline_url(pipeline)}?revision={pipeline.revision}",
            "id": pipeline.id,
            "revision": pipeline.revision,
            "name": pipeline.name,
            "folder": pipeline.folder,
        }

    def pipeline(self, pipeline: Pipeline, *, configuration: bool = True) -> dict:
        api = self.api(pipeline.project)
        data: dict = {
            "_links": {
                "self": {"href": f"{api}/Pipelines/{pipeline.id}?revision={pipeline.revision}"},
                "web": {"href": self.definition_web(pipeline)},
            },
        }
        if configuration:
            data["configuration"] = {
                "path": pipeline.yaml_path,
                "repository": {"id": pipeline.repository_id, "type": "azureReposGit"},
                "type": "yaml",
            }
        data.update(
            {
                "url": f"{api}/Pipelines/{pipeline.id}?revision={pipeline.revision}",
                "id": pipeline.id,
                "revision": pipeline.revision,
                "name": pipeline.name,
                "folder": pipeline.folder,
            }
        )
        return data

    # --- runs ----------------------------------------------------------------------------------

    def run_links(self, run: Run) -> dict:
        api = self.api(run.project)
        pipeline = run.pipeline
        return {
            "self": {"href": f"{api}/Pipelines/{pipeline.id}/runs/{run.id}"},
            "web": {"href": self.run_web(run)},
            "pipeline.web": {
                "href": f"{self.web(run.project)}/_build/definition?definitionId={pipeline.id}"
            },
            "pipeline": {"href": f"{api}/Pipelines/{pipeline.id}?revision={pipeline.revision}"},
        }

    def run(self, run: Run, *, nulls: bool = False) -> dict:
        """A ``Run``; ``nulls``: unset values as explicit nulls (hook payloads), not left out."""
        api = self.api(run.project)
        done = run.state == "completed"
        data: dict = {"_links": self.run_links(run)}
        if run.template_parameters:
            data["templateParameters"] = dict(run.template_parameters)
        data["pipeline"] = self.pipeline_ref(run.pipeline)
        data["state"] = RUN_STATE.get(run.state, run.state)
        if done or nulls:
            data["result"] = run.result if done else None
        data["createdDate"] = fmt_time(run.queue_time)
        if done or nulls:
            data["finishedDate"] = fmt_time(run.finish_time) if done else None
        data["url"] = f"{api}/Pipelines/{run.pipeline.id}/runs/{run.id}"
        data["resources"] = {
            "repositories": {
                "self": {
                    "repository": {"id": run.pipeline.repository_id, "type": "azureReposGit"},
                    "refName": run.source_branch,
                    "version": run.source_version,
                }
            }
        }
        if run.variables:
            data["variables"] = {
                name: (
                    {"isSecret": True}
                    if var.get("isSecret")
                    else {"value": var.get("value", ""), "isSecret": False}
                )
                for name, var in run.variables.items()
            }
        data["id"] = run.id
        data["name"] = run.name
        return data

    # --- builds --------------------------------------------------------------------------------

    def build_status(self, run: Run) -> str:
        return {
            "notStarted": "notStarted",
            "inProgress": "inProgress",
            "canceling": "cancelling",
        }.get(run.state, "completed")

    def definition(self, pipeline: Pipeline) -> dict:
        api = self.api(pipeline.project)
        return {
            "drafts": [],
            "id": pipeline.id,
            "name": pipeline.name,
            "url": f"{api}/build/Definitions/{pipeline.id}?revision={pipeline.revision}",
            "uri": f"vstfs:///Build/Definition/{pipeline.id}",
            "path": pipeline.folder,
            "type": "build",
            "queueStatus": "enabled",
            "revision": pipeline.revision,
            "project": self.project(pipeline.project),
        }

    def build(self, run: Run) -> dict:
        api = self.api(run.project)
        pipeline = run.pipeline
        data: dict = {
            "_links": {
                "self": {"href": f"{api}/build/Builds/{run.id}"},
                "web": {"href": self.run_web(run)},
                "sourceVersionDisplayUri": {"href": f"{api}/build/builds/{run.id}/sources"},
                "timeline": {"href": f"{api}/build/builds/{run.id}/Timeline"},
                "badge": {"href": f"{api}/build/status/{pipeline.id}"},
            },
            "properties": {},
            "tags": [],
            "validationResults": [],
            "plans": [{"planId": run.plan_id}],
            "templateParameters": dict(run.template_parameters),
            "triggerInfo": dict(run.trigger_info),
            "id": run.id,
            "buildNumber": run.name,
            "status": self.build_status(run),
        }
        if run.state == "completed":
            data["result"] = run.result
        data["queueTime"] = fmt_time(run.queue_time)
        if run.start_time:
            data["startTime"] = fmt_time(run.start_time)
        if run.finish_time:
            data["finishTime"] = fmt_time(run.finish_time)
        data.update(
            {
                "url": f"{api}/build/Builds/{run.id}",
                "definition": self.definition(pipeline),
                "buildNumberRevision": int(run.name.rsplit(".", 1)[-1]) if "." in run.name else 1,
                "project": self.project(run.project),
                "uri": f"vstfs:///Build/Build/{run.id}",
                "sourceBranch": run.source_branch,
                "sourceVersion": run.source_version,
                "queue": {
                    "id": 1,
                    "name": "Azure Pipelines",
                    "url": f"{self.org_url}/_apis/build/Queues/1",
                    "pool": {"id": 1, "name": "Azure Pipelines", "isHosted": True},
                },
                "priority": "normal",
                "reason": run.reason,
                "requestedFor": self.identity(run.requested_for),
                "requestedBy": self.identity(run.requested_by),
                "lastChangedDate": fmt_time(run.last_changed or run.queue_time),
                "lastChangedBy": self.identity(run.requested_by),
                "orchestrationPlan": {"planId": run.plan_id},
                "logs": {"id": 0, "type": "Container", "url": f"{api}/build/builds/{run.id}/logs"},
                "repository": {
                    "id": pipeline.repository_id,
                    "type": "TfsGit",
                    "name": pipeline.repository_name,
                    "url": f"{self.web(run.project)}/_git/{pipeline.repository_name}",
                    "clean": None,
                    "checkoutSubmodules": False,
                },
                "retainedByRelease": False,
                "triggeredByBuild": None,
                "appendCommitMessageToRunName": True,
            }
        )
        return data
