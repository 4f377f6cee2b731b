"""Read queries shared by this app's views, API, home cards and the registry's pages."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db.models import Case, Count, F, Q, QuerySet, When
from django.utils import timezone

from registry.models import CatalogModel, ModelKind, Serving
from registry.selectors import UNKNOWN, catalog_model_annotated, catalog_team_choices

from .criteria import CRITERIA_BY_CODE
from .models import LEVEL_NAMES, LEVELS, Criterion, MaturityRecord, MaturitySnapshot, ModelMaturity
from .services import week_of

GROUPINGS = ("team", "kind")
UNASSESSED = "unassessed"
SORTS = {
    "name": ("catalog_model__name",),
    "-name": ("-catalog_model__name",),
    "level": ("level", "catalog_model__name"),
    "-level": ("-level", "catalog_model__name"),
    "assessed": ("assessed_level", "catalog_model__name"),
    "-assessed": ("-assessed_level", "catalog_model__name"),
    "team": ("team_sort", "catalog_model__name"),
    "-team": ("-team_sort", "catalog_model__name"),
}


def criteria_list(*, active_only: bool = True) -> QuerySet[Criterion]:
    criteria = Criterion.objects.all()
    return criteria.filter(active=True) if active_only else criteria


def criteria_by_code() -> dict[str, Criterion]:
    return {c.code: c for c in Criterion.objects.all()}


# --- Portfolio (dashboard, CSV, API summary) ------------------------------------------------


@dataclass(frozen=True)
class PortfolioFilters:
    team: str = ""
    kind: str = ""  # a ModelKind value
    serving: str = ""  # a Serving value
    level: str = ""  # "0".."5" (effective level) or "unassessed"
    disagreement: bool = False
    q: str = ""
    sort: str = ""

    @property
    def effective_sort(self) -> str:
        return self.sort if self.sort in SORTS else "name"

    def as_query(self) -> dict[str, str]:
        """The non-empty filters, for links that keep them (pagination, CSV, switches)."""
        values = {
            "team": self.team,
            "kind": self.kind,
            "serving": self.serving,
            "level": self.level,
            "disagreement": "1" if self.disagreement else "",
            "q": self.q,
            "sort": self.sort,
        }
        return {k: v for k, v in values.items() if v}


def portfolio_models(*, filters: PortfolioFilters) -> QuerySet[CatalogModel]:
    """Catalog models with their current maturity (``maturity`` may be missing: unassessed)."""
    models = catalog_model_annotated().select_related("maturity")
    if filters.team:
        models = models.filter(eff_team=filters.team)
    if filters.kind:
        models = models.filter(eff_kind=filters.kind)
    if filters.serving:
        models = models.filter(eff_serving=filters.serving)
    if filters.level == UNASSESSED:
        models = models.filter(Q(maturity__isnull=True) | Q(maturity__level__isnull=True))
    elif filters.level.isdigit():
        models = models.filter(maturity__level=int(filters.level))
    if filters.disagreement:
        models = models.filter(maturity__disagreement=True)
    if filters.q:
        models = models.filter(Q(name__icontains=filters.q) | Q(description__icontains=filters.q))
    return models


def portfolio_rows(*, filters: PortfolioFilters) -> QuerySet[ModelMaturity]:
    """The dashboard table: one row per assessed (or declared) model, sorted."""
    rows = ModelMaturity.objects.filter(
        catalog_model__in=portfolio_models(filters=filters)
    ).select_related("catalog_model", "declared_record")
    if filters.level != UNASSESSED:
        # A row made only by a change mark (assessed within the minute) has no level yet.
        rows = rows.filter(Q(assessed_level__isnull=False) | Q(declared_level__isnull=False))
    rows = rows.annotate(
        team_sort=Case(
            When(catalog_model__team="", then=F("catalog_model__registry_team")),
            default=F("catalog_model__team"),
        )
    )
    return rows.order_by(*SORTS[filters.effective_sort], "pk")


@dataclass
class NextStep:
    """What fails first for the next level, and the fix the catalogue suggests."""

    level: int
    code: str
    title: str
    result: str
    fix: str

    @property
    def not_measured(self) -> bool:
        return self.result == "not_measured"


def _criterion(code: str, catalogue: dict[str, Criterion]):
    """The catalogue row of ``code``, else the code's definition (a record may predate the
    migrate that copied it), else None."""
    return catalogue.get(code) or CRITERIA_BY_CODE.get(code)


def next_step(status: ModelMaturity, catalogue: dict[str, Criterion]) -> NextStep | None:
    if not status.next_criterion:
        return None
    criterion = _criterion(status.next_criterion, catalogue)
    return NextStep(
        level=(status.assessed_level or 0) + 1,
        code=status.next_criterion,
        title=(criterion.title if criterion else "") or status.next_criterion,
        result=status.next_result,
        fix=criterion.fix if criterion else "",
    )


@dataclass
class Distribution:
    """Models per level (0 = below level 1), split by ``by`` (team or kind)."""

    by: str
    groups: list[str]
    counts: dict[str, dict[int, int]]  # group -> level -> models
    unassessed: int = 0

    @property
    def levels(self) -> tuple[int, ...]:
        return (0, *LEVELS) if any(c.get(0) for c in self.counts.values()) else LEVELS

    def level_total(self, level: int) -> int:
        return sum(c.get(level, 0) for c in self.counts.values())

    def group_total(self, group: str) -> int:
        return sum(self.counts[group].values())

    @property
    def total(self) -> int:
        return sum(self.group_total(g) for g in self.groups)

    @property
    def average(self) -> float | None:
        """The mean level of the models counted (None when there are none)."""
        level_sum = sum(lv * n for counts in self.counts.values() for lv, n in counts.items())
        return level_sum / self.total if self.total else None

    def rows(self) -> list[dict]:
        """For the accessible table: one row per level with a cell per group."""
        return [
            {
                "level": level,
                "name": LEVEL_NAMES[level],
                "cells": [self.counts[g].get(level, 0) for g in self.groups],
                "total": self.level_total(level),
            }
            for level in self.levels
        ]

    def chart(self) -> dict:
        return {
            "labels": [f"L{lv}" for lv in self.levels],
            "level_names": [LEVEL_NAMES[lv] for lv in self.levels],
            "datasets": [
                {"label": g, "data": [self.counts[g].get(lv, 0) for lv in self.levels]}
                for g in self.groups
            ],
        }


def _group_label(by: str, value: str) -> str:
    if by == "kind":
        return ModelKind(value).label if value in ModelKind.values else ModelKind.UNKNOWN.label
    return "(no team)" if value == UNKNOWN else value


def distribution(*, filters: PortfolioFilters, by: str = "team") -> Distribution:
    """Counted in the database: one row per (team or kind, level)."""
    by = by if by in GROUPINGS else "team"
    group_field = f"eff_{by}"
    counts: dict[str, dict[int, int]] = defaultdict(Counter)
    unassessed = 0
    rows = (
        portfolio_models(filters=filters)
        .order_by()
        .values(group_field, "maturity__level")
        .annotate(models=Count("pk"))
    )
    for row in rows:
        level = row["maturity__level"]
        if level is None:
            unassessed += row["models"]
        else:
            counts[_group_label(by, row[group_field])][level] += row["models"]
    groups = sorted(counts)
    return Distribution(by=by, groups=groups, counts=dict(counts), unassessed=unassessed)


def disagreement_count(*, filters: PortfolioFilters) -> int:
    """Models whose declared level differs from the assessed one."""
    return portfolio_models(filters=filters).filter(maturity__disagreement=True).count()


@dataclass
class Trend:
    """Models per level per week, from the weekly snapshots."""

    weeks: list[date]
    counts: list[dict[int, int]]  # per week: level -> models
    averages: list[float | None]

    def rows(self) -> list[dict]:
        return [
            {
                "week": week,
                "cells": [counts.get(level, 0) for level in (0, *LEVELS)],
                "total": sum(counts.values()),
                "average": average,
            }
            for week, counts, average in zip(self.weeks, self.counts, self.averages, strict=True)
        ]

    def chart(self) -> dict:
        return {
            "labels": [w.isoformat() for w in self.weeks],
            "datasets": [
                {"label": f"L{level}", "data": [c.get(level, 0) for c in self.counts]}
                for level in (0, *LEVELS)
                if any(c.get(level) for c in self.counts)
            ],
            "averages": self.averages,
        }

    def change_since(self, weeks_back: int) -> float | None:
        """Change of the average level over the last ``weeks_back`` weeks (None: no data)."""
        if len(self.averages) < 2:
            return None
        latest = self.averages[-1]
        # By calendar week, not by position: a week without snapshots leaves a gap in the list.
        target = self.weeks[-1] - timedelta(weeks=weeks_back)
        pairs = zip(reversed(self.weeks), reversed(self.averages), strict=True)
        earlier = next((average for week, average in pairs if week <= target), None)
        if latest is None or earlier is None:
            return None
        return round(latest - earlier, 2)


def trend(*, filters: PortfolioFilters, weeks: int = 52) -> Trend:
    since = week_of(timezone.localdate()) - timedelta(weeks=weeks - 1)
    snapshots = MaturitySnapshot.objects.filter(week__gte=since, level__isnull=False)
    if filters.team:
        snapshots = snapshots.filter(team=filters.team)
    if filters.kind:
        snapshots = snapshots.filter(kind=filters.kind)
    if filters.serving:
        snapshots = snapshots.filter(serving=filters.serving)
    if filters.level == UNASSESSED:
        snapshots = snapshots.none()  # the trend counts levels: unassessed models have none
    elif filters.level.isdigit():
        snapshots = snapshots.filter(level=int(filters.level))
    if filters.disagreement:
        snapshots = snapshots.filter(
            declared_level__isnull=False, assessed_level__isnull=False
        ).exclude(declared_level=F("assessed_level"))
    if filters.q:
        snapshots = snapshots.filter(catalog_model__name__icontains=filters.q)
    per_week: dict[date, Counter] = defaultdict(Counter)
    for row in snapshots.values("week", "level").annotate(models=Count("pk")).order_by():
        per_week[row["week"]][row["level"]] += row["models"]
    weeks_sorted = sorted(per_week)
    counts = [dict(per_week[w]) for w in weeks_sorted]
    averages = [
        round(sum(lv * n for lv, n in c.items()) / sum(c.values()), 2) if c else None
        for c in counts
    ]
    return Trend(weeks=weeks_sorted, counts=counts, averages=averages)


def dropped_models(*, days: int = 30, limit: int = 10) -> QuerySet[ModelMaturity]:
    """Models whose assessed level went down in the last ``days`` days (managers' home)."""
    since = timezone.now() - timedelta(days=days)
    return (
        ModelMaturity.objects.filter(
            assessed_changed_at__gte=since,
            previous_assessed_level__isnull=False,
            assessed_level__lt=F("previous_assessed_level"),
        )
        .select_related("catalog_model")
        .order_by("-assessed_changed_at")[:limit]
    )


# --- One model (model page section, API) -----------------------------------------------------


@dataclass
class ChecklistItem:
    code: str
    level: int
    title: str
    description: str
    fix: str
    result: str
    summary: str
    evidence: list[dict] = field(default_factory=list)
    evidence_strength: str = ""  # "seen", "declared" (weaker evidence) or "" (not weighed)
    measure: dict | None = None

    @property
    def declared_only(self) -> bool:
        """Passed on a run's own word (its trigger parameter), not on what the portal saw."""
        return self.result == "passed" and self.evidence_strength == "declared"

    @property
    def seen(self) -> bool:
        return self.result == "passed" and self.evidence_strength == "seen"

    @property
    def result_label(self) -> str:
        return {
            "passed": "Passed",
            "failed": "Failed",
            "not_measured": "Not measured",
            "not_applicable": "Not applicable",
        }.get(self.result, self.result)


@dataclass
class ModelMaturityView:
    catalog_model: CatalogModel
    status: ModelMaturity | None
    assessed: MaturityRecord | None
    declared: MaturityRecord | None
    checklist: list[ChecklistItem]  # all criteria of the latest assessment, by level
    history: list[MaturityRecord]

    @property
    def next_level(self) -> int | None:
        if self.assessed is None:
            return None
        return None if self.assessed.level >= 5 else self.assessed.level + 1

    @property
    def next_checklist(self) -> list[ChecklistItem]:
        return [item for item in self.checklist if item.level == self.next_level]

    @property
    def disagreement(self) -> bool:
        return bool(self.status and self.status.disagreement)


def checklist_from(record: MaturityRecord | None, catalogue: dict[str, Criterion]):
    items = []
    for result in (record.results if record else []) or []:
        source = _criterion(result["code"], catalogue)
        items.append(
            ChecklistItem(
                code=result["code"],
                level=result["level"],
                title=source.title if source else result["code"],
                description=source.description if source else "",
                fix=source.fix if source else "",
                result=result["result"],
                summary=result.get("summary", ""),
                evidence=result.get("evidence", []),
                evidence_strength=result.get("evidence_strength", ""),
                measure=result.get("measure"),
            )
        )
    return items


def model_maturity(*, catalog_model: CatalogModel, history_limit: int = 50) -> ModelMaturityView:
    status = (
        ModelMaturity.objects.filter(pk=catalog_model.pk)
        .select_related("assessed_record", "declared_record")
        .first()
    )
    assessed = status.assessed_record if status else None
    declared = status.declared_record if status and status.declared_level is not None else None
    history = list(
        MaturityRecord.objects.filter(catalog_model=catalog_model).order_by("-created_at", "-pk")[
            :history_limit
        ]
    )
    return ModelMaturityView(
        catalog_model=catalog_model,
        status=status,
        assessed=assessed,
        declared=declared,
        checklist=checklist_from(assessed, criteria_by_code()),
        history=history,
    )


def levels_for(catalog_model_ids: list[int]) -> dict[int, ModelMaturity]:
    """Current maturity of many models in one query (the catalog list's column)."""
    return {m.pk: m for m in ModelMaturity.objects.filter(pk__in=catalog_model_ids)}


def team_choices() -> list[str]:
    """The catalog's teams for the team filter (models without a team are not a team)."""
    return [team for team in catalog_team_choices() if team != UNKNOWN]


KIND_CHOICES = [(k.value, k.label) for k in ModelKind]
SERVING_CHOICES = [(s.value, s.label) for s in Serving]


def current_level(catalog_model: CatalogModel) -> int | None:
    """The model's current level (declared, else assessed), for approvals' minimum-maturity
    gate (registered in MaturityConfig.ready: approvals may not import maturity)."""
    return ModelMaturity.objects.filter(pk=catalog_model.pk).values_list("level", flat=True).first()
