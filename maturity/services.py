"""Everything that changes this app's state, as keyword-only functions named <entity>_<action>.

- ``criteria_sync``: the catalogue table follows ``maturity/criteria/`` (after migrate).
- ``models_assess``: evaluates every criterion for a batch of models and appends a record
  only for those whose level or any result changed; nightly (beat) and on change.
- ``maturity_declare``: a manager's declared level, with a reason; a record too.
- ``snapshot_take`` / ``snapshots_backfill`` / ``snapshots_prune``: the weekly portfolio.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import PortalError
from core.roles import Role, user_has_role
from registry.models import CatalogModel

from . import criteria, evidence
from .models import (
    LEVELS,
    Criterion,
    MaturityRecord,
    MaturitySnapshot,
    ModelMaturity,
    Result,
    Source,
)

logger = logging.getLogger(__name__)

NIGHTLY = "nightly assessment"
ON_CHANGE = "assessment on change"
ON_REQUEST = "assessment on request"
MIN_REASON_LENGTH = 10


# Catalogue -----------------------------------------------------------------------------------


def criteria_sync() -> int:
    """Upsert the catalogue from the code; criteria the code dropped become inactive."""
    seen = []
    for order, definition in enumerate(criteria.CRITERIA):
        Criterion.objects.update_or_create(
            code=definition.code,
            defaults={
                "level": definition.level,
                "title": definition.title,
                "description": definition.description,
                "evaluation": definition.evaluation,
                "fix": definition.fix,
                "applies_to": definition.applies_to,
                "order": order,
                "active": True,
            },
        )
        seen.append(definition.code)
    Criterion.objects.exclude(code__in=seen).update(active=False)
    return len(seen)


# Assessment --------------------------------------------------------------------------------


def fingerprint(level: int | None, unmeasured: int | None, results: list[dict]) -> str:
    """Equal when the level and every criterion's result (and, where a criterion weighs it,
    the strength of its evidence) are equal; the evidence itself may move on."""
    key = [level, unmeasured, sorted(_result_key(r) for r in results)]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


def _result_key(result: dict) -> list[str]:
    """A result's part of the fingerprint; the strength only where there is one, so records
    written before criteria had strengths keep their fingerprints."""
    key = [result["code"], result["result"]]
    if result.get("evidence_strength"):
        key.append(result["evidence_strength"])
    return key


@dataclass
class AssessStats:
    assessed: int = 0
    written: int = 0
    unchanged: int = 0
    levels: dict[int, int] = field(default_factory=dict)  # level -> models, of those assessed
    written_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "assessed": self.assessed,
            "written": self.written,
            "unchanged": self.unchanged,
            "levels": dict(sorted(self.levels.items())),
        }


def models_assess(
    *,
    catalog_model_ids: list[int] | None = None,
    made_by: str = NIGHTLY,
    now: datetime | None = None,
    batch_size: int = 500,
) -> AssessStats:
    """Assess the given catalog models (all when None), in batches of ``batch_size``."""
    stats = AssessStats()
    models = CatalogModel.objects.order_by("pk")
    if catalog_model_ids is not None:
        models = models.filter(pk__in=catalog_model_ids)
    ids = list(models.values_list("pk", flat=True))
    for start in range(0, len(ids), batch_size):
        batch = list(CatalogModel.objects.filter(pk__in=ids[start : start + batch_size]))
        _assess_batch(batch, made_by=made_by, now=now, stats=stats)
    return stats


def model_assess(*, catalog_model: CatalogModel, made_by: str = ON_REQUEST) -> AssessStats:
    return models_assess(catalog_model_ids=[catalog_model.pk], made_by=made_by)


def changed_models_assess() -> AssessStats:
    """Assess the models marked stale by a change (maturity/receivers.py). Each assessment
    clears the marks made before it read the evidence; a mark set after that stays for the
    next run."""
    ids = list(
        ModelMaturity.objects.filter(stale_since__isnull=False)
        .order_by("stale_since")
        .values_list("pk", flat=True)
    )
    if not ids:
        return AssessStats()
    return models_assess(catalog_model_ids=ids, made_by=ON_CHANGE)


def _assess_batch(batch, *, made_by: str, now: datetime | None, stats: AssessStats) -> None:
    read_at = timezone.now()  # a change marked before this is covered by this assessment
    found = evidence.evidence_load(batch, now=now)
    assessments = {pk: criteria.assess(ev) for pk, ev in found.items()}
    at = timezone.now()
    with transaction.atomic():
        ModelMaturity.objects.bulk_create(
            [ModelMaturity(catalog_model_id=pk) for pk in assessments], ignore_conflicts=True
        )
        # Locked, so a nightly run and an on-change run never append the same change twice.
        current = {
            m.pk: m
            for m in ModelMaturity.objects.select_for_update(of=("self",))
            .filter(pk__in=list(assessments))
            .select_related("assessed_record")
            .defer("assessed_record__results")
        }
        new_records, changed_status, unchanged = [], [], []
        for pk, assessment in assessments.items():
            status = current[pk]
            print_ = fingerprint(assessment.level, assessment.unmeasured_level, assessment.results)
            stats.assessed += 1
            stats.levels[assessment.level] = stats.levels.get(assessment.level, 0) + 1
            status.checked_at = at
            known = status.assessed_record.fingerprint if status.assessed_record else None
            if known == print_:
                stats.unchanged += 1
                unchanged.append(pk)
                continue
            record = MaturityRecord(
                catalog_model_id=pk,
                source=Source.ASSESSED,
                level=assessment.level,
                unmeasured_level=assessment.unmeasured_level,
                results=assessment.results,
                fingerprint=print_,
                created_at=at,
                made_by=made_by,
            )
            new_records.append(record)
            changed_status.append((status, assessment, record))
        MaturityRecord.objects.bulk_create(new_records, batch_size=500)
        for status, assessment, record in changed_status:
            _apply_assessed(status, assessment.level, assessment.next_blocker(), record)
            stats.written += 1
            stats.written_ids.append(status.pk)
        # A quiet night is one UPDATE of the check time, not a rewrite of every row.
        ModelMaturity.objects.filter(pk__in=unchanged).update(checked_at=at)
        ModelMaturity.objects.filter(pk__in=list(current), stale_since__lte=read_at).update(
            stale_since=None
        )
        ModelMaturity.objects.bulk_update(
            [status for status, _, _ in changed_status],
            [
                "assessed_level",
                "assessed_record",
                "unmeasured_level",
                "next_criterion",
                "next_result",
                "declared_evidence",
                "level",
                "disagreement",
                "previous_assessed_level",
                "assessed_changed_at",
                "checked_at",
            ],
            batch_size=500,
        )


def _apply_assessed(
    status: ModelMaturity, level: int, blocker: dict | None, record: MaturityRecord
) -> None:
    if status.assessed_level != level:
        status.previous_assessed_level = status.assessed_level
        status.assessed_changed_at = record.created_at
    status.assessed_level = level
    status.assessed_record = record
    status.unmeasured_level = record.unmeasured_level
    status.next_criterion = blocker["code"] if blocker else ""
    status.next_result = blocker["result"] if blocker else ""
    status.declared_evidence = rests_on_declared(level, record.results or [])
    _effective(status)


def rests_on_declared(level: int, results: list[dict]) -> bool:
    """Whether a criterion the level holds on passed only on declared (weaker) evidence."""
    return any(
        r["level"] <= level
        and r["result"] == Result.PASSED
        and r.get("evidence_strength") == criteria.Strength.DECLARED
        for r in results
    )


def _effective(status: ModelMaturity) -> None:
    declared, assessed = status.declared_level, status.assessed_level
    status.level = declared if declared is not None else assessed
    status.disagreement = declared is not None and assessed is not None and declared != assessed


# Declarations --------------------------------------------------------------------------------


NOT_A_MANAGER = "Only managers can declare a model's maturity level."


class DeclarationRefused(PortalError):
    """Why a declaration was refused. The API answers it through the generic mapping
    (``core.api_support``); the declare page shows it beside ``field`` of its form."""

    def __init__(self, message: str, *, code: str, http_status: int = 400, field: str = ""):
        super().__init__(message, code=code, http_status=http_status)
        self.field = field  # the form field it is about ("" for the whole form)


def maturity_declare(
    *, catalog_model: CatalogModel, level: int | None, reason: str, user
) -> MaturityRecord:
    """A manager declares the model's level (None withdraws the declaration), with a reason.

    The assessment goes on beside it; the pages flag any disagreement between the two.
    """
    if not user_has_role(user, Role.MANAGER):
        raise DeclarationRefused(NOT_A_MANAGER, code="not_manager", http_status=403)
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise DeclarationRefused(
            f"Give a reason of at least {MIN_REASON_LENGTH} characters: it is kept with the "
            "declaration for everyone to read.",
            code="reason_required",
            field="reason",
        )
    if level is not None and level not in LEVELS:
        raise DeclarationRefused(
            "The level must be a whole number from 1 to 5.", code="bad_level", field="level"
        )
    with transaction.atomic():
        status, _ = ModelMaturity.objects.select_for_update().get_or_create(
            catalog_model=catalog_model
        )
        if level is None and status.declared_level is None:
            raise DeclarationRefused(
                "There is no declared level to withdraw.", code="nothing_to_withdraw",
                http_status=409,
            )  # fmt: skip
        if level is not None and level == status.declared_level:
            raise DeclarationRefused(
                f"Level {level} is already the declared level.", code="unchanged",
                http_status=409, field="level",
            )  # fmt: skip
        record = MaturityRecord(
            catalog_model=catalog_model,
            source=Source.DECLARED,
            level=level,
            created_at=timezone.now(),
            created_by=user,
            made_by=user.get_full_name() or user.get_username(),
            reason=reason,
        )
        record.save()
        status.declared_level = level
        status.declared_record = record
        _effective(status)
        status.save()
    logger.info("maturity of %s declared %s by %s", catalog_model.name, level, record.made_by)
    return record


# Snapshots ---------------------------------------------------------------------------------


def week_of(day: date) -> date:
    """The Monday of ``day``'s week: snapshots are keyed by it."""
    return day - timedelta(days=day.weekday())


