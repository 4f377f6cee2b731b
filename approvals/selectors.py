"""Read queries shared by this app's views, API, home cards and the pages of other apps."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, Count, Exists, F, OuterRef, Q, QuerySet, When
from django.urls import reverse
from django.utils import timezone

from core.sync import SyncStatus
from pipelines.models import AdoProject, Environment, PipelineKind, PipelineRun, RunStage
from registry.models import ModelVersion
from registry.selectors import lower_is_better

from .models import (
    OPEN_STATUSES,
    ApprovalRequest,
    ApprovalSync,
    AuditEvent,
    Decision,
    DecisionStatus,
    OutboxMessage,
    OutboxState,
)


def sync_status_list() -> list[SyncStatus]:
    """One SyncStatus per enabled ADO project's approvals poll (for /readyz and /metrics)."""
    return [
        SyncStatus(
            name=f"approvals:{state.project.name}",
            last_success_at=state.last_succeeded_at,
            last_error_at=state.last_error_at,
            last_error=state.last_error,
            system="Azure DevOps",
            admin_url=reverse("admin:pipelines_adoproject_change", args=[state.project_id]),
        )
        for state in ApprovalSync.objects.filter(project__enabled=True).select_related("project")
    ]


def approvals_as_of() -> datetime | None:
    """The oldest last successful approvals poll among enabled projects (the "as of" note)."""
    times = [s.last_success_at for s in sync_status_list()]
    if not times or any(t is None for t in times):
        return None
    return min(times)


# --- Inbox -----------------------------------------------------------------------------------

TABS = ("pending", "decided")
AGE_CHOICES = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}
SORTS = {
    "waiting": ("created_on", "pk"),
    "-waiting": ("-created_on", "-pk"),
    "model": ("catalog_model__name", "created_on"),
    "-model": ("-catalog_model__name", "created_on"),
    "environment": ("environment", "created_on"),
    "-environment": ("-environment", "created_on"),
    "decided": ("-decided_at", "-pk"),
    "-decided": ("decided_at", "pk"),
}


@dataclass(frozen=True)
class ApprovalFilters:
    tab: str = "pending"  # pending | decided
    environment: str = ""  # QA | PROD
    model: str = ""  # catalog model name
    team: str = ""
    overdue: bool = False
    older_than: str = ""  # a key of AGE_CHOICES
    status: str = ""  # decided tab: approved | rejected | canceled | timedOut | skipped
    q: str = ""
    sort: str = ""

    @property
    def effective_sort(self) -> str:
        if self.sort in SORTS:
            return self.sort
        return "waiting" if self.tab == "pending" else "decided"


def overdue_cutoff() -> datetime:
    return timezone.now() - timedelta(hours=settings.APPROVALS_OVERDUE_HOURS)


def _base() -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.select_related(
        "catalog_model",
        "model_version__registered_model__source",
        "run__pipeline",
        "project",
    ).annotate(
        approvals_so_far=Count("decisions", filter=Q(decisions__status=DecisionStatus.APPROVED))
    )


def approval_list(*, filters: ApprovalFilters) -> QuerySet[ApprovalRequest]:
    """The inbox rows for one tab, filtered and sorted; PROD rows are marked by the page."""
    qs = _filtered(_base(), filters, with_tab=True)
    return qs.order_by(*SORTS[filters.effective_sort])


def _filtered(qs, filters: ApprovalFilters, *, with_tab: bool):
    if with_tab:
        if filters.tab == "decided":
            qs = qs.exclude(status__in=OPEN_STATUSES)
            if filters.status:
                qs = qs.filter(status=filters.status)
        else:
            qs = qs.filter(status__in=OPEN_STATUSES)
    if filters.environment in Environment.values and filters.environment:
        qs = qs.filter(environment=filters.environment)
    if filters.model:
        qs = qs.filter(catalog_model__name=filters.model)
    if filters.team:
        qs = qs.filter(
            Q(catalog_model__team=filters.team)
            | Q(catalog_model__team="", catalog_model__registry_team=filters.team)
        )
    if filters.overdue:
        qs = qs.filter(status__in=OPEN_STATUSES, created_on__lt=overdue_cutoff())
    if filters.older_than in AGE_CHOICES:
        qs = qs.filter(created_on__lt=timezone.now() - AGE_CHOICES[filters.older_than])
    if filters.q:
        qs = qs.filter(
            Q(catalog_model__name__icontains=filters.q)
            | Q(pipeline_name__icontains=filters.q)
            | Q(run_name__icontains=filters.q)
            | Q(requested_by__icontains=filters.q)
        )
    return qs


