"""The evidence on an approval's page: the challenger's metrics against the champion running
in that environment, QA's outcome before PROD, lineage, the registry's aliases, and for a
rule-based model what its release changes (the scoring runs of both versions)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Case, F, Q, When

from pipelines.models import Environment, PipelineKind, PipelineRun, RunStage
from pipelines.selectors import deployments_now
from registry.models import ModelVersion
from registry.selectors import lower_is_better

from ..models import ApprovalRequest
from ..services.promotion import champion_in


@dataclass(frozen=True)
class MetricDelta:
    name: str
    challenger: float | str | None
    champion: float | str | None
    delta: float | None
    lower_is_better: bool
    verdict: str  # better | worse | same | "" (cannot compare)


@dataclass
class Evidence:
    challenger: ModelVersion | None
    champion: ModelVersion | None
    champion_target: str = ""
    metrics: list[MetricDelta] = field(default_factory=list)
    qa_stage: RunStage | None = None  # PROD: the QA stage that deployed the same version
    qa_approval: ApprovalRequest | None = None  # PROD: the QA approval of the same version
    scoring_runs: list[PipelineRun] = field(default_factory=list)  # unregistered models
    training_run: PipelineRun | None = None
    lineage_tags: dict = field(default_factory=dict)
    registry_aliases: list[tuple[str, int]] = field(default_factory=list)  # (alias, version)
    warnings: list[str] = field(default_factory=list)  # the candidate is older than...
    rule_changes: RuleChanges | None = None  # rule-based models: their scoring run's change

    @property
    def registry_champion(self) -> int | None:
        return dict(self.registry_aliases).get(CHAMPION_ALIAS)

    @property
    def has_comparison(self) -> bool:
        return bool(self.metrics)


CHAMPION_ALIAS = "champion"


@dataclass(frozen=True)
class ParamChange:
    name: str
    candidate: str | None
    current: str | None

    @property
    def changed(self) -> bool:
        return self.candidate != self.current


@dataclass
class RuleChanges:
    """A rule-based model's version asking to go, against the one running in that
    environment now: the scoring runs that made each (commit, parameters, result)."""

    candidate_version: str
    current_version: str  # "" when nothing runs there yet
    current_target: str
    candidate_run: PipelineRun | None
    current_run: PipelineRun | None
    params: list[ParamChange] = field(default_factory=list)
    deployed: list[tuple[str, str, str]] = field(default_factory=list)  # (env, version, target)

    @property
    def commit_changed(self) -> bool:
        return bool(self.candidate_run and self.current_run) and (
            self.candidate_run.source_version != self.current_run.source_version
        )


# Run parameters that say which model and version a run is about, not how it scores.
IDENTIFYING_PARAMETERS = frozenset({"modelName", "modelVersion"})
SCORING_RUNS_LOOKED_AT = 50

LINEAGE_TAG_PREFIXES = ("data", "dataset", "training_data", "source", "git", "feature")


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN is not comparable


def metric_deltas(challenger: ModelVersion, champion: ModelVersion | None) -> list[MetricDelta]:
    """Each metric of the challenger against the champion, marked per metric direction."""
    names = sorted(set(challenger.metrics) | set(champion.metrics if champion else {}))
    rows = []
    for name in names:
        new = challenger.metrics.get(name)
        old = champion.metrics.get(name) if champion else None
        a, b = _number(new), _number(old)
        lower = lower_is_better(name)
        delta = verdict = None
        if a is not None and b is not None:
            delta = a - b
            if abs(delta) < 1e-12:
                verdict = "same"
            else:
                verdict = "better" if (delta < 0) == lower else "worse"
        rows.append(MetricDelta(name, new, old, delta, lower, verdict or ""))
    return rows


def champion_for(
    approval: ApprovalRequest, *, deployments: dict | None = None
) -> tuple[ModelVersion | None, str]:
    """The version running now in the approval's environment (same target when it can
    tell), other than the one asking to go there. ``deployments``: the model's
    ``deployments_now``, when the caller read it already (several approvals at once)."""
    if not approval.catalog_model_id or not approval.environment:
        return None, ""
    return champion_in(
        catalog_model=approval.catalog_model,
        environment=approval.environment,
        challenger_id=approval.model_version_id,
        target=(approval.run.parameters.get("deployTarget") if approval.run else "") or "",
        deployments=deployments,
    )


def qa_stage_order() -> tuple:
    """Which QA stage is a version's QA outcome: one that succeeded beats a newer one still
    waiting or one that failed; then the latest."""
    return (
        Case(When(result="succeeded", then=0), default=1),
        F("finished_at").desc(nulls_last=True),
        "-pk",
    )


def approval_evidence(approval: ApprovalRequest) -> Evidence:
    challenger = approval.model_version
    champion, target = champion_for(approval)
    evidence = Evidence(challenger=challenger, champion=champion, champion_target=target)
    if challenger is not None:
        evidence.metrics = metric_deltas(challenger, champion)
        evidence.lineage_tags = {
            k: v
            for k, v in sorted({**challenger.run_tags, **challenger.tags}.items())
            if k.lower().startswith(LINEAGE_TAG_PREFIXES)
        }
        evidence.training_run = (
            PipelineRun.objects.filter(
                model_version=challenger,
                pipeline__kind__in=(PipelineKind.TRAINING, PipelineKind.SCORING),
            )
            .select_related("pipeline")
            .order_by("-queued_at")
            .first()
        )
        evidence.registry_aliases = _registry_aliases(challenger)
        evidence.warnings = _older_warnings(approval, challenger, champion, evidence)
    elif approval.catalog_model_id:
        evidence.rule_changes = rule_changes(approval)
        evidence.scoring_runs = list(
            PipelineRun.objects.filter(
                pipeline__catalog_model_id=approval.catalog_model_id,
                pipeline__kind=PipelineKind.SCORING,
            )
            .select_related("pipeline")
            .order_by("-queued_at")[:5]
        )
    if approval.environment == Environment.PROD:
        qa = RunStage.objects.filter(environment=Environment.QA).select_related("run__pipeline")
        if challenger is not None:
            qa = qa.filter(Q(run__model_version=challenger) | Q(run_id=approval.run_id))
        elif approval.run_id:
            qa = qa.filter(run_id=approval.run_id)
        else:
            qa = qa.none()
        evidence.qa_stage = qa.order_by(*qa_stage_order()).first()
        qa_approvals = ApprovalRequest.objects.filter(environment=Environment.QA)
        if challenger is not None:
            qa_approvals = qa_approvals.filter(model_version=challenger)
        elif approval.run_id:
            qa_approvals = qa_approvals.filter(run_id=approval.run_id)
        else:
            qa_approvals = qa_approvals.none()
        evidence.qa_approval = qa_approvals.order_by("-created_on").first()
    return evidence


def _registry_aliases(version: ModelVersion) -> list[tuple[str, int]]:
    """The registered model's aliases (champion first), as the registry has them now."""
    aliases = []
    for alias, number in (version.registered_model.aliases or {}).items():
        try:
            aliases.append((str(alias), int(number)))
        except (TypeError, ValueError):
            continue
    return sorted(aliases, key=lambda a: (a[0] != CHAMPION_ALIAS, a[0]))


