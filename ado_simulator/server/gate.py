"""What stands before the ADO routes, and the API that scripts it: authentication (basic auth
with a PAT, or a bearer token), scripted faults (an error status, a 429, a held request or
answer), the rate budget per identity, and the down switch (``503`` or refused connections).
"""

from __future__ import annotations

import html
import threading
import time

from ..auth import AuthError, Caller, authenticate
from ..errors import ApiError
from ..faults import Faults, RateBudget, blocked_error, throttle_headers
from ..state import SimulatorState
from ..util import log
from .httpd import Request, Response


class Gate(SimulatorState):
    """Faults, throttling and outages of ``AdoSimulator``, and the checks every ADO request
    passes before its route answers."""

    # set by AdoSimulator.__init__; _listen, _close, url and _route are AdoSimulator's too
    faults: Faults
    budget: RateBudget | None
    down_mode: str | None
    port: int
    _running: bool
    _stopping: threading.Event
    _up_timer: threading.Timer | None
    _listen_lock: threading.Lock

    def fail_next(
        self,
        count: int = 1,
        status: int = 500,
        *,
        path: str | None = None,
        method: str | None = None,
    ):
        """Answer the next ``count`` matching ADO requests with ``status``."""
        return self.faults.add(status, count, path=path, method=method)

    def throttle_next(
        self,
        count: int = 1,
        retry_after: int = 1,
        *,
        path: str | None = None,
        method: str | None = None,
    ):
        """Answer the next ``count`` ADO requests with 429, ``Retry-After``, ``X-RateLimit-*``."""
        return self.faults.add(429, count, path=path, method=method, retry_after=retry_after)

    def slow_next(
        self,
        count: int = 1,
        seconds: float = 30.0,
        *,
        path: str | None = None,
        method: str | None = None,
        after: bool = False,
    ):
        """Hold the next ``count`` matching ADO requests ``seconds`` (or until the returned
        rule's ``release()`` or ``stop()``) before handling them; with ``after``, handle them
        first and hold the answer. ``rule.hits`` counts the requests it caught."""
        return self.faults.add(0, count, path=path, method=method, delay=seconds, after=after)

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_rate_limit(
        self,
        limit: int = 200,
        window: float = 300.0,
        *,
        cost: float = 1.0,
        warn_below: float = 20.0,
        delay: float = 0.0,
    ) -> RateBudget:
        """Give every identity a budget of ``limit`` units per ``window`` real seconds."""
        self.budget = RateBudget(
            limit=limit, window=window, cost=cost, warn_below=warn_below, delay=delay
        )
        return self.budget

    def clear_rate_limit(self) -> None:
        self.budget = None

    def go_down(self, mode: str = "refuse", seconds: float | None = None) -> None:
        """``refuse``: stop listening (connections are refused); ``503``: answer 503 to ADO
        routes. With ``seconds`` it comes back up by itself."""
        if mode not in ("refuse", "503"):
            raise ValueError("mode is 'refuse' or '503'")
        with self._listen_lock:
            if mode == "503":
                self.down_mode = "503"
            else:
                self.down_mode = "refuse"
                self._close()
            if self._up_timer is not None:
                self._up_timer.cancel()
            if seconds is not None:
                self._up_timer = threading.Timer(seconds, self.come_up)
                self._up_timer.daemon = True
                self._up_timer.start()
        log("down (%s)%s", mode, f" for {seconds} s" if seconds is not None else "")

    def come_up(self) -> None:
        with self._listen_lock:
            self.down_mode = None
            if self._running and self._server is None:
                for _ in range(50):  # the port was just released; retry briefly
                    try:
                        self._listen()
                        break
                    except OSError:
                        time.sleep(0.1)
                else:
                    log("could not listen on port %s again", self.port)
                    return
        log("up again on %s", self.url)

    def _ado_answer(self, request: Request, seen: dict) -> Response:
        if self.down_mode == "503":
            seen["note"] = "down"
            raise ApiError(
                503,
                "Service Unavailable (simulated outage).",
                "ServiceUnavailableException",
                headers={"Retry-After": "5"},
            )
        try:
            caller = authenticate(request.headers.get("authorization"), self.pats)
        except AuthError as exc:
            seen["note"] = str(exc)
            return self._unauthorized(str(exc))
        seen["caller"] = caller
        rule = self.faults.take(request.method, request.path)
        if rule is not None and rule.delay and not rule.after:
            seen["note"] = f"held by fault {rule.id}"
            self._hold(rule)
        if rule is not None and rule.status:
            seen["note"] = f"fault {rule.id}"
            raise self._fault_error(rule, caller)
        extra: dict[str, str] = {}
        if self.budget is not None:
            try:
                extra, delay = self.budget.consume(caller.identity.unique_name)
            except ApiError:
                seen["note"] = "rate limit"
                raise
            if delay:
                time.sleep(delay)
        response = self._route(request, caller)
        response.headers.update(extra)
        if rule is not None and rule.delay and rule.after:
            seen["note"] = f"answer held by fault {rule.id}"
            self._hold(rule)
        return response

    def _hold(self, rule) -> None:
        deadline = time.monotonic() + rule.delay
        while not rule.released.is_set() and not self._stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            rule.released.wait(min(remaining, 0.1))

    def _fault_error(self, rule, caller: Caller) -> ApiError:
        if rule.status == 429:
            reset = time.time() + rule.retry_after
            return blocked_error(
                caller.identity.unique_name, rule.retry_after, throttle_headers(200, 0, reset)
            )
        if rule.status == 503:
            return ApiError(
                503,
                "Service Unavailable (simulated fault).",
                "ServiceUnavailableException",
                headers={"Retry-After": str(rule.retry_after)},
            )
        if rule.status >= 500:
            return ApiError(
                rule.status,
                "VS30063: simulated server error.",
                "SimulatedServerException",
                event_id=0,
            )
        return ApiError(rule.status, f"Simulated HTTP {rule.status}.", "SimulatedFaultException")

    def _unauthorized(self, reason: str) -> Response:
        page = (
            "<!DOCTYPE html><html><head><title>Access Denied (ADO simulator)</title></head><body>"
            "<h1>401 - Unauthorized</h1><p>ADO simulator: this is a simulator of Azure DevOps, "
            f"not Azure DevOps. {html.escape(reason)}.</p></body></html>"
        )
        return Response(
            401,
            page,
            {
                "WWW-Authenticate": f'Basic realm="{self.url}/"',
                "X-TFS-FedAuthRealm": self.url,
                "X-VSS-ResourceTenant": "00000000-0000-0000-0000-000000000000",
            },
            content_type="text/html; charset=utf-8",
        )