def _category_rows() -> dict[int, tuple[str, str, str]]:
    return {
        m.pk: (m.effective_team, m.effective_kind, m.effective_serving)
        for m in CatalogModel.objects.only(
            "pk", "team", "kind", "serving", "registry_team", "registry_kind", "registry_serving"
        )
    }


def snapshot_take(*, now: datetime | None = None) -> int:
    """Write (or refresh) this week's snapshot from the models' current levels."""
    now = now or timezone.now()
    week = week_of(timezone.localdate(now))
    categories = _category_rows()
    rows = [
        MaturitySnapshot(
            week=week,
            catalog_model_id=status.pk,
            team=categories[status.pk][0],
            kind=categories[status.pk][1],
            serving=categories[status.pk][2],
            assessed_level=status.assessed_level,
            declared_level=status.declared_level,
            level=status.level,
            taken_at=now,
        )
        # A row only marked stale (never assessed nor declared) has no level to keep.
        for status in ModelMaturity.objects.filter(pk__in=list(categories), level__isnull=False)
    ]
    MaturitySnapshot.objects.bulk_create(
        rows,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["week", "catalog_model"],
        update_fields=[
            "team", "kind", "serving", "assessed_level", "declared_level", "level", "taken_at"
        ],
    )  # fmt: skip
    return len(rows)


