"""What pipelines add to the registry's pages, through the registry's hook settings.

``REGISTRY_MODEL_PAGE_SECTIONS``, ``REGISTRY_VERSION_PAGE_SECTIONS`` and
``REGISTRY_CATALOG_LIST_ANNOTATORS`` name the functions below (see registry/sections.py): the
registry calls them without importing this app.
"""

from __future__ import annotations

import datetime as dt

from django.urls import reverse

from core.home import HomeCard
from core.roles import Role, user_has_role
from registry.models import CatalogModel, ModelKind, ModelVersion
from registry.sections import ColumnItem, Marker, Section, home_team

from . import selectors, selectors_history
from .models import DeploymentRecord, Environment, PipelineKind
from .templatetags.pipelines_ui import target_label

# Shorter target names for the model list's narrow In QA / In PROD cells (the title says all).
LIST_TARGET_LABELS = {"databricks-job": "Databricks", "databricks_job": "Databricks"}
# Who may queue a training or scoring run from the portal.
TRIGGER_ROLES = (Role.DATA_SCIENTIST, Role.ADMIN)


def can_trigger(user) -> bool:
    return user_has_role(user, *TRIGGER_ROLES)


def trigger_label(pipeline) -> str:
    return "Run scoring" if pipeline.kind == PipelineKind.SCORING else "Run training"


def _runnable(catalog_model: CatalogModel, kinds: list[selectors.KindRuns]) -> list:
    """The model's training / scoring pipelines (from what latest_run_per_kind read)."""
    pipelines = [
        p
        for entry in kinds
        if entry.kind in selectors.PRODUCING_KINDS
        for p in entry.pipelines
        if p.project.enabled
    ]
    first = PipelineKind.SCORING if catalog_model.effective_kind == ModelKind.RULE_BASED else None
    return sorted(pipelines, key=lambda p: (p.kind != first, p.kind, p.name))


def _deployments_now(catalog_model: CatalogModel) -> dict:
    """deployments_now, read once per page: "Deployment now" and the versions table's
    "Deployed" cells are given the same catalog model, and so show the same deployments."""
    if not hasattr(catalog_model, "_pipelines_deployments_now"):
        catalog_model._pipelines_deployments_now = selectors.deployments_now(catalog_model)
    return catalog_model._pipelines_deployments_now


def model_page(request, catalog_model: CatalogModel) -> list[Section]:
    """ "Deployment now" (QA / PROD cards) and "Pipelines" (latest run per kind, Run training)."""
    kinds = selectors.latest_run_per_kind(catalog_model)
    deployments = _deployments_now(catalog_model)
    runnable = _runnable(catalog_model, kinds)
    release = next((k for k in kinds if k.kind == PipelineKind.RELEASE), None)
    releasing = release.run if release and release.run and release.run.is_running else None
    return [
        Section(
            "Deployment now",
            "pipelines/_model_deployments.html",
            {
                "catalog_model": catalog_model,
                "environments": [
                    ("QA", "Quality assurance", "text-bg-primary", deployments["QA"]),
                    ("PROD", "Production", "text-bg-danger", deployments["PROD"]),
                ],
                "has_release_pipeline": release is not None,
                "releasing": releasing,
            },
            order=10,
        ),
        Section(
            "Pipelines",
            "pipelines/_model_pipelines.html",
            {
                "catalog_model": catalog_model,
                "kinds": kinds,
                "runnable": [(p, trigger_label(p)) for p in runnable],
                "can_trigger": can_trigger(request.user),
                "run_requests": selectors.run_requests_recent(catalog_model) if runnable else [],
            },
            order=20,
        ),
        Section(
            "Deployment history",
            "pipelines/_model_history.html",
            {
                "catalog_model": catalog_model,
                "history_lanes": selectors_history.history_summary(catalog_model),
            },
            order=15,
        ),
    ]


def version_page(request, version: ModelVersion) -> list[Section]:
    """The run that trained (or scored) the version and the release runs that deployed it."""
    runs = selectors.runs_for_version(version)
    deploy_rows = []
    for run in runs.deployed_by:
        stages = [s for s in run.stages.all() if s.environment]
        for stage in stages:
            deploy_rows.append((run, stage, selectors.run_deploy_target(run, stage)))
        if not stages:
            deploy_rows.append((run, None, ""))
    scored = any(r.pipeline.kind == PipelineKind.SCORING for r in runs.produced_by)
    return [
        Section(
            "Pipeline runs",
            "pipelines/_version_runs.html",
            {
                "version_runs": runs,
                "version": version,
                "deploy_rows": deploy_rows,
                "produced_label": "Scored by" if scored else "Trained by",
            },
            order=10,
        )
    ]


def _version_url(version: ModelVersion) -> str:
    rm = version.registered_model
    return reverse(
        "registry:version-detail",
        kwargs={"source": rm.source.name, "name": rm.name, "version": version.version},
    )


def _where(deployment) -> tuple[str, str, str]:
    """(target label, its short form for a table cell, "since" in UTC) of a deployment."""
    d = deployment
    where = "" if d.target == selectors.DEFAULT_TARGET else target_label(d.target)
    short = LIST_TARGET_LABELS.get(d.target, where)
    since = d.deployed_at.strftime("%Y-%m-%d %H:%M UTC") if d.deployed_at else "?"
    return where, short, since


