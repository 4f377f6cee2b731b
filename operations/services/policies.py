"""Which trigger policy applies to a model, and which pipeline it starts."""

from __future__ import annotations

from pipelines.models import Pipeline, PipelineKind
from registry.models import CatalogModel, ModelKind

from ..models import EpisodeKind, TriggerPolicy
from . import config_cache


def _all_policies() -> tuple[dict, dict]:
    """(model id -> own policy, (team, kind) -> default policy), every row."""
    own, defaults = {}, {}
    for policy in TriggerPolicy.objects.select_related("catalog_model"):
        if policy.catalog_model_id:
            own[policy.catalog_model_id] = policy
        else:
            defaults[(policy.team, policy.model_kind)] = policy
    return own, defaults


def policy_for(catalog_model: CatalogModel) -> TriggerPolicy:
    """The model's own policy, else the most specific default (team and kind, team, kind,
    any), else the built-in default (unsaved: ``pk`` is None), which asks for a confirmation.

    Read from this process's copy of the policies (config_cache): treat it as read-only."""
    own, defaults = config_cache.cached("policies", _all_policies)
    if catalog_model.pk in own:
        return own[catalog_model.pk]
    team, kind = catalog_model.effective_team, catalog_model.effective_kind
    for key in ((team, kind), (team, ""), ("", kind), ("", "")):
        if key in defaults:
            return defaults[key]
    return TriggerPolicy()


def is_rule_based(catalog_model: CatalogModel) -> bool:
    return catalog_model.effective_kind == ModelKind.RULE_BASED


def episode_kind(catalog_model: CatalogModel) -> str:
    return EpisodeKind.RESCORE if is_rule_based(catalog_model) else EpisodeKind.RETRAIN


def _model_pipeline(catalog_model: CatalogModel, kind: str) -> Pipeline | None:
    return (
        Pipeline.objects.filter(
            catalog_model=catalog_model,
            kind=kind,
            deleted_upstream_at__isnull=True,
            project__enabled=True,
        )
        .select_related("project", "catalog_model")
        .order_by("name", "pk")
        .first()
    )


def _named_pipeline(pipeline_id: int | None) -> Pipeline | None:
    """The pipeline a policy names, read now (the policy may be a cached copy), if live."""
    if not pipeline_id:
        return None
    return (
        Pipeline.objects.filter(pk=pipeline_id, deleted_upstream_at__isnull=True)
        .select_related("project", "catalog_model")
        .first()
    )


def pipeline_for(catalog_model: CatalogModel, policy: TriggerPolicy) -> Pipeline | None:
    """The policy's pipeline, else the model's training pipeline (scoring, rule-based)."""
    named = _named_pipeline(policy.pipeline_id)
    if named is not None:
        return named
    kind = PipelineKind.SCORING if is_rule_based(catalog_model) else PipelineKind.TRAINING
    return _model_pipeline(catalog_model, kind)


def release_pipeline_for(catalog_model: CatalogModel, policy: TriggerPolicy) -> Pipeline | None:
    named = _named_pipeline(policy.release_pipeline_id)
    if named is not None:
        return named
    return _model_pipeline(catalog_model, PipelineKind.RELEASE)


def policy_snapshot(policy: TriggerPolicy) -> dict:
    """The policy as it applied, kept on the episode (a later edit does not rewrite it)."""
    return {
        "id": policy.pk,
        "scope": str(policy) if policy.pk else "Built-in default",
        "mode": policy.mode,
        "signal_kinds": list(policy.signal_kinds or []),
        "min_severity": policy.min_severity,
        "cooldown_minutes": policy.cooldown_minutes,
        "dedupe_window_minutes": policy.dedupe_window_minutes,
        "max_runs_per_day": policy.max_runs_per_day,
        "business_hours_only": policy.business_hours_only,
        "business_hours": [
            policy.business_hours_start.isoformat("minutes"),
            policy.business_hours_end.isoformat("minutes"),
            list(policy.business_days or []),
            policy.timezone,
        ],
        "release_on_promote": policy.release_on_promote,
        "release_after_scoring": policy.release_after_scoring,
        "proposal_expiry_hours": policy.proposal_expiry_hours,
    }
