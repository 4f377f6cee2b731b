"""The ADO REST routes under ``/{org}/{project}/_apis/...`` and ``/{org}/_apis/...``: the table
of patterns, their api-version rules and handlers, and the dispatch that checks the
organization, the method and the api-version, then answers under the state's lock.

The handlers live with their ADO area: ``routes_pipelines`` (pipelines, runs, builds, timeline),
``routes_approvals`` (approvals and checks), ``routes_checks`` (a REST check's callback:
plan events, timeline record feed), ``routes_hooks`` (service-hook subscriptions) and
``routes_org`` (resource locations and areas, projects, connectionData).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..auth import Caller
from ..errors import RULES, VERSION_OPTIONAL, ApiError, check_version, requested_version
from .httpd import Request, Response
from .routes_approvals import ApprovalRoutes
from .routes_checks import CheckRoutes
from .routes_hooks import HookRoutes
from .routes_org import OrgRoutes
from .routes_pipelines import PipelineRoutes

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class AdoRoutes(PipelineRoutes, ApprovalRoutes, CheckRoutes, HookRoutes, OrgRoutes):
    """Every ADO route the simulator serves."""

    def _routes(self) -> list[tuple[re.Pattern, str, dict[str, Callable]]]:
        p = r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis"
        o = r"^/(?P<org>[^/]+)/_apis"
        routes = [
            (
                p + r"/pipelines/approvals/?$",
                "approvals",
                {"GET": self._approvals_list, "PATCH": self._approvals_patch},
            ),
            (
                p + rf"/pipelines/approvals/(?P<approval>{GUID})/?$",
                "approvals",
                {"GET": self._approval_get},
            ),
            (
                p + r"/distributedtask/hubs/(?P<hub>[^/]+)/plans/(?P<plan>[^/]+)/events/?$",
                "planevents",
                {"POST": self._plan_events},
            ),
            (
                p + r"/distributedtask/hubs/(?P<hub>[^/]+)/plans/(?P<plan>[^/]+)/timelines/"
                r"(?P<timeline>[^/]+)/records/(?P<record>[^/]+)/feed/?$",
                "timelinefeed",
                {"POST": self._plan_feed},
            ),
            (p + r"/pipelines/?$", "pipelines", {"GET": self._pipelines_list}),
            (p + r"/pipelines/(?P<pipeline>\d+)/?$", "pipelines", {"GET": self._pipeline_get}),
            (
                p + r"/pipelines/(?P<pipeline>\d+)/runs/?$",
                "runs",
                {"GET": self._runs_list, "POST": self._run_queue},
            ),
            (
                p + r"/pipelines/(?P<pipeline>\d+)/runs/(?P<run>\d+)/?$",
                "runs",
                {"GET": self._run_get},
            ),
            (p + r"/build/builds/?$", "builds", {"GET": self._builds_list}),
            (p + r"/build/builds/(?P<build>\d+)/?$", "builds", {"GET": self._build_get}),
            (
                p + rf"/build/builds/(?P<build>\d+)/timeline(?:/(?P<timeline>{GUID}))?/?$",
                "timeline",
                {"GET": self._timeline_get},
            ),
            (o + r"/?$", None, {"OPTIONS": self._locations}),
            (o + r"/ResourceAreas/?$", "resourceareas", {"GET": self._resource_areas}),
            (
                o + rf"/ResourceAreas/(?P<area>{GUID})/?$",
                "resourceareas",
                {"GET": self._resource_areas},
            ),
            (
                o + r"/hooks/subscriptions/?$",
                "subscriptions",
                {"GET": self._subs_list, "POST": self._subs_create},
            ),
            (
                o + rf"/hooks/subscriptions/(?P<subscription>{GUID})/?$",
                "subscriptions",
                {"GET": self._subs_get, "PUT": self._subs_replace, "DELETE": self._subs_delete},
            ),
            (o + r"/projects/(?P<project>[^/]+)/?$", "projects", {"GET": self._project_get}),
            (
                o + r"/connectionData/?$",
                "connectiondata",
                {"GET": self._connection_data},
            ),
        ]
        return [
            (re.compile(pattern, re.IGNORECASE), rule, methods) for pattern, rule, methods in routes
        ]

    def _route(self, request: Request, caller: Caller) -> Response:
        for pattern, rule_name, methods in self._routes():
            match = pattern.match(request.path)
            if not match:
                continue
            params = match.groupdict()
            if params["org"].lower() != self.org.lower():
                raise ApiError(
                    404,
                    f"VS800075: The organization '{params['org']}' does not exist (the simulator "
                    f"serves '{self.org}').",
                    "OrganizationNotFoundException",
                )
            handler = methods.get(request.method)
            if handler is None:
                raise ApiError(
                    405,
                    f"The requested resource does not support http method '{request.method}'.",
                    "HttpMethodNotAllowedException",
                )
            version = None
            asked = requested_version(request.raw_query, request.headers.get("accept"))
            if rule_name is not None and (asked or rule_name not in VERSION_OPTIONAL):
                version = check_version(asked, RULES[rule_name], request.method)
            if "project" in params:
                params["project"] = self.project(params["project"]).name
            with self.lock:
                self._progress(self.clock.now())
                response = handler(
                    request, caller, **{k: v for k, v in params.items() if k != "org"}
                )
            if version:
                response.content_type = f"application/json; charset=utf-8; api-version={version}"
            return response
        raise ApiError(
            404,
            f"The resource '{request.path}' is not simulated (or does not exist).",
            "VssResourceNotFoundException",
        )
