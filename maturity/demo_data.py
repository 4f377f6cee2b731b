"""Half a year of maturity history for the demo, so the trend, the "level dropped" card and a
disagreement have something to show on the first start.

``seed_history()`` writes backdated assessed records (made by "assessment (demo history)") for
each demo catalog model (the names of ``registry/demo_data.py``) that exists: a progression
over 26 weeks that ends at the level the live assessment of the demo gives
(``ado_simulator/seed.py`` documents why each model sits where it does). Each record's
results are those an assessment at its level gives: every criterion up to the level passed,
the ones above failed (but those of ``ALSO_PASSED``), the ones that do not apply to the
model's kind not applicable; so the last one matches the live assessment and the demo start
writes nothing new for it. It adds one manager declaration that disagrees (marketing-uplift
at 4), derives the current rows and fills the weekly snapshots from the records.

It does nothing when the database holds any maturity record: history is seeded once.

``monitoring_report()``, at every demo start, posts fraud-detector's monitoring job's clean
Evidently report to the operations intake (the way a real monitoring job does), so level 5's
monitoring heartbeat is heard in the window; the demo's levels 4 and 5 otherwise rest on run
parameters and ADO's build reasons, which the history records as declared (weaker) evidence.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from operations.services import intake
from registry.models import CatalogModel, ModelKind

from . import criteria, evidence, services
from .models import MaturityRecord, Result, Source

MADE_BY = "assessment (demo history)"
HEARTBEAT_MODEL = "fraud-detector"  # its monitoring job reports (ado_simulator/seed.py)
HEARTBEAT_SENDER = "demo monitoring job (Evidently)"
HISTORY_WEEKS = 26
# model: ((days ago, assessed level), ...), oldest first; the last level is the live one.
PROGRESSIONS: dict[str, tuple[tuple[int, int], ...]] = {
    "fraud-detector": ((182, 2), (130, 3), (68, 4), (13, 5)),
    "churn-predictor": ((182, 3), (85, 4)),
    "demand-forecast": ((182, 3), (62, 4), (10, 3)),
    "transaction-screening-rules": ((182, 2), (140, 3), (41, 4)),
    "credit-scoring": ((182, 3), (104, 4)),
    "marketing-uplift": ((182, 2), (55, 3)),
    "inventory-anomaly": ((182, 1), (133, 2), (76, 3)),
    "claims-triage-rules": ((182, 1),),
    "customer-lifetime-value": ((182, 1), (111, 2)),
    "credit-limit-rules": ((182, 2), (92, 3)),
}
# (model, level): criteria above the level that pass all the same. claims-triage-rules is
# scored by a pipeline pinned to a commit and released through the gated pipeline, but its
# scoring is only ever started by hand, which keeps it at level 1.
ALSO_PASSED: dict[tuple[str, int], frozenset[str]] = {
    ("claims-triage-rules", 1): frozenset(
        {"pipeline-training", "reproducible", "pipeline-deployment", "gated-promotion", "traceable"}
    ),
}
# A manager's declaration that the assessment does not confirm: the dashboard flags it.
DECLARATION = {
    "model": "marketing-uplift",
    "level": 4,
    "days_ago": 20,
    "username": "maya",  # the demo manager (portal/services.py DEMO_USERS)
    "reason": (
        "Uplift retrains on every new campaign export in a Databricks workflow that is not in "
        "Azure DevOps yet, so the portal cannot see the data trigger."
    ),
}


def results_at(level: int, *, rule_based: bool, also_passed=frozenset()) -> list[dict]:
    """The results an assessment at ``level`` gives: passed up to it (and ``also_passed``),
    failed above it, and not applicable where the criterion is not for this kind of model."""
    results = []
    for criterion in criteria.CRITERIA:
        if outcome := criterion.not_applicable_to(rule_based=rule_based):
            result, summary = outcome.result, outcome.summary
        elif criterion.level <= level or criterion.code in also_passed:
            result, summary = Result.PASSED, "Passed (demo history: evidence links not kept)."
        else:
            result, summary = Result.FAILED, f"Failed (demo history). {criterion.fix}"
        found = {
            "code": criterion.code,
            "level": criterion.level,
            "result": str(result),
            "summary": summary,
            "evidence": [],
        }
        if result == Result.PASSED and criterion.level >= 4:
            found["evidence_strength"] = demo_strength(criterion.code)
        results.append(found)
    return results


def demo_strength(code: str) -> str:
    """The demo's levels 4 and 5 as the live assessment sees them: heard from monitoring,
    the rest declared by run parameters and ADO's build reasons."""
    return criteria.Strength.SEEN if code == "monitoring-heartbeat" else criteria.Strength.DECLARED


