"""The JSON shapes ADO returns, built from the simulator's objects.

Shapes follow the REST spec (MicrosoftDocs/vsts-rest-api-specs 7.1 / 7.2), its httpExamples,
the service-hook samples in the ADO docs, and the examples in
``shared/reference/azure-devops.md``. As ADO does, optional values that are not set are left
out of pipelines, runs, builds and approvals (an in-progress run has no ``result`` and no
``finishedDate``), while timeline records and hook payloads carry explicit ``null``.

One module per API area, each a mixin of ``base.RenderBase``: ``runs`` (pipelines, runs,
builds), ``timeline``, ``approvals``, ``hooks``.
"""

from __future__ import annotations

from .approvals import ApprovalRenderer
from .base import RenderBase
from .hooks import HookRenderer
from .runs import RUN_STATE, RunRenderer
from .timeline import EPOCH, TimelineRenderer

__all__ = ["EPOCH", "RUN_STATE", "RenderBase", "Renderer"]


class Renderer(RunRenderer, TimelineRenderer, ApprovalRenderer, HookRenderer):
    """Builds every JSON shape of the simulated ADO API from the simulator's objects."""
