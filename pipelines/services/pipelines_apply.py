"""A sync's pipelines step: read the project's pipelines, recognise each one's kind and model
from the naming convention (docs/pipelines.md), write only the differences."""

from __future__ import annotations

import re

from django.utils import timezone

from core.sync import values_assign
from registry.models import CatalogModel

from ..client import AdoClient, AdoNotFound
from ..models import Pipeline, PipelineKind
from .common import SyncResult

KIND_SUFFIXES = [
    ("data-cleansing", PipelineKind.DATA_CLEANSING),
    ("data_cleansing", PipelineKind.DATA_CLEANSING),
    ("cleanse", PipelineKind.DATA_CLEANSING),
    ("training", PipelineKind.TRAINING),
    ("train", PipelineKind.TRAINING),
    ("scoring", PipelineKind.SCORING),
    ("score", PipelineKind.SCORING),
    ("release", PipelineKind.RELEASE),
    ("deploy", PipelineKind.RELEASE),
    ("ci", PipelineKind.CI),
]


def pipeline_kind_and_model(
    name: str, folder: str, model_names: set[str]
) -> tuple[str, str | None]:
    """Recognise a pipeline's kind and model from the naming convention (docs/pipelines.md)."""
    lowered = name.lower()
    kind, stem = PipelineKind.OTHER, lowered
    for suffix, candidate in KIND_SUFFIXES:
        if lowered.endswith(f"-{suffix}") or lowered.endswith(f"_{suffix}"):
            kind, stem = candidate, name[: -len(suffix) - 1]
            break
    parts = [p for p in re.split(r"[\\/]", folder or "") if p]
    if parts and parts[-1] in model_names:
        return kind, parts[-1]
    # <team>-<model>: try the longest tail of the stem that names a catalog model.
    pieces = stem.split("-")
    for start in range(len(pieces)):
        candidate = "-".join(pieces[start:])
        if candidate in model_names:
            return kind, candidate
    return kind, None


def pipelines_known(project) -> dict[int, Pipeline]:
    """The mirror's pipelines of the project, by ADO id."""
    return {p.ado_id: p for p in Pipeline.objects.filter(project=project)}


def pipelines_sync(project, client: AdoClient, result: SyncResult) -> dict[int, Pipeline]:
    """Read every pipeline of the project and write the differences; the mirror's, by id."""
    existing = pipelines_known(project)
    _upsert_pipelines(project, list(client.list_pipelines()), existing, result)
    return existing


def pipelines_ensure(
    project, client: AdoClient, builds: list[dict], pipelines: dict[int, Pipeline], result
) -> dict[int, Pipeline]:
    """Builds of a pipeline the mirror has not seen yet (created since the list was read)."""
    missing = {b["definition"]["id"] for b in builds} - set(pipelines)
    upstream = []
    for pipeline_id in sorted(missing):
        try:
            upstream.append(client.get_pipeline(pipeline_id))
        except AdoNotFound:
            upstream.append(
                {"id": pipeline_id, "name": _definition_name(builds, pipeline_id), "folder": ""}
            )
    if upstream:
        _upsert_pipelines(project, upstream, pipelines, result)
    return pipelines


def _definition_name(builds, pipeline_id) -> str:
    return next(
        b["definition"].get("name", "") for b in builds if b["definition"]["id"] == pipeline_id
    )


def _upsert_pipelines(project, upstream: list[dict], existing: dict[int, Pipeline], result) -> None:
    now = timezone.now()
    catalog = dict(CatalogModel.objects.values_list("name", "pk"))
    new, changed = [], []
    for item in upstream:
        kind, model_name = pipeline_kind_and_model(
            item.get("name", ""), item.get("folder", ""), set(catalog)
        )
        values = {
            "name": item.get("name", "")[:300],
            "folder": (item.get("folder") or "")[:500],
            "web_url": (((item.get("_links") or {}).get("web") or {}).get("href") or "")[:500],
        }
        pipeline = existing.get(item["id"])
        if pipeline is None:
            pipeline = Pipeline(
                project=project,
                ado_id=item["id"],
                kind=kind,
                catalog_model_id=catalog.get(model_name) if model_name else None,
                last_synced_at=now,
                **values,
            )
            new.append(pipeline)
            existing[item["id"]] = pipeline
            result.pipelines.created += 1
            continue
        if not pipeline.kind_set_by_hand:
            values["kind"] = kind
            values["catalog_model_id"] = (
                catalog.get(model_name) if model_name else pipeline.catalog_model_id
            )
        if values_assign(pipeline, values):
            changed.append(pipeline)
            result.pipelines.updated += 1
        else:
            result.pipelines.unchanged += 1
    Pipeline.objects.bulk_create(new, batch_size=500)
    Pipeline.objects.bulk_update(
        changed, ["name", "folder", "web_url", "kind", "catalog_model_id"], batch_size=500
    )
