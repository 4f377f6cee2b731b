"""The HTTP side: ADO REST routes under ``/{org}/{project}/_apis/...``, the control API under
``/_simulator/...``, a home page at ``/``, faults, throttling and the down switch.

``AdoSimulator`` is the simulator state plus a ``ThreadingHTTPServer`` serving it in a thread:
``start()`` binds (port 0 picks a free port), ``.url`` is its address, ``stop()`` ends it.

Modules: ``simulator`` (``AdoSimulator``: lifecycle, request log, dispatch), ``httpd`` (request,
response, server, handler), ``gate`` (authentication, faults, throttling, outages), ``routes``
with ``routes_pipelines``, ``routes_approvals``, ``routes_hooks`` and ``routes_org`` (the ADO
REST API by area), ``control_api`` and ``control_json`` (the home page and control API).
"""

from .httpd import MAX_BODY, Request, Response
from .routes import GUID
from .routes_hooks import MASKED_PASSWORD
from .routes_org import BUILD_AREA_ID, LOCATIONS
from .simulator import AdoSimulator

__all__ = [
    "BUILD_AREA_ID",
    "GUID",
    "LOCATIONS",
    "MASKED_PASSWORD",
    "MAX_BODY",
    "AdoSimulator",
    "Request",
    "Response",
]