def approval_tab_counts(*, filters: ApprovalFilters) -> dict[str, int]:
    """Rows in each tab under the same filters (the tab badges)."""
    qs = _filtered(ApprovalRequest.objects.all(), filters, with_tab=False)
    open_q = Q(status__in=OPEN_STATUSES)
    counts = qs.aggregate(pending=Count("pk", filter=open_q), decided=Count("pk", filter=~open_q))
    return {"pending": counts["pending"] or 0, "decided": counts["decided"] or 0}


def pending_count() -> int:
    """Open approval requests (the navigation badge)."""
    return ApprovalRequest.objects.filter(status__in=OPEN_STATUSES).count()


def model_choices() -> list[str]:
    return list(
        ApprovalRequest.objects.exclude(catalog_model=None)
        .values_list("catalog_model__name", flat=True)
        .distinct()
        .order_by("catalog_model__name")
    )


def team_choices() -> list[str]:
    teams = set()
    for team, registry_team in ApprovalRequest.objects.exclude(catalog_model=None).values_list(
        "catalog_model__team", "catalog_model__registry_team"
    ):
        if team or registry_team:
            teams.add(team or registry_team)
    return sorted(teams, key=str.lower)


def approval_get(*, pk: int) -> ApprovalRequest:
    return _base().select_related("stage").get(pk=pk)


def is_overdue(approval: ApprovalRequest) -> bool:
    return approval.is_open and approval.created_on < overdue_cutoff()


# --- Detail: whom Azure DevOps records a decision as --------------------------------------------


@dataclass(frozen=True)
class DecisionSender:
    """Whom Azure DevOps records a person's decision as: their own delegated Entra identity,
    or the portal's service identity (PAT or service principal) with their name in the
    comment. ``name`` is "" when the portal has not yet learnt its own name in ADO."""

    own_identity: bool
    name: str


def portal_identity_name(project_id: int | None) -> str:
    """The name ADO records the portal's own identity under in this project: what ADO showed
    at the portal's last delivery there (what it really recorded), else, before any delivery,
    the identity the project's sync read from ADO's connectionData (``service_identity``)."""
    outcome = (
        OutboxMessage.objects.filter(approval__project_id=project_id, state=OutboxState.DELIVERED)
        .exclude(ado_outcome__identity="user")
        .order_by("-delivered_at", "-pk")
        .values_list("ado_outcome", flat=True)
        .first()
    )
    delivered_as = str((outcome or {}).get("actual_approver") or "")
    if delivered_as or project_id is None:
        return delivered_as
    recorded = (
        AdoProject.objects.filter(pk=project_id).values_list("service_identity", flat=True).first()
    )
    return recorded or ""


def decision_sender(user, approval: ApprovalRequest) -> DecisionSender:
    from .services import delivers_with_portal_identity

    if not delivers_with_portal_identity(user):
        account = getattr(user, "entra_account", None)
        name = getattr(account, "preferred_username", "") or getattr(user, "email", "")
        return DecisionSender(own_identity=True, name=name)
    return DecisionSender(own_identity=False, name=portal_identity_name(approval.project_id))


# --- Detail: the evidence ----------------------------------------------------------------------


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


def champion_for(approval: ApprovalRequest) -> tuple[ModelVersion | None, str]:
    """The version running now in the approval's environment (same target when it can
    tell), other than the one asking to go there."""
    if not approval.catalog_model_id or not approval.environment:
        return None, ""
    from pipelines.selectors import deployments_now

    deployments = deployments_now(approval.catalog_model).get(approval.environment, [])
    target = (approval.run.parameters.get("deployTarget") if approval.run else "") or ""
    candidates = [
        d
        for d in deployments
        if d.version is not None and d.version.pk != approval.model_version_id
    ]
    same_target = [d for d in candidates if target and d.target == target]
    chosen = (same_target or candidates or [None])[0]
    if chosen is None:
        return None, ""
    return chosen.version, chosen.target


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
        # A QA stage that succeeded beats a newer one still waiting or one that failed.
        evidence.qa_stage = qa.order_by(
            Case(When(result="succeeded", then=0), default=1),
            F("finished_at").desc(nulls_last=True),
            "-pk",
        ).first()
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
    from pipelines.selectors import deployments_now

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


