"""The JSON shapes ADO returns, built from the simulator's objects.

Shapes follow the REST spec (MicrosoftDocs/vsts-rest-api-specs 7.1 / 7.2), its httpExamples,
the service-hook samples in the ADO docs, and the examples in
``shared/reference/azure-devops.md``. As ADO does, optional values that are not set are left
out of pipelines, runs, builds and approvals (an in-progress run has no ``result`` and no
``finishedDate``), while timeline records and hook payloads carry explicit ``null``.
"""

from __future__ import annotations

from datetime import datetime

from .auth import SYSTEM_ID, Identity
from .model import Approval, ApprovalStep, Pipeline, Project, Run, StageRun, Subscription
from .util import fmt_time, stable_guid

RUN_STATE = {"notStarted": "inProgress", "inProgress": "inProgress"}
EPOCH = "0001-01-01T00:00:00"


class Renderer:
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

    # --- timeline ------------------------------------------------------------------------------

    def _record(
        self,
        run: Run,
        *,
        id: str,
        parent: str | None,
        type: str,
        name: str,
        identifier: str | None,
        state: str,
        result: str | None,
        start: datetime | None,
        finish: datetime | None,
        order: int | None,
        modified: datetime | None,
        log_id: int | None = None,
        worker: str | None = None,
    ) -> dict:
        api = self.api(run.project)
        return {
            "previousAttempts": [],
            "id": id,
            "parentId": parent,
            "type": type,
            "name": name,
            "startTime": fmt_time(start),
            "finishTime": fmt_time(finish),
            "currentOperation": None,
            "percentComplete": 100 if state == "completed" else 0,
            "state": state,
            "result": result,
            "resultCode": None,
            "changeId": run.change_id,
            "lastModified": fmt_time(modified) or EPOCH,
            "workerName": worker,
            "order": order,
            "details": None,
            "errorCount": 1 if result == "failed" and type in ("Job", "Phase", "Stage") else 0,
            "warningCount": 0,
            "url": None,
            "log": (
                {
                    "id": log_id,
                    "type": "Container",
                    "url": f"{api}/build/builds/{run.id}/logs/{log_id}",
                }
                if log_id is not None and start is not None
                else None
            ),
            "task": None,
            "attempt": 1,
            "identifier": identifier,
            "issues": (
                [
                    {
                        "type": "error",
                        "category": "General",
                        "message": "The job failed (simulated).",
                        "data": {},
                    }
                ]
                if result == "failed" and type == "Job"
                else []
            ),
        }

    @staticmethod
    def _timeline_state(stage: StageRun) -> str:
        return {"pending": "pending", "completed": "completed"}.get(stage.state, "inProgress")

    def timeline_records(self, run: Run) -> list[dict]:
        records = []
        for order, stage in enumerate(run.stages, start=1):
            records.append(
                self._record(
                    run,
                    id=stage.record_id,
                    parent=None,
                    type="Stage",
                    name=stage.name,
                    identifier=stage.identifier,
                    state=self._timeline_state(stage),
                    result=stage.result,
                    start=stage.start_time,
                    finish=stage.finish_time,
                    order=order,
                    modified=stage.last_modified,
                )
            )
            child_order = 1
            approval = stage.approval
            if approval is not None:
                checkpoint_done = stage.checkpoint_finish is not None
                checkpoint_result = _check_result(approval.status) if checkpoint_done else None
                records.append(
                    self._record(
                        run,
                        id=stage.checkpoint_id,
                        parent=stage.record_id,
                        type="Checkpoint",
                        name="Checkpoint",
                        identifier="Checkpoint",
                        state="completed" if checkpoint_done else "inProgress",
                        result=checkpoint_result,
                        start=stage.checkpoint_start,
                        finish=stage.checkpoint_finish,
                        order=child_order,
                        modified=stage.last_modified,
                    )
                )
                records.append(
                    self._record(
                        run,
                        id=approval.id,
                        parent=stage.checkpoint_id,
                        type="Checkpoint.Approval",
                        name="Checkpoint.Approval",
                        identifier=approval.id,
                        state="completed" if checkpoint_done else "inProgress",
                        result=checkpoint_result,
                        start=approval.created_on,
                        finish=stage.checkpoint_finish,
                        order=1,
                        modified=approval.last_modified_on,
                    )
                )
                child_order += 1
            job_state, job_result, job_finish = _job_state(stage)
            records.append(
                self._record(
                    run,
                    id=stage.phase_id,
                    parent=stage.record_id,
                    type="Phase",
                    name=stage.spec.job,
                    identifier=f"{stage.identifier}.{stage.spec.job}",
                    state=job_state,
                    result=job_result,
                    start=stage.job_start,
                    finish=job_finish,
                    order=child_order,
                    modified=stage.last_modified,
                )
            )
            records.append(
                self._record(
                    run,
                    id=stage.job_id,
                    parent=stage.phase_id,
                    type="Job",
                    name=stage.spec.job,
                    identifier=f"{stage.identifier}.{stage.spec.job}.__default",
                    state=job_state,
                    result=job_result,
                    start=stage.job_start,
                    finish=job_finish,
                    order=1,
                    modified=stage.last_modified,
                    log_id=stage.log_id,
                    worker="Hosted Agent" if stage.job_start else None,
                )
            )
        return records

    def timeline(self, run: Run) -> dict:
        return {
            "records": self.timeline_records(run),
            "lastChangedBy": SYSTEM_ID,
            "lastChangedOn": fmt_time(run.last_changed or run.queue_time),
            "id": run.timeline_id,
            "changeId": run.change_id,
            "url": f"{self.api(run.project)}/build/builds/{run.id}/Timeline/{run.timeline_id}",
        }

    # --- approvals -----------------------------------------------------------------------------

    def approval_step(self, step: ApprovalStep, *, permissions: bool) -> dict:
        data: dict = {"assignedApprover": self.identity(step.assigned)}
        if step.actual is not None:
            data["actualApprover"] = self.identity(step.actual)
        data["status"] = step.status
        data["comment"] = step.comment or ""
        if step.last_modified_on is not None:
            data["lastModifiedOn"] = fmt_time(step.last_modified_on)
        data["order"] = step.order
        if step.last_modified_by is not None:
            data["lastModifiedBy"] = self.identity(step.last_modified_by)
        data["initiatedOn"] = fmt_time(step.initiated_on)
        data["history"] = []
        if permissions:
            data["permissions"] = "view, update"
        return data

    def approval_pipeline(self, approval: Approval) -> dict:
        run = approval.run
        return {
            "owner": {
                "_links": {
                    "web": {"href": self.run_web(run)},
                    "self": {"href": f"{self.api(run.project)}/build/Builds/{run.id}"},
                },
                "id": run.id,
                "name": run.name,
            },
            "id": str(run.pipeline.id),
            "name": run.pipeline.name,
        }

    def approval(
        self, approval: Approval, *, steps: bool = False, permissions: bool = False
    ) -> dict:
        run = approval.run
        data: dict = {
            "id": approval.id,
            "steps": (
                [self.approval_step(s, permissions=permissions) for s in approval.steps]
                if steps
                else []
            ),
            "status": approval.status,
            "createdOn": fmt_time(approval.created_on),
            "lastModifiedOn": fmt_time(approval.last_modified_on),
            "instructions": approval.instructions,
            "minRequiredApprovers": approval.min_required_approvers,
            "executionOrder": approval.execution_order,
            "blockedApprovers": [self.identity(i) for i in approval.blocked_approvers],
            "_links": {
                "self": {"href": f"{self.api(run.project)}/pipelines/approvals/{approval.id}"}
            },
            "pipeline": self.approval_pipeline(approval),
        }
        if permissions:
            data["permissions"] = "view, update"
        return data

    # --- service hooks -------------------------------------------------------------------------

    def subscription(self, sub: Subscription) -> dict:
        consumer_inputs = dict(sub.consumer_inputs) or {"url": sub.url}
        if "basicAuthPassword" in consumer_inputs:
            consumer_inputs["basicAuthPassword"] = "********"
        event_type = sub.event_types[0] if len(sub.event_types) == 1 else "*"
        return {
            "id": sub.id,
            "url": f"{self.org_url}/_apis/hooks/subscriptions/{sub.id}",
            "status": sub.status,
            "publisherId": sub.publisher_id,
            "eventType": event_type,
            "resourceVersion": sub.resource_version or "",
            "eventDescription": f"{event_type} (ADO simulator)",
            "consumerId": "webHooks",
            "consumerActionId": "httpRequest",
            "actionDescription": f"To host {sub.url}",
            "probationRetries": 0,
            "createdBy": self.identity(sub.created_by),
            "createdDate": fmt_time(sub.created_date),
            "modifiedBy": self.identity(sub.created_by),
            "modifiedDate": fmt_time(sub.created_date),
            "publisherInputs": self.publisher_inputs(sub),
            "consumerInputs": consumer_inputs,
            "_links": {"self": {"href": f"{self.org_url}/_apis/hooks/subscriptions/{sub.id}"}},
        }

    def publisher_inputs(self, sub: Subscription) -> dict:
        """The inputs as given, plus what ADO adds: the host id, and for ``tfs`` events the id
        of the underlying notification subscription."""
        inputs = dict(sub.publisher_inputs)
        inputs.setdefault("hostId", self.org_id)
        if sub.publisher_id == "tfs":
            inputs.setdefault("tfsSubscriptionId", stable_guid("tfs-subscription", sub.id))
        return inputs

    def resource_containers(self, project: Project) -> dict:
        return {
            "collection": {"id": self.org_id, "baseUrl": f"{self.org_url}/"},
            "account": {"id": self.org_id, "baseUrl": f"{self.org_url}/"},
            "project": {"id": project.id, "baseUrl": f"{self.org_url}/"},
        }


def _check_result(status: str) -> str:
    return {"approved": "succeeded", "canceled": "canceled"}.get(status, "failed")


def _job_state(stage: StageRun) -> tuple[str, str | None, datetime | None]:
    if stage.state == "completed":
        if stage.job_start is None:
            return (
                "completed",
                stage.result if stage.result in ("skipped", "canceled") else "skipped",
                None,
            )
        return "completed", stage.result, stage.finish_time
    if stage.state == "running":
        return "inProgress", None, None
    return "pending", None, None
