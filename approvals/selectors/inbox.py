"""The inbox and the audit trail: their filters, sorts, rows and tab counts (the page and the
API read the same ones)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import (
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from pipelines.models import Environment, RunRequest
from registry.models import CardStatus, ModelCard

from ..models import OPEN_STATUSES, ApprovalRequest, AuditEvent, Decision, DecisionStatus

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


def approvals_base() -> QuerySet[ApprovalRequest]:
    """Approval rows with what every list shows (model, version, run, project, approvals so
    far). The approvals so far are a subquery per row, not a join with GROUP BY over every
    selected column: the inbox's page of 50 and its count stay cheap with 1,000 pending."""
    approved = (
        Decision.objects.filter(approval=OuterRef("pk"), status=DecisionStatus.APPROVED)
        .order_by()
        .values("approval")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return ApprovalRequest.objects.select_related(
        "catalog_model",
        "model_version__registered_model__source",
        "run__pipeline",
        "project",
    ).annotate(
        approvals_so_far=Coalesce(Subquery(approved, output_field=IntegerField()), Value(0)),
        # The model card's risk (high: two approvers in PROD) and whether the run is a rollback.
        card_risk=Coalesce(
            Subquery(
                ModelCard.objects.filter(catalog_model=OuterRef("catalog_model"))
                .exclude(review_status=CardStatus.ARCHIVED)
                .values("risk_rating")[:1],
                output_field=CharField(),
            ),
            Value(""),
        ),
        rollback_marked=Exists(
            RunRequest.objects.filter(run=OuterRef("run"), rollback_to__isnull=False)
        ),
    )


def approval_list(*, filters: ApprovalFilters) -> QuerySet[ApprovalRequest]:
    """The inbox rows for one tab, filtered and sorted; PROD rows are marked by the page."""
    qs = _filtered(approvals_base(), filters, with_tab=True)
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
    return approvals_base().select_related("stage").get(pk=pk)


def is_overdue(approval: ApprovalRequest) -> bool:
    return approval.is_open and approval.created_on < overdue_cutoff()


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
