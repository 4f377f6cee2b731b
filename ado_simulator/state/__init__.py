"""The simulator's state and engine, with no HTTP in it: the Python scripting API.

Runs move through their stages on the simulated clock. A stage with an approval check pauses at
a checkpoint; approving moves it on, rejecting fails the stage and the run, and a check that is
not decided within its timeout times out (the approval becomes ``timedOut``, the stage is
skipped and the run fails). Every transition happens at its own simulated time, in time order
across runs, and publishes the service-hook events ADO would.

One module per concern, each a mixin of ``base.StateBase``: ``pipelines``, ``runs`` (and the
clock), ``engine``, ``approvals``, ``subscriptions``; ``paging`` reads query parameters and
pages lists as ADO does.
"""

from __future__ import annotations

from .approvals import APPROVAL_STATUSES, ApprovalState
from .base import APPROVAL_NS, BUILD_NS, PIPELINES_NS, SIMULATOR_IDENTITY, StateBase
from .engine import Engine
from .paging import DEFAULT_PAGE
from .pipelines import PipelineState
from .runs import BUILD_ORDERS, BUILD_REASONS, RunState
from .subscriptions import SubscriptionState

__all__ = [
    "APPROVAL_NS",
    "APPROVAL_STATUSES",
    "BUILD_NS",
    "BUILD_ORDERS",
    "BUILD_REASONS",
    "DEFAULT_PAGE",
    "PIPELINES_NS",
    "SIMULATOR_IDENTITY",
    "SimulatorState",
    "StateBase",
]


class SimulatorState(PipelineState, RunState, ApprovalState, SubscriptionState, Engine):
    """Everything the simulator knows, and the Python API to script it.

    All public methods are thread-safe (one re-entrant lock); the HTTP server calls the same
    methods as tests do.
    """