def approval_stages(approval: ApprovalRequest) -> list[RunStage]:
    """The run's stage timeline, in order."""
    if not approval.run_id:
        return []
    return list(RunStage.objects.filter(run_id=approval.run_id).order_by("order", "pk"))


def approval_decisions(approval: ApprovalRequest) -> list[Decision]:
    """Decisions made in the portal, each with its outbox message (delivery state)."""
    return list(
        Decision.objects.filter(approval=approval)
        .select_related("outbox", "user")
        .order_by("created_at", "pk")
    )


def approval_audit(approval: ApprovalRequest) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(approval=approval).order_by("at", "pk"))


# --- Audit trail -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    actor: str = ""
    environment: str = ""
    model: str = ""
    approval: int | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_list(*, filters: AuditFilters) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.all()
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.actor:
        qs = qs.filter(actor_name__icontains=filters.actor)
    if filters.environment:
        qs = qs.filter(environment=filters.environment)
    if filters.model:
        qs = qs.filter(model_name=filters.model)
    if filters.approval:
        qs = qs.filter(approval_id=filters.approval)
    if filters.since:
        qs = qs.filter(at__gte=filters.since)
    if filters.until:
        qs = qs.filter(at__lt=filters.until)
    return qs.order_by("-at", "-pk")


# --- Home cards --------------------------------------------------------------------------------


def waiting_for(user, limit: int = 8) -> list[ApprovalRequest]:
    """Open requests this approver has not decided yet, oldest first."""
    mine = Decision.objects.filter(approval=OuterRef("pk"), user=user)
    return list(
        _base()
        .filter(status__in=OPEN_STATUSES)
        .exclude(Exists(mine))
        .order_by("created_on", "pk")[:limit]
    )


def decided_by(user, limit: int = 8) -> list[Decision]:
    return list(
        Decision.objects.filter(user=user)
        .select_related("approval__catalog_model", "approval__model_version", "outbox")
        .order_by("-created_at", "-pk")[:limit]
    )


def delivery_problems(user=None, limit: int = 20) -> list[OutboxMessage]:
    """Failed deliveries (and ones still retrying after an error): one user's, or all."""
    qs = OutboxMessage.objects.filter(
        Q(state=OutboxState.FAILED)
        | Q(state=OutboxState.QUEUED, attempts__gt=0)
        | Q(state=OutboxState.ALREADY_DECIDED)
        | Q(state=OutboxState.NEEDS_SIGNIN)
    )
    if user is not None:
        qs = qs.filter(decision__user=user)
    else:
        qs = qs.exclude(state=OutboxState.ALREADY_DECIDED)
    return list(
        qs.select_related("decision", "approval__catalog_model").order_by("-created_at")[:limit]
    )


@dataclass(frozen=True)
class OutboxBacklog:
    queued: int
    failed: int
    oldest_queued_at: datetime | None


def outbox_backlog() -> OutboxBacklog:
    queued = OutboxMessage.objects.filter(state=OutboxState.QUEUED)
    oldest = queued.order_by("created_at").values_list("created_at", flat=True).first()
    return OutboxBacklog(
        queued=queued.count(),
        failed=OutboxMessage.objects.filter(state=OutboxState.FAILED).count(),
        oldest_queued_at=oldest,
    )


def overdue_pending(limit: int = 8) -> list[ApprovalRequest]:
    return list(
        _base()
        .filter(status__in=OPEN_STATUSES, created_on__lt=overdue_cutoff())
        .order_by("created_on")[:limit]
    )


def versions_waiting(team: str = "", limit: int = 8) -> list[ApprovalRequest]:
    qs = _base().filter(status__in=OPEN_STATUSES)
    if team:
        qs = qs.filter(Q(catalog_model__team=team) | Q(catalog_model__registry_team=team))
    return list(qs.order_by("created_on")[:limit])


def approvals_for_version(version: ModelVersion) -> list[ApprovalRequest]:
    """Approval requests that concern one version (the version page)."""
    return list(_base().filter(model_version=version).order_by("-created_on"))