def _older_warnings(approval, challenger, champion, evidence: Evidence) -> list[str]:
    warnings = []
    env = approval.environment or "the environment"
    if champion is not None and challenger.version < champion.version:
        warnings.append(
            f"v{challenger.version} is older than v{champion.version}, which already runs in "
            f"{env}: approving rolls {env} back."
        )
    alias_champion = evidence.registry_champion
    if alias_champion is not None and challenger.version < alias_champion:
        warnings.append(
            f"v{challenger.version} is older than v{alias_champion}, the registry's "
            f"@{CHAMPION_ALIAS}: check that this is the version meant."
        )
    return warnings


def rule_changes(approval: ApprovalRequest) -> RuleChanges | None:
    """What a rule-based model's release changes: the scoring run of the version it deploys
    (the release run's ``modelVersion``) against the scoring run of the version running in
    the same environment now, and what runs in each environment."""
    candidate = approval.run.stated_version if approval.run else ""
    deployments = deployments_now(approval.catalog_model)
    target = (approval.run.parameters.get("deployTarget") if approval.run else "") or ""
    running = [
        d
        for d in deployments.get(approval.environment, [])
        if d.run.pk != approval.run_id and d.run.stated_version
    ]
    now = ([d for d in running if target and d.target == target] or running or [None])[0]
    current = now.run.stated_version if now else ""
    scoring = list(
        PipelineRun.objects.filter(
            pipeline__catalog_model_id=approval.catalog_model_id,
            pipeline__kind=PipelineKind.SCORING,
        )
        .select_related("pipeline")
        .order_by("-queued_at", "-pk")[:SCORING_RUNS_LOOKED_AT]
    )

    def scored(version: str) -> PipelineRun | None:
        return next((r for r in scoring if version and r.stated_version == version), None)

    changes = RuleChanges(
        candidate_version=candidate,
        current_version=current,
        current_target=now.target if now else "",
        candidate_run=scored(candidate),
        current_run=scored(current),
    )
    new = (changes.candidate_run.parameters if changes.candidate_run else None) or {}
    old = (changes.current_run.parameters if changes.current_run else None) or {}
    changes.params = [
        ParamChange(
            name,
            None if new.get(name) is None else str(new[name]),
            None if old.get(name) is None else str(old[name]),
        )
        for name in sorted((set(new) | set(old)) - IDENTIFYING_PARAMETERS)
    ]
    for env in (Environment.QA, Environment.PROD):
        for d in deployments.get(env, []):
            if d.run.stated_version:
                changes.deployed.append((env, d.run.stated_version, d.target))
        if not any(e == env for e, *_ in changes.deployed):
            changes.deployed.append((env, "", ""))
    return changes
