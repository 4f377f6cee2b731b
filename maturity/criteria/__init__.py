"""The maturity criteria: what each level asks for, and the code that checks it.

Each criterion is a pure function of a model's evidence (maturity/evidence.py) returning an
``Outcome``: passed, failed, not measured (the portal cannot see the evidence, e.g. its source
never synced, so it must not read as a failure) or not applicable (e.g. registration for a
rule-based model). ``services.criteria_sync`` copies the definitions below into the
``Criterion`` table after every migrate, so the catalogue the pages and API show is always
the one the code evaluates. Windows and thresholds are settings (MATURITY_*).

Rule-based models are checked on their scoring pipeline where ML models are checked on
training (DESIGN.md, level 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..evidence import ModelEvidence
from ..models import Result
from .base import (
    AUTOMATIC_REASONS,
    AUTOMATIC_TRIGGERS,
    CI_REASONS,
    DATA_REASONS,
    DATA_TRIGGERS,
    MAX_EVIDENCE,
    MONITORING_TRIGGERS,
    CriterionDef,
    Outcome,
    Strength,
    failed,
    not_applicable,
    not_measured,
    passed,
)
from .level_3 import LEVEL_3, check_gated_promotion, check_pipeline_deployment, check_traceable
from .levels_1_2 import (
    LEVELS_1_2,
    check_automatic_trigger,
    check_ci_build,
    check_pipeline_training,
    check_registered,
    check_reproducible,
)
from .levels_4_5 import (
    LEVELS_4_5,
    check_closed_loop,
    check_data_lag,
    check_data_triggered,
    check_monitoring_heartbeat,
    check_promoted,
)

CRITERIA: tuple[CriterionDef, ...] = (*LEVELS_1_2, *LEVEL_3, *LEVELS_4_5)
CRITERIA_BY_CODE = {c.code: c for c in CRITERIA}


@dataclass
class Assessment:
    level: int
    unmeasured_level: int | None
    results: list[dict]  # per criterion, in catalogue order

    def next_blocker(self) -> dict | None:
        """The first criterion of the next level that does not pass (None at level 5)."""
        return next(
            (
                r
                for r in self.results
                if r["level"] == self.level + 1
                and r["result"] in (Result.FAILED, Result.NOT_MEASURED)
            ),
            None,
        )


def level_of(results: list[dict]) -> tuple[int, int | None]:
    """The highest level whose criteria, and all lower levels', pass (or do not apply).

    A level kept only by "not measured" criteria is returned as ``unmeasured_level``: the
    pages say it could not be confirmed instead of calling it failed.
    """
    level = 0
    for candidate in range(1, 6):
        states = {r["result"] for r in results if r["level"] == candidate}
        if states <= {Result.PASSED, Result.NOT_APPLICABLE}:
            level = candidate
            continue
        if Result.FAILED not in states:
            return level, candidate
        return level, None
    return level, None


def assess(evidence: ModelEvidence) -> Assessment:
    results = []
    for criterion in CRITERIA:
        outcome = criterion.evaluate(evidence)
        results.append({"code": criterion.code, "level": criterion.level, **outcome.as_dict()})
    level, unmeasured = level_of(results)
    return Assessment(level, unmeasured, results)


__all__ = [
    "AUTOMATIC_REASONS",
    "AUTOMATIC_TRIGGERS",
    "CI_REASONS",
    "CRITERIA",
    "CRITERIA_BY_CODE",
    "DATA_REASONS",
    "DATA_TRIGGERS",
    "LEVELS_1_2",
    "LEVELS_4_5",
    "LEVEL_3",
    "MAX_EVIDENCE",
    "MONITORING_TRIGGERS",
    "Assessment",
    "CriterionDef",
    "Outcome",
    "Strength",
    "assess",
    "check_automatic_trigger",
    "check_ci_build",
    "check_closed_loop",
    "check_data_lag",
    "check_data_triggered",
    "check_gated_promotion",
    "check_monitoring_heartbeat",
    "check_pipeline_deployment",
    "check_pipeline_training",
    "check_promoted",
    "check_registered",
    "check_reproducible",
    "check_traceable",
    "failed",
    "level_of",
    "not_applicable",
    "not_measured",
    "passed",
]