def version_deployments(catalog_model, versions: list) -> dict[int, list[ColumnItem]]:
    """The Deployed cell of a model page's versions: "QA · AKS", "PROD · Databricks"...

    The same deployments as the page's "Deployment now" (read once for both), each linked to
    the run that deployed it.
    """
    cells: dict[int, list[ColumnItem]] = {}
    for environment, deployments in _deployments_now(catalog_model).items():
        for d in deployments:
            if d.version is None:
                continue  # "Deployment now" shows it; no row of the table is that version
            where, short, since = _where(d)
            cells.setdefault(d.version.pk, []).append(
                ColumnItem(
                    text=environment + (f" · {short}" if short else ""),
                    url=reverse("pipelines:run-detail", kwargs={"pk": d.run.pk}),
                    title=f"In {environment}{' on ' + where if where else ''} since {since}, "
                    f"deployed by run {d.run.name or d.run.ado_id}",
                )
            )
    return cells


def catalog_deployments(catalog_models: list) -> dict[int, dict[str, list[ColumnItem]]]:
    """The In QA / In PROD cells of a page of the model list, in one query."""
    found = selectors.deployments_for_catalog([m.pk for m in catalog_models])
    cells: dict[int, dict[str, list[ColumnItem]]] = {}
    for pk, environments in found.items():
        row = cells.setdefault(pk, {})
        for environment, deployments in environments.items():
            items = []
            for d in deployments:
                where, short, since = _where(d)
                if d.version is None:
                    # Not in a registry (a rule-based model may never be): the version the
                    # deploying run states, else an honest "unknown version".
                    stated = d.run.stated_version
                    label = f"v{stated}" if stated else "unknown version"
                    items.append(
                        ColumnItem(
                            text=label + (f" · {short}" if short else ""),
                            url=reverse("pipelines:run-detail", kwargs={"pk": d.run.pk}),
                            title=f"Deployed by run {d.run.name or d.run.ado_id}"
                            + (
                                f", which names version {stated} (not registered)"
                                if stated
                                else ", which names no known version"
                            )
                            + f" (since {since})",
                        )
                    )
                    continue
                text = f"v{d.version.version}" + (f" · {short}" if short else "")
                items.append(
                    ColumnItem(
                        text=text,
                        url=_version_url(d.version),
                        title=f"{d.version.registered_model.source.name} "
                        f"v{d.version.version} in {environment}"
                        f"{' on ' + where if where else ''} since {since}",
                    )
                )
            row[environment] = items
    return cells


def _utc(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def version_markers(catalog_model, versions: list) -> dict[int, list[Marker]]:
    """REGISTRY_VERSION_MARKERS: the versions that served in PROD, and those in PROD now.

    From the deployment history (DeploymentRecord), in one query whatever the number of
    versions: a version served in PROD when a PROD record names it; it is in PROD now when it
    is the latest record of its PROD target (a lane: several targets, several versions now).
    """
    wanted = {v.pk for v in versions}
    records = (
        DeploymentRecord.objects.filter(catalog_model=catalog_model, environment=Environment.PROD)
        .order_by("started_at", "pk")
        .values_list("model_version_id", "target", "started_at")
    )
    now: dict[str, tuple[int | None, dt.datetime]] = {}
    served: dict[int, list[tuple[str, dt.datetime]]] = {}
    for version_id, target, started_at in records:
        now[target] = (version_id, started_at)
        if version_id in wanted:
            served.setdefault(version_id, []).append((target, started_at))
    markers: dict[int, list[Marker]] = {}
    for target, (version_id, started_at) in sorted(now.items()):
        if version_id in wanted:
            where = "" if target == selectors.DEFAULT_TARGET else target_label(target)
            short = LIST_TARGET_LABELS.get(target, where)
            markers.setdefault(version_id, []).append(
                Marker(
                    "PROD now" + (f" · {short}" if short else ""),
                    "danger",
                    f"In PROD{' on ' + where if where else ''} since {_utc(started_at)}",
                )
            )
    for version_id, spells in served.items():
        if version_id in markers:
            continue
        first = min(started for _, started in spells)
        markers[version_id] = [
            Marker(
                "served in PROD",
                "secondary",
                f"Served in PROD {len(spells)} time{'s' if len(spells) != 1 else ''}, "
                f"first from {_utc(first)}",
            )
        ]
    return markers


# --- The data scientists' home card (PORTAL_HOME_CARD_PROVIDERS, core/home.py) ---------------


def home_cards(user, held_roles: frozenset[str]) -> list[HomeCard]:
    """ "Running now", for data scientists: the runs of their team's models, or of every model
    while the portal does not know their team."""
    if Role.DATA_SCIENTIST not in held_roles:
        return []
    team = home_team(user)
    if team is None or not team.owns_any:
        runs, total = selectors.runs_in_progress()
        scope = "every team"
        empty = "No pipeline run is running now."
    else:
        runs, total = selectors.runs_in_progress(catalog_ids=list(team.catalog_ids))
        scope = ", ".join(team.teams) or "your models"
        empty = "No pipeline run of your team's models is running now."
    return [
        HomeCard(
            "pipelines-running",
            Role.DATA_SCIENTIST,
            "Running now",
            empty + " Training, scoring and release runs show here while they run.",
            tuple(runs),
            summary={"scope": scope, "total": total} if runs else {},
            link=reverse("pipelines:run-list") + "?state=running",
            link_label="All running pipelines",
            order=20,
        )
    ]
