"""Service hooks: subscriptions as the Service Hooks API returns them, and the resource
containers of an event."""

from __future__ import annotations

from ..model import Project, Subscription
from ..util import fmt_time, stable_guid
from .base import RenderBase


class HookRenderer(RenderBase):
    """Subscriptions and event containers."""

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
