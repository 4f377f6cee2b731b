"""Approval policies: the effective policy of a model in an environment, and the rules it adds.

``approval_policy_for`` resolves model over team over global over the built-in defaults and says
where each value came from. The rules: about the person (``policy_person_rules``: the QA
approver may not approve PROD, approvers in sequence), added by ``rules.decision_rules`` after
the separation rules; about the version (``policy_gate_rules``: soak time, minimum maturity),
added by ``gates.environment_rules`` so the automated ADO check evaluates them too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q

from pipelines.models import Environment, RunStage

from ..models import (
    HIGH_RISK_MIN_APPROVERS_DEFAULT,
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStatus,
    Decision,
    DecisionStatus,
    ExecutionOrder,
    PolicyScope,
    SoakMode,
)
from .batch_reads import in_batch, read_once
from .refusals import Rule

# What a field is when no scope sets it: nothing ADO's YAML environments do not do already.
POLICY_DEFAULTS = {
    "prod_approver_not_qa_approver": False,
    "execution_order": ExecutionOrder.ANY_ORDER.value,
    "soak_hours": 0.0,
    "soak_mode": SoakMode.WARN.value,
    "signoff_required": False,
    "min_maturity_level": None,
    "high_risk_min_approvers": HIGH_RISK_MIN_APPROVERS_DEFAULT,
}
POLICY_FIELDS = tuple(POLICY_DEFAULTS)
POLICY_LABELS = {
    "prod_approver_not_qa_approver": "PROD approver not the QA approver",
    "execution_order": "Approvers",
    "soak_hours": "Soak time after QA",
    "soak_mode": "Soak mode",
    "signoff_required": "Sign-off after PROD deployment",
    "min_maturity_level": "Minimum maturity",
    "high_risk_min_approvers": "Approvers of a high-risk model (PROD)",
}
DEFAULT_SOURCE = "built-in default"


@dataclass(frozen=True)
class EffectivePolicy:
    """A model's policy in one environment: each value and the scope it came from."""

    environment: str
    values: dict
    sources: dict
    sequence_approvers: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __getattr__(self, name):
        values = self.__dict__.get("values") or {}
        if name in values:
            return values[name]
        raise AttributeError(name)

    def source(self, name: str) -> str:
        return self.sources.get(name, DEFAULT_SOURCE)

    def rows(self) -> list[dict]:
        """The values for a page or the API: name, label, value, shown, source."""
        return [
            {
                "name": n,
                "label": POLICY_LABELS[n],
                "value": self.values[n],
                "shown": _shown(n, self),
                "source": self.source(n),
            }
            for n in POLICY_FIELDS
        ]


def _shown(name: str, policy: EffectivePolicy) -> str:
    value = policy.values[name]
    if name == "execution_order":
        if value == ExecutionOrder.IN_SEQUENCE:
            return "in sequence: " + ", then ".join(policy.sequence_approvers)
        return "any order"
    if name == "soak_hours":
        return f"{hours_text(value)} ({policy.values['soak_mode']})" if value else "none"
    if name == "min_maturity_level":
        return f"level {value}" if value else "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def hours_text(hours: float) -> str:
    return f"{hours:.1f} h".replace(".0 h", " h")


def _scope_rank(policy: ApprovalPolicy) -> int:
    return {PolicyScope.GLOBAL: 0, PolicyScope.TEAM: 1, PolicyScope.MODEL: 2}[policy.scope]


def _policy_applies(policy: ApprovalPolicy, *, catalog_model, team: str) -> bool:
    """In Python, what ``approval_policy_for``'s query matches."""
    if policy.scope == PolicyScope.GLOBAL:
        return True
    if policy.scope == PolicyScope.TEAM:
        return bool(team) and policy.team == team
    return catalog_model is not None and policy.catalog_model_id == catalog_model.pk


