"""Service-hook subscriptions (created through the REST API or the Python API) and the log of
their deliveries; building and sending the events is ``events`` and ``hooks``."""

from __future__ import annotations

from collections.abc import Iterable

from ..auth import Identity
from ..errors import not_found
from ..events import BUILD_COMPLETE, EVENT_TYPES
from ..hooks import Delivery
from ..model import Subscription
from ..util import log
from .base import SIMULATOR_IDENTITY, StateBase


class SubscriptionState(StateBase):
    """Adding, finding, removing and pausing subscriptions; their deliveries."""

    def add_subscription(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        event_types: Iterable[str] | None = None,
        headers: dict[str, str] | None = None,
        publisher_inputs: dict[str, str] | None = None,
        resource_version: str | None = None,
        approval_event_detail: str = "sparse",
        consumer_inputs: dict[str, str] | None = None,
        created_by: Identity | None = None,
    ) -> Subscription:
        """Deliver events (default: all five) to ``url`` with basic auth ``username:password``.

        ``approval_event_detail="sparse"`` sends approval events as the ADO docs sample shows
        them (``run``, ``stage``, ``pipeline`` null); ``"full"`` fills them in.
        """
        types = tuple(event_types or EVENT_TYPES)
        unknown = [t for t in types if t not in EVENT_TYPES and t != "*"]
        if unknown:
            raise ValueError(f"unknown event type {unknown[0]!r}; one of {', '.join(EVENT_TYPES)}")
        if approval_event_detail not in ("sparse", "full"):
            raise ValueError("approval_event_detail is 'sparse' or 'full'")
        with self.lock:
            sub = Subscription(
                id=self.ids.guid(),
                event_types=types,
                url=url,
                username=username,
                password=password,
                headers=dict(headers or {}),
                publisher_inputs=dict(publisher_inputs or {}),
                resource_version=resource_version,
                created_by=created_by or SIMULATOR_IDENTITY,
                created_date=self.clock.now(),
                approval_event_detail=approval_event_detail,
                consumer_inputs=dict(consumer_inputs or {}),
                publisher_id="tfs" if types == (BUILD_COMPLETE,) else "pipelines",
            )
            self.subscriptions[sub.id] = sub
            log("subscription %s: %s to %s", sub.id, ", ".join(types), url)
            return sub

    def subscription(self, subscription_id: str) -> Subscription:
        with self.lock:
            found = self.subscriptions.get(str(subscription_id).lower())
            if found is None:
                raise not_found(
                    f"Subscription {subscription_id} does not exist.",
                    "SubscriptionNotFoundException",
                    "Microsoft.VisualStudio.Services.ServiceHooks.WebApi",
                )
            return found

    def remove_subscription(self, subscription_id: str) -> None:
        with self.lock:
            self.subscriptions.pop(self.subscription(subscription_id).id, None)

    def set_probation(self, subscription_id: str, on: bool = True) -> Subscription:
        """Put a subscription on probation (its new events are dropped) or back to enabled."""
        with self.lock:
            sub = self.subscription(subscription_id)
            sub.status = "onProbation" if on else "enabled"
            log("subscription %s is %s", sub.id, sub.status)
            return sub

    def deliveries(self, event_type: str | None = None) -> list[Delivery]:
        return [d for d in self.hooks.log_entries() if event_type in (None, d.event_type)]

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        return self.hooks.wait(timeout)

    def redeliver(self, notification_id: int) -> Delivery:
        for delivery in reversed(self.hooks.log_entries()):
            if delivery.notification_id == int(notification_id):
                return self.hooks.redeliver(delivery)
        raise KeyError(notification_id)