def snapshots_backfill(*, weeks: int, now: datetime | None = None) -> int:
    """Fill in the missing weekly snapshots of the last ``weeks`` weeks from the records
    (what each model's latest records said at the end of that week). Existing ones stay."""
    now = now or timezone.now()
    this_week = week_of(timezone.localdate(now))
    wanted = [this_week - timedelta(weeks=n) for n in range(1, weeks + 1)]
    have = set(
        MaturitySnapshot.objects.filter(week__in=wanted)
        .values_list("week", "catalog_model_id")
        .distinct()
    )
    categories = _category_rows()
    records = list(
        MaturityRecord.objects.order_by("created_at", "pk").values_list(
            "catalog_model_id", "source", "level", "created_at"
        )
    )
    tz = timezone.get_current_timezone()
    rows = []
    for week in sorted(wanted):
        end = datetime.combine(week + timedelta(days=7), time.min, tzinfo=tz)
        assessed: dict[int, int | None] = {}
        declared: dict[int, int | None] = {}
        for model_id, source, level, created_at in records:
            if created_at >= end:
                break
            (assessed if source == Source.ASSESSED else declared)[model_id] = level
        for model_id in assessed.keys() | declared.keys():
            if model_id not in categories or (week, model_id) in have:
                continue
            a, d = assessed.get(model_id), declared.get(model_id)
            team, kind, serving = categories[model_id]
            rows.append(
                MaturitySnapshot(
                    week=week,
                    catalog_model_id=model_id,
                    team=team,
                    kind=kind,
                    serving=serving,
                    assessed_level=a,
                    declared_level=d,
                    level=d if d is not None else a,
                    taken_at=now,
                )
            )
    MaturitySnapshot.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    return len(rows)


