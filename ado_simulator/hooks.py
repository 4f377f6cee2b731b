"""Service-hook deliveries: POST the event envelope to each subscriber, with basic auth.

A delivery runs in a background thread so a slow subscriber never blocks the API. Each gets
its own ``notificationId``; a failed attempt is retried once; every delivery is logged. A
subscription on probation has its new events dropped (ADO loses events while a subscription is
on probation), which the log shows as ``dropped``.
"""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .model import Subscription
from .util import log


@dataclass
class Delivery:
    notification_id: int
    subscription: Subscription
    event_id: str
    event_type: str
    payload: dict
    status: str = "pending"  # pending | succeeded | failed | dropped
    attempts: list[dict] = field(default_factory=list)
    queued_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_json(self, *, payload: bool = True) -> dict:
        data = {
            "notificationId": self.notification_id,
            "subscriptionId": self.subscription.id,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "url": self.subscription.url,
            "status": self.status,
            "attempts": list(self.attempts),
            "queuedAt": self.queued_at,
        }
        if payload:
            data["payload"] = self.payload
        return data


class HookDispatcher:
    def __init__(
        self, *, retry_delay: float = 1.0, timeout: float = 10.0, auto_probation: bool = False
    ):
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.auto_probation = auto_probation
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._log: list[Delivery] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: threading.Thread | None = None

    # --- producer side (called under the simulator's lock) ---------------------------------

    def submit(self, delivery: Delivery) -> None:
        with self._lock:
            self._log.append(delivery)
            if delivery.subscription.status != "enabled":
                delivery.status = "dropped"
                log(
                    "dropped %s notification %s: subscription %s is %s",
                    delivery.event_type,
                    delivery.notification_id,
                    delivery.subscription.id,
                    delivery.subscription.status,
                )
                return
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="ado-simulator-hooks", daemon=True
                )
                self._thread.start()
        self._queue.put(delivery)

    def redeliver(self, delivery: Delivery) -> Delivery:
        """Send a logged delivery again, unchanged (same event id and notification id)."""
        copy = Delivery(
            delivery.notification_id,
            delivery.subscription,
            delivery.event_id,
            delivery.event_type,
            delivery.payload,
        )
        self.submit(copy)
        return copy

    # --- inspection --------------------------------------------------------------------------

    def log_entries(self) -> list[Delivery]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until every queued delivery has been attempted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=self.timeout * 2 + self.retry_delay + 1)
        self._thread = None

    # --- worker ------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is None:
                return
            try:
                self._deliver(delivery)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, delivery: Delivery) -> None:
        for attempt in (1, 2):
            ok = self._attempt(delivery)
            if ok:
                delivery.status = "succeeded"
                return
            if attempt == 1:
                time.sleep(self.retry_delay)
        delivery.status = "failed"
        if self.auto_probation:
            delivery.subscription.status = "onProbation"
            log("subscription %s is now on probation", delivery.subscription.id)

    def _attempt(self, delivery: Delivery) -> bool:
        sub = delivery.subscription
        body = json.dumps(delivery.payload).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "VSServices/ADO-simulator",
            "X-ADO-Simulator": "true",
        }
        headers.update(sub.headers)
        if sub.username is not None or sub.password is not None:
            raw = f"{sub.username or ''}:{sub.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        record: dict = {"at": datetime.now(UTC).isoformat()}
        if not sub.url.lower().startswith(("http://", "https://")):
            record["error"] = "only http(s) subscriber URLs are supported"
            delivery.attempts.append(record)
            return False
        request = urllib.request.Request(sub.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                record["statusCode"] = response.status
        except urllib.error.HTTPError as exc:
            record["statusCode"] = exc.code
        except (urllib.error.URLError, OSError) as exc:
            record["error"] = str(getattr(exc, "reason", exc))
        delivery.attempts.append(record)
        ok = 200 <= record.get("statusCode", 0) < 300
        log(
            "delivered %s notification %s to %s: %s",
            delivery.event_type,
            delivery.notification_id,
            sub.url,
            record.get("statusCode", record.get("error")),
        )
        return ok