def approval_policy_for(*, catalog_model, environment: str) -> EffectivePolicy:
    """The effective policy (one query): each field from the narrowest scope that sets it."""
    match = Q(scope=PolicyScope.GLOBAL)
    team = catalog_model.effective_team if catalog_model is not None else ""
    if team:
        match |= Q(scope=PolicyScope.TEAM, team=team)
    if catalog_model is not None:
        match |= Q(scope=PolicyScope.MODEL, catalog_model=catalog_model)
    if in_batch():  # every policy of the environment, read once for the batch
        candidates = [
            p
            for p in read_once(
                ("approval_policies", environment),
                lambda: list(
                    ApprovalPolicy.objects.filter(environment=environment).select_related(
                        "catalog_model"
                    )
                ),
            )
            if _policy_applies(p, catalog_model=catalog_model, team=team)
        ]
    else:
        candidates = ApprovalPolicy.objects.filter(match, environment=environment).select_related(
            "catalog_model"
        )
    found = sorted(candidates, key=_scope_rank, reverse=True)
    values, sources, approvers = dict(POLICY_DEFAULTS), {}, ()
    for name in POLICY_FIELDS:
        for policy in found:
            value = getattr(policy, name)
            if value is None or value == "":
                continue
            values[name] = value
            sources[name] = policy.scope_label
            if name == "execution_order":
                approvers = tuple(policy.sequence_approvers or ())
            break
    return EffectivePolicy(
        environment=environment,
        values=values,
        sources=sources,
        sequence_approvers=approvers,
        notes=tuple(p.note for p in found if p.note),
    )


# --- Rules about the person ------------------------------------------------------------------


def policy_person_rules(
    *, approval: ApprovalRequest, user, identities: set[str], policy: EffectivePolicy
) -> list[Rule]:
    """The policy's rules about who decides: the QA approver at PROD, the sequence."""
    rules = []
    if approval.environment == Environment.PROD and policy.prod_approver_not_qa_approver:
        rules.append(qa_approver_rule(approval=approval, user=user, identities=identities))
    if policy.execution_order == ExecutionOrder.IN_SEQUENCE and policy.sequence_approvers:
        rules.append(sequence_rule(approval=approval, identities=identities, policy=policy))
    if approval.high_risk_rule_applies:
        rules.append(high_risk_rule(approval))
    return rules


def high_risk_rule(approval: ApprovalRequest) -> Rule:
    """Met, and said: a high-risk model's PROD approval closes at the portal's number."""
    required = approval.required_approvers
    so_far = approval.approvals_counted
    return Rule(
        "high_risk_two_approvers",
        True,
        f"The model card rates this model high risk, so PROD needs {required} distinct "
        f"approvals ({so_far} of {required} so far): the first is held, not sent to Azure "
        "DevOps, until the last arrives.",
        values={"required": required, "approvals_so_far": so_far},
    )


def _qa_approvals(approval: ApprovalRequest):
    """The QA approvals of the same version (unregistered: of the same run)."""
    qa = ApprovalRequest.objects.filter(environment=Environment.QA)
    if approval.model_version_id:
        return qa.filter(model_version_id=approval.model_version_id)
    if approval.run_id:
        return qa.filter(run_id=approval.run_id)
    return qa.none()


def qa_approved_by(*, approval: ApprovalRequest, user, identities: set[str]) -> bool:
    """Did this person approve QA of the same version: in the portal, or in ADO itself."""
    qa = _qa_approvals(approval)
    if Decision.objects.filter(approval__in=qa, user=user, status=DecisionStatus.APPROVED).exists():
        return True
    for steps in qa.filter(decided_in="ado").values_list("steps", flat=True):
        for step in steps or []:
            actual = (step.get("actual") or {}) if isinstance(step, dict) else {}
            if step.get("status") == ApprovalStatus.APPROVED and (
                str(actual.get("unique_name") or "").lower() in identities
            ):
                return True
    return False


def qa_approver_rule(*, approval: ApprovalRequest, user, identities: set[str]) -> Rule:
    version = approval.version_label or "this version"
    if qa_approved_by(approval=approval, user=user, identities=identities):
        return Rule(
            "qa_approver",
            False,
            f"You approved QA of {version}; the policy needs a different approver for PROD.",
        )
    return Rule("qa_approver", True, f"You did not approve QA of {version}.")