def snapshots_prune(*, now: datetime | None = None) -> int:
    """Drop snapshots older than MATURITY_SNAPSHOT_RETENTION_WEEKS (never under a year)."""
    now = now or timezone.now()
    keep = max(53, int(getattr(settings, "MATURITY_SNAPSHOT_RETENTION_WEEKS", 104)))
    cutoff = week_of(timezone.localdate(now)) - timedelta(weeks=keep)
    deleted, _ = MaturitySnapshot.objects.filter(week__lt=cutoff).delete()
    return deleted


def nightly_run(*, now: datetime | None = None) -> dict:
    """The nightly job: assess every model, refresh this week's snapshot, prune old ones."""
    stats = models_assess(made_by=NIGHTLY, now=now)
    taken = snapshot_take(now=now)
    pruned = snapshots_prune(now=now)
    summary = {**stats.as_dict(), "snapshot_rows": taken, "snapshots_pruned": pruned}
    logger.info("maturity nightly run: %s", summary)
    return summary


def model_maturity_rebuild(*, catalog_model_ids: list[int] | None = None) -> int:
    """Derive ``ModelMaturity`` again from the records (after records were written
    directly, e.g. an imported or demo history); the records stay the truth."""
    records = MaturityRecord.objects.order_by("catalog_model_id", "created_at", "pk")
    if catalog_model_ids is not None:
        records = records.filter(catalog_model_id__in=catalog_model_ids)
    rebuilt: dict[int, ModelMaturity] = {}
    for record in records.iterator(chunk_size=2000):
        status = rebuilt.setdefault(
            record.catalog_model_id, ModelMaturity(catalog_model_id=record.catalog_model_id)
        )
        if record.source == Source.DECLARED:
            status.declared_level = record.level
            status.declared_record = record
            _effective(status)
            continue
        assessment = criteria.Assessment(record.level, record.unmeasured_level, record.results)
        _apply_assessed(status, record.level, assessment.next_blocker(), record)
        status.checked_at = record.created_at
    ModelMaturity.objects.bulk_create(
        list(rebuilt.values()),
        batch_size=500,
        update_conflicts=True,
        unique_fields=["catalog_model"],
        update_fields=[
            "assessed_level", "assessed_record", "unmeasured_level", "next_criterion",
            "next_result", "declared_evidence", "declared_level", "declared_record", "level",
            "disagreement",
            "previous_assessed_level", "assessed_changed_at", "checked_at",
        ],
    )  # fmt: skip
    return len(rebuilt)
