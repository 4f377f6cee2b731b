"""ADO routes of the pipelines and build areas: pipelines, runs (list, get, queue), builds and
the build timeline."""

from __future__ import annotations

from ..auth import Caller
from ..errors import ApiError, bad_request
from ..state import SimulatorState
from .httpd import Request, Response, collection, query_int


class PipelineRoutes(SimulatorState):
    """Pipelines, runs, builds and timelines."""

    def _pipelines_list(self, request: Request, caller: Caller, project: str) -> Response:
        items, token = self.list_pipelines(
            project,
            top=query_int(request.query, "$top"),
            token=request.query.get("continuationtoken"),
            order_by=request.query.get("orderby"),
        )
        return collection([self.renderer.pipeline(p, configuration=False) for p in items], token)

    def _pipeline_get(
        self, request: Request, caller: Caller, project: str, pipeline: str
    ) -> Response:
        return Response(200, self.renderer.pipeline(self.pipeline(int(pipeline), project)))

    def _runs_list(self, request: Request, caller: Caller, project: str, pipeline: str) -> Response:
        return collection([self.renderer.run(r) for r in self.list_runs(project, int(pipeline))])

    def _run_get(
        self, request: Request, caller: Caller, project: str, pipeline: str, run: str
    ) -> Response:
        self.pipeline(int(pipeline), project)
        return Response(200, self.renderer.run(self.run(int(run), int(pipeline))))

    def _run_queue(self, request: Request, caller: Caller, project: str, pipeline: str) -> Response:
        pipe = self.pipeline(int(pipeline), project)
        body = request.json()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise bad_request("The run parameters must be a JSON object.")
        if body.get("previewRun"):
            raise bad_request(
                "previewRun is not simulated by the ADO simulator.", "PipelineValidationException"
            )
        params = body.get("templateParameters") or {}
        variables = body.get("variables") or {}
        if not isinstance(params, dict) or not isinstance(variables, dict):
            raise bad_request("templateParameters and variables must be JSON objects.")
        for name, value in variables.items():
            if not isinstance(value, dict):
                raise bad_request(f"The variable '{name}' must be an object with a 'value'.")
        repo = ((body.get("resources") or {}).get("repositories") or {}).get("self") or {}
        run = self.queue_run(
            pipe,
            template_parameters=params,
            variables=variables,
            branch=repo.get("refName"),
            commit=repo.get("version"),
            reason="manual",
            requested_for=caller.identity,
            stages_to_skip=body.get("stagesToSkip") or (),
        )
        return Response(200, self.renderer.run(run))

    def _builds_list(self, request: Request, caller: Caller, project: str) -> Response:
        items, token = self.list_builds(project, request.query)
        return collection([self.renderer.build(r) for r in items], token)

    def _build_get(self, request: Request, caller: Caller, project: str, build: str) -> Response:
        run = self.run(int(build))
        if run.project is not self.project(project):
            raise ApiError(
                404, f"The requested build {build} could not be found.", "BuildNotFoundException"
            )
        return Response(200, self.renderer.build(run))

    def _timeline_get(
        self,
        request: Request,
        caller: Caller,
        project: str,
        build: str,
        timeline: str | None = None,
    ) -> Response:
        run = self.run(int(build))
        if run.project is not self.project(project) or (
            timeline and timeline.lower() != run.timeline_id
        ):
            raise ApiError(
                404,
                f"The timeline {timeline or ''} of build {build} could not be found.",
                "TimelineNotFoundException",
            )
        return Response(200, self.renderer.timeline(run))