def sequence_rule(*, approval: ApprovalRequest, identities: set[str], policy) -> Rule:
    """In sequence: the named approvers decide in order; only the next one may decide now."""
    named = [a.strip() for a in policy.sequence_approvers]
    done = set()
    for decision in approval.decisions.select_related("user"):
        done |= {decision.user.get_username().lower(), (decision.user.email or "").lower()}
    waiting = [a for a in named if a.lower() not in done]
    if not waiting:
        return Rule("sequence", True, "Every named approver has decided, in order.")
    if waiting[0].lower() in identities:
        return Rule("sequence", True, f"In sequence: you are next ({', then '.join(named)}).")
    if not any(a.lower() in identities for a in named):
        return Rule(
            "sequence",
            False,
            f"The policy names the approvers, in order: {', then '.join(named)}; "
            "you are not one of them.",
        )
    return Rule("sequence", False, f"In sequence: waiting for {', then '.join(waiting)}.")


# --- Gates: about the version, not the person --------------------------------------------------

_maturity_level_sources: list[Callable] = []


def register_maturity_level_source(fn: Callable) -> None:
    """The maturity app (above approvals) tells how to read a model's current level:
    ``fn(catalog_model) -> int | None``, registered from its AppConfig.ready()."""
    if fn not in _maturity_level_sources:
        _maturity_level_sources.append(fn)


def maturity_level_of(catalog_model) -> int | None:
    for source in _maturity_level_sources:
        level = source(catalog_model)
        if level is not None:
            return level
    return None


def policy_gate_rules(
    *,
    catalog_model,
    model_version,
    run,
    environment: str,
    now: datetime,
    policy: EffectivePolicy | None = None,
) -> list[Rule]:
    """The policy's gates on promoting this version to ``environment`` now (``policy``: the
    effective one, when the caller resolved it already)."""
    if policy is None:
        policy = approval_policy_for(catalog_model=catalog_model, environment=environment)
    rules = []
    if environment == Environment.PROD and policy.soak_hours:
        rules.append(soak_rule(model_version=model_version, run=run, policy=policy, now=now))
    if policy.min_maturity_level:
        rules.append(maturity_rule(catalog_model=catalog_model, policy=policy))
    return rules


def qa_deployed_at(*, model_version, run) -> datetime | None:
    """When QA last deployed this version (unregistered: this run): its QA stage's finish."""
    stages = RunStage.objects.filter(
        environment=Environment.QA, result="succeeded", finished_at__isnull=False
    )
    if model_version is not None:
        stages = stages.filter(run__model_version=model_version)
    elif run is not None:
        stages = stages.filter(run=run)
    else:
        return None
    return stages.order_by("-finished_at").values_list("finished_at", flat=True).first()


def soak_rule(*, model_version, run, policy: EffectivePolicy, now: datetime) -> Rule:
    """Time in QA before a PROD approval: "in QA for 3 h, policy 24 h; ends at ..."."""
    hours = float(policy.soak_hours)
    block = policy.soak_mode == SoakMode.BLOCK
    needed = f"policy {hours_text(hours)}"
    since = qa_deployed_at(model_version=model_version, run=run)
    if since is None:
        message = f"Not deployed to QA yet, so no soak time ({needed})."
        return Rule("soak_time", not block, message, warning=not block)
    ends = since + timedelta(hours=hours)
    spent = hours_text(max((now - since).total_seconds(), 0) / 3600)
    if now >= ends:
        return Rule("soak_time", True, f"In QA for {spent}, {needed}.")
    message = f"In QA for {spent}, {needed}; soak time ends at {ends:%Y-%m-%d %H:%M} UTC."
    return Rule("soak_time", not block, message, warning=not block, until=ends)


def maturity_rule(*, catalog_model, policy: EffectivePolicy) -> Rule:
    needed = int(policy.min_maturity_level)
    level = maturity_level_of(catalog_model) if catalog_model is not None else None
    if level is None:
        return Rule(
            "min_maturity",
            False,
            f"The policy needs maturity level {needed}; this model has no assessed level.",
        )
    if level < needed:
        return Rule(
            "min_maturity",
            False,
            f"Maturity level {level}; the policy needs at least level {needed}.",
        )
    return Rule("min_maturity", True, f"Maturity level {level}, at least level {needed}.")
