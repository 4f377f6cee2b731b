"""Helpers that act on a real MLflow server, and read both it and the mirror for comparison."""

from __future__ import annotations

import math
import warnings

from mlflow import MlflowClient

from registry.models import ModelVersion, RegisteredModel


def log_run(client: MlflowClient, experiment: str, metrics: dict, params: dict) -> str:
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(experiment_id)
    for key, value in metrics.items():
        client.log_metric(run.info.run_id, key, value)
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def add_version(client: MlflowClient, name: str, metrics=None, params=None, tags=None) -> int:
    run_id = log_run(client, "portal-tests", metrics or {"auc": 0.8}, params or {"alpha": "0.1"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        version = client.create_model_version(
            name, source=f"runs:/{run_id}/model", run_id=run_id, tags=tags or {}
        )
    return int(version.version)


def upstream_snapshot(client: MlflowClient) -> dict:
    """What the server holds, read independently of the portal's client."""
    models, versions = {}, {}
    token = None
    while True:
        page = client.search_registered_models(max_results=1000, page_token=token)
        for m in page:
            models[m.name] = {
                "description": m.description or "",
                "tags": dict(m.tags),
                "aliases": {a: int(v) for a, v in m.aliases.items()},
                "updated_ms": m.last_updated_timestamp,
            }
        token = page.token
        if not token:
            break
    for name in models:
        for v in client.search_model_versions(f"name = '{name}'", max_results=10000):
            run = client.get_run(v.run_id) if v.run_id else None
            metrics = (
                {k: (x if math.isfinite(x) else None) for k, x in run.data.metrics.items()}
                if run
                else {}
            )
            versions[(name, int(v.version))] = {
                "description": v.description or "",
                "stage": "" if v.current_stage in (None, "None") else v.current_stage,
                "tags": dict(v.tags),
                "aliases": sorted(
                    a for a, n in models[name]["aliases"].items() if n == int(v.version)
                ),
                "run_id": v.run_id or "",
                "metrics": metrics,
                "params": dict(run.data.params) if run else {},
            }
    return {"models": models, "versions": versions}


def mirror_snapshot(source) -> dict:
    """What the mirror shows as live (not deleted) for one source."""
    models = {
        m.name: {
            "description": m.description,
            "tags": m.tags,
            "aliases": {a: int(v) for a, v in m.aliases.items()},
            "updated_ms": m.updated_upstream_ms,
        }
        for m in RegisteredModel.objects.filter(source=source, deleted_upstream_at__isnull=True)
    }
    versions = {
        (v.registered_model.name, v.version): {
            "description": v.description,
            "stage": v.stage,
            "tags": v.tags,
            "aliases": v.aliases,
            "run_id": v.run_id,
            "metrics": v.metrics,
            "params": v.params,
        }
        for v in ModelVersion.objects.filter(
            registered_model__source=source,
            registered_model__deleted_upstream_at__isnull=True,
            deleted_upstream_at__isnull=True,
        ).select_related("registered_model")
    }
    return {"models": models, "versions": versions}
