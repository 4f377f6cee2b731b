"""Is the challenger better than the champion? The model's promotion policy, applied to the
metrics of the versions' training runs, with MLflow's ``MetricThreshold`` semantics: the
challenger must reach ``threshold`` (when set) and beat the champion by at least
``min_absolute_change`` and by ``min_relative_change`` of the champion's value. The numbers
go back with the verdict, so people see by how much, not only pass or fail."""

from __future__ import annotations

import math

from pipelines.selectors import deployments_now
from registry.models import CatalogModel, ModelVersion
from registry.selectors import lower_is_better

from ..models import PromotionPolicy

PROMOTE = "promote"
HOLD = "hold"
NO_METRIC = "no_metric"


def champion_in(
    *,
    catalog_model,
    environment: str,
    challenger_id: int | None,
    target: str = "",
    deployments: dict | None = None,
) -> tuple[ModelVersion | None, str]:
    """The version of ``catalog_model`` running now in ``environment`` (on ``target`` when
    it runs there), other than the challenger: the page's champion and the check's.
    ``deployments``: the model's ``deployments_now``, when the caller read it already."""
    if deployments is None:
        deployments = deployments_now(catalog_model)
    deployments = deployments.get(environment, [])
    candidates = [d for d in deployments if d.version is not None and d.version.pk != challenger_id]
    same_target = [d for d in candidates if target and d.target == target]
    chosen = (same_target or candidates or [None])[0]
    if chosen is None:
        return None, ""
    return chosen.version, chosen.target


def promotion_policy_for(catalog_model: CatalogModel) -> PromotionPolicy | None:
    """The model's own policy, else its team's default, else the default for every team."""
    own = PromotionPolicy.objects.filter(catalog_model=catalog_model).first()
    if own is not None:
        return own
    defaults = {p.team: p for p in PromotionPolicy.objects.filter(catalog_model__isnull=True)}
    return defaults.get(catalog_model.effective_team) or defaults.get("")


def _value(version: ModelVersion | None, metric: str) -> float | None:
    if version is None:
        return None
    raw = (version.metrics or {}).get(metric)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    if math.isnan(raw) or math.isinf(raw):
        return None
    return float(raw)


def evaluate(
    challenger: ModelVersion, champion: ModelVersion | None, policy: PromotionPolicy | None
) -> dict:
    """The comparison as a dict (stored on the episode): the metric, both values, the
    changes, the policy's limits, the verdict and the reasons for it."""
    if policy is None:
        return {
            "verdict": NO_METRIC,
            "reasons": ["No promotion policy names a metric for this model."],
            "challenger_version": challenger.version,
            "champion_version": champion.version if champion else None,
        }
    metric = policy.metric
    greater = (
        policy.greater_is_better
        if policy.greater_is_better is not None
        else not lower_is_better(metric)
    )
    ours, theirs = _value(challenger, metric), _value(champion, metric)
    result = {
        "metric": metric,
        "greater_is_better": greater,
        "challenger_version": challenger.version,
        "champion_version": champion.version if champion else None,
        "challenger": ours,
        "champion": theirs,
        "absolute_change": None,
        "relative_change": None,
        "threshold": policy.threshold,
        "min_absolute_change": policy.min_absolute_change,
        "min_relative_change": policy.min_relative_change,
        "verdict": HOLD,
        "reasons": [],
    }
    reasons = result["reasons"]
    if ours is None:
        result["verdict"] = NO_METRIC
        reasons.append(f"Version {challenger.version} has no {metric} metric.")
        return result
    sign = 1 if greater else -1
    if policy.threshold is not None and sign * (ours - policy.threshold) < 0:
        word = "at least" if greater else "at most"
        reasons.append(f"{metric} {ours:.6g} is not {word} the threshold {policy.threshold:g}.")
    if champion is None:
        if reasons:  # the threshold was missed
            return result
        reasons.append("No champion to beat: the first version that meets the policy.")
        result["verdict"] = PROMOTE
        return result
    if theirs is None:
        reasons.append(f"The champion v{champion.version} has no {metric} metric to beat.")
        result["verdict"] = NO_METRIC
        return result
    improvement = sign * (ours - theirs)
    result["absolute_change"] = ours - theirs
    result["relative_change"] = (ours - theirs) / abs(theirs) if theirs else None
    relative_improvement = improvement / abs(theirs) if theirs else None
    if improvement <= 0:
        reasons.append(
            f"{metric} {ours:.6g} is not better than the champion's {theirs:.6g} "
            f"({'higher' if greater else 'lower'} is better)."
        )
    if improvement < policy.min_absolute_change:
        reasons.append(
            f"Better by {max(improvement, 0):.6g}, less than the minimum "
            f"{policy.min_absolute_change:g}."
        )
    if policy.min_relative_change and (
        relative_improvement is None or relative_improvement < policy.min_relative_change
    ):
        shown = "n/a" if relative_improvement is None else f"{relative_improvement:.2%}"
        reasons.append(
            f"Better by {shown} of the champion's value, less than the minimum "
            f"{policy.min_relative_change:.2%}."
        )
    if reasons:
        result["verdict"] = HOLD
    else:
        result["verdict"] = PROMOTE
        reasons.append(
            f"{metric} {ours:.6g} against {theirs:.6g}: better by {improvement:.6g}"
            + (f" ({relative_improvement:.2%})" if relative_improvement is not None else "")
            + ", within the policy."
        )
    return result