def monitoring_report() -> bool:
    """Post the demo monitoring job's clean report for ``HEARTBEAT_MODEL`` through the
    operations intake; True when the portal heard from its monitoring."""
    if not CatalogModel.objects.filter(name=HEARTBEAT_MODEL).exists():
        return False
    report = {
        "model": HEARTBEAT_MODEL,
        "report": {
            "metrics": [
                {
                    "metric_name": "DriftedColumnsCount(drift_share=0.5)",
                    "value": {"count": 0.0, "share": 0.0},
                }
            ]
        },
    }
    result = intake.signals_receive(
        fmt="evidently",
        body=json.dumps(report).encode(),
        content_type="application/json",
        headers={},
        sender=HEARTBEAT_SENDER,
        query={},
    )
    return result.body_json.get("monitoring_heard_from") == HEARTBEAT_MODEL


def _nightly(now: datetime, days_ago: int) -> datetime:
    """The night ``days_ago`` days before ``now``, when the nightly assessment runs."""
    day = timezone.localtime(now) - timedelta(days=days_ago)
    return day.replace(hour=2, minute=0, second=0, microsecond=0)


def seed_history(*, now: datetime | None = None) -> dict:
    """Write the demo's maturity history once; return what was written."""
    if MaturityRecord.objects.exists():
        return {"seeded": False, "records": 0, "models": 0, "snapshots": 0}
    now = now or timezone.now()
    models = {m.name: m for m in CatalogModel.objects.filter(name__in=PROGRESSIONS)}
    # What the evidence the demo holds today gives (the operations history's episodes and
    # signals among it): the last step of a history ends there when it is at the same level.
    live = {
        pk: criteria.assess(found)
        for pk, found in evidence.evidence_load(list(models.values()), now=now).items()
    }
    records = []
    for name, steps in PROGRESSIONS.items():
        model = models.get(name)
        if model is None:
            continue
        rule_based = model.effective_kind == ModelKind.RULE_BASED
        last = min(days_ago for days_ago, _ in steps)
        for days_ago, level in steps:
            also_passed = ALSO_PASSED.get((name, level), frozenset())
            results = results_at(level, rule_based=rule_based, also_passed=also_passed)
            unmeasured = None
            today = live.get(model.pk)
            if days_ago == last and today is not None and today.level == level:
                results, unmeasured = today.results, today.unmeasured_level
            records.append(
                MaturityRecord(
                    catalog_model=model,
                    source=Source.ASSESSED,
                    level=level,
                    unmeasured_level=unmeasured,
                    results=results,
                    fingerprint=services.fingerprint(level, unmeasured, results),
                    created_at=_nightly(now, days_ago),
                    made_by=MADE_BY,
                )
            )
    declared = models.get(DECLARATION["model"])
    manager = get_user_model().objects.filter(username=DECLARATION["username"]).first()
    if declared is not None:
        records.append(
            MaturityRecord(
                catalog_model=declared,
                source=Source.DECLARED,
                level=DECLARATION["level"],
                created_at=timezone.localtime(now) - timedelta(days=DECLARATION["days_ago"]),
                created_by=manager,
                made_by=(manager.get_full_name() or manager.get_username())
                if manager
                else "Maya Manager",
                reason=DECLARATION["reason"],
            )
        )
    # Append-only table: bulk_create is an insert, like every other write to it.
    MaturityRecord.objects.bulk_create(records)
    rebuilt = services.model_maturity_rebuild(catalog_model_ids=[m.pk for m in models.values()])
    snapshots = services.snapshots_backfill(weeks=HISTORY_WEEKS, now=now)
    return {"seeded": True, "records": len(records), "models": rebuilt, "snapshots": snapshots}
