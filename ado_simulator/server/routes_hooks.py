"""ADO routes of service hooks: subscriptions listed, read, created, replaced and deleted, with
the body ADO documents (only the webHooks / httpRequest consumer is simulated)."""

from __future__ import annotations

from ..auth import Caller
from ..errors import bad_request
from ..events import EVENT_TYPES
from ..state import SimulatorState
from ..util import log
from .httpd import Request, Response, collection

MASKED_PASSWORD = "********"  # noqa: S105 - how ADO (and the renderer) mask basicAuthPassword


class HookRoutes(SimulatorState):
    """Service-hook subscriptions."""

    def _subs_list(self, request: Request, caller: Caller) -> Response:
        return collection([self.renderer.subscription(s) for s in self.subscriptions.values()])

    def _subs_get(self, request: Request, caller: Caller, subscription: str) -> Response:
        return Response(200, self.renderer.subscription(self.subscription(subscription)))

    def _subs_delete(self, request: Request, caller: Caller, subscription: str) -> Response:
        self.remove_subscription(subscription)
        return Response(204, None)

    @staticmethod
    def _subscription_body(request: Request) -> dict:
        """The fields of a subscription POSTed or PUT with ADO's documented body."""
        body = request.json()
        if not isinstance(body, dict):
            raise bad_request("The subscription must be a JSON object.")
        event_type = body.get("eventType")
        if event_type not in EVENT_TYPES:
            raise bad_request(
                f"The event type '{event_type}' is not simulated; one of {', '.join(EVENT_TYPES)}.",
                "ServiceHookException",
            )
        if (body.get("consumerId") or "webHooks") != "webHooks" or (
            body.get("consumerActionId") or "httpRequest"
        ) != "httpRequest":
            raise bad_request(
                "Only the webHooks / httpRequest consumer is simulated.", "ServiceHookException"
            )
        inputs = {str(k): str(v) for k, v in (body.get("consumerInputs") or {}).items()}
        if not inputs.get("url"):
            raise bad_request("The consumer input 'url' is required.", "ServiceHookException")
        headers = {}
        for line in (inputs.get("httpHeaders") or "").splitlines():
            key, _, value = line.partition(":")
            if key.strip():
                headers[key.strip()] = value.strip()
        return {
            "url": inputs["url"],
            "username": inputs.get("basicAuthUsername"),
            "password": inputs.get("basicAuthPassword"),
            "event_types": [event_type],
            "headers": headers,
            "publisher_inputs": {
                str(k): str(v) for k, v in (body.get("publisherInputs") or {}).items()
            },
            "resource_version": body.get("resourceVersion"),
            "consumer_inputs": inputs,
            "publisher_id": body.get("publisherId"),
        }

    def _subs_create(self, request: Request, caller: Caller) -> Response:
        fields = self._subscription_body(request)
        publisher_id = fields.pop("publisher_id")
        sub = self.add_subscription(fields.pop("url"), created_by=caller.identity, **fields)
        sub.publisher_id = publisher_id or sub.publisher_id
        return Response(200, self.renderer.subscription(sub))

    def _subs_replace(self, request: Request, caller: Caller, subscription: str) -> Response:
        """``PUT .../subscriptions/{id}`` (the SDK's ``replace_subscription``): same id, new
        settings. A ``basicAuthPassword`` sent back masked (``********``) keeps the old one."""
        sub = self.subscription(subscription)
        fields = self._subscription_body(request)
        if fields["password"] == MASKED_PASSWORD:
            fields["password"] = sub.password
            fields["consumer_inputs"]["basicAuthPassword"] = sub.password or ""
        sub.url = fields["url"]
        sub.username = fields["username"]
        sub.password = fields["password"]
        sub.event_types = tuple(fields["event_types"])
        sub.headers = fields["headers"]
        sub.publisher_inputs = fields["publisher_inputs"]
        sub.resource_version = fields["resource_version"]
        sub.consumer_inputs = fields["consumer_inputs"]
        sub.publisher_id = fields["publisher_id"] or sub.publisher_id
        log("subscription %s replaced: %s to %s", sub.id, ", ".join(sub.event_types), sub.url)
        return Response(200, self.renderer.subscription(sub))
