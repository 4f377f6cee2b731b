"""Pipelines: creating them (stages tuned per pipeline) and finding or listing them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from ..auth import Identity
from ..errors import bad_request, not_found
from ..model import (
    PIPELINE_KINDS,
    TRAINING_PARAMETERS,
    Pipeline,
    Project,
    StageSpec,
    default_stages,
)
from ..util import stable_guid
from .base import PIPELINES_NS, StateBase
from .paging import DEFAULT_PAGE, keyset_page


class PipelineState(StateBase):
    """Creating, finding and listing pipelines."""

    def create_pipeline(
        self,
        name: str,
        kind: str = "ci",
        *,
        folder: str | None = None,
        model: str | None = None,
        project: str | Project | None = None,
        stages: list[StageSpec] | None = None,
        stage_seconds: float | dict[str, float] | None = None,
        approvers: dict[str, list[Identity | str]] | None = None,
        approval_timeout_minutes: float | None = None,
        min_required_approvers: int | None = None,
        execution_order: str | None = None,
        blocked_approvers: dict[str, list[Identity | str]] | None = None,
        parameters: Iterable[str] | None = None,
        pipeline_id: int | None = None,
        repository: str | None = None,
    ) -> Pipeline:
        """Create a pipeline of ``kind`` (ci, data-cleansing, training, scoring, release).

        ``model`` is simulator metadata (ADO has no such field; the portal links pipelines to
        models by configuration or convention); ``folder`` defaults to ``\\<model>``.
        ``stage_seconds`` sets the simulated time of every stage (a number) or of some (a dict
        keyed by stage identifier or name); ``approvers`` replaces the approvers of approval
        stages (``{"Deploy_QA": ["alice@example.com"]}``); ``blocked_approvers`` lists, per
        stage, identities shown as not allowed to approve (not enforced). ``parameters``
        declares the template parameters a run may pass (None: any); a training or scoring
        pipeline that declares them also accepts ``TRAINING_PARAMETERS``.
        """
        if kind not in PIPELINE_KINDS:
            raise ValueError(f"unknown pipeline kind {kind!r}; one of {', '.join(PIPELINE_KINDS)}")
        with self.lock:
            proj = self.project(project)
            specs = list(stages) if stages is not None else default_stages(kind, proj.name)
            specs = [
                _tune_stage(
                    spec,
                    stage_seconds,
                    approvers,
                    approval_timeout_minutes,
                    min_required_approvers,
                    execution_order,
                    blocked_approvers,
                )
                for spec in specs
            ]
            if pipeline_id is None:
                pipeline_id = self._next_pipeline_id
            if pipeline_id in self.pipelines:
                raise ValueError(f"pipeline id {pipeline_id} exists")
            self._next_pipeline_id = max(self._next_pipeline_id, pipeline_id + 1)
            repo = repository or (model or name)
            pipeline = Pipeline(
                id=pipeline_id,
                project=proj,
                name=name,
                folder=_folder(folder if folder is not None else (f"\\{model}" if model else "\\")),
                kind=kind,
                model=model,
                stages=specs,
                repository_id=stable_guid("repo", proj.id, repo),
                repository_name=repo,
                parameters=_declared(kind, parameters),
            )
            self.pipelines[pipeline_id] = pipeline
            self._log("created %s pipeline %s %r in %s", kind, pipeline_id, name, proj.name)
            return pipeline

    def pipeline(self, pipeline: int | Pipeline, project: str | Project | None = None) -> Pipeline:
        if isinstance(pipeline, Pipeline):
            return pipeline
        with self.lock:
            found = self.pipelines.get(int(pipeline))
            if found is None or (
                project is not None and found.project is not self.project(project)
            ):
                raise not_found(
                    f"Pipeline with id {pipeline} does not exist or you do not have permissions "
                    "to access it.",
                    "PipelineNotFoundException",
                    PIPELINES_NS,
                )
            return found

    def list_pipelines(
        self, project: str, *, top: int | None, token: str | None, order_by: str | None
    ) -> tuple[list[Pipeline], str | None]:
        proj = self.project(project)
        field_name, _, direction = (order_by or "name asc").strip().partition(" ")
        field_name = field_name.lower()
        if field_name not in ("name", "id"):
            raise bad_request(f"The orderBy field '{field_name}' is not supported.")
        descending = direction.strip().lower() == "desc"

        def key(p: Pipeline):
            return [p.name.lower(), p.id] if field_name == "name" else [p.id, p.id]

        with self.lock:
            items = [p for p in self.pipelines.values() if p.project is proj]
        return keyset_page(items, key, descending, top, token, DEFAULT_PAGE)


def _declared(kind: str, parameters: Iterable[str] | None) -> tuple[str, ...] | None:
    """The declared template parameters; a training (scoring) pipeline's include the ones the
    operations loop sends (trigger, signal, portal request, simulated metrics)."""
    if parameters is None:
        return None
    declared = tuple(parameters)
    if kind in ("training", "scoring"):
        declared += tuple(p for p in TRAINING_PARAMETERS if p not in declared)
    return declared


def _folder(folder: str) -> str:
    folder = folder.replace("/", "\\")
    if not folder.startswith("\\"):
        folder = "\\" + folder
    return folder.rstrip("\\") or "\\"


def _tune_stage(
    spec: StageSpec,
    seconds: float | dict[str, float] | None,
    approvers: dict[str, list[Identity | str]] | None,
    timeout_minutes: float | None,
    min_required: int | None,
    execution_order: str | None,
    blocked: dict[str, list[Identity | str]] | None = None,
) -> StageSpec:
    keys = (spec.identifier.lower(), spec.name.lower())
    if isinstance(seconds, int | float):
        spec = replace(spec, seconds=float(seconds))
    elif isinstance(seconds, dict):
        for key, value in seconds.items():
            if key.lower() in keys:
                spec = replace(spec, seconds=float(value))
    for key, people in (approvers or {}).items():
        if key.lower() in keys:
            spec = replace(
                spec,
                approvers=tuple(Identity.user(p) if isinstance(p, str) else p for p in people),
            )
    for key, people in (blocked or {}).items():
        if key.lower() in keys:
            spec = replace(
                spec,
                blocked_approvers=tuple(
                    Identity.user(p) if isinstance(p, str) else p for p in people
                ),
            )
    if spec.has_approval:
        if timeout_minutes is not None:
            spec = replace(spec, timeout_minutes=float(timeout_minutes))
        if min_required is not None:
            spec = replace(spec, min_required_approvers=int(min_required))
        if execution_order is not None:
            spec = replace(spec, execution_order=execution_order)
    return spec
