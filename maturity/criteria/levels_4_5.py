"""Levels 4 and 5: new data starts training soon after it lands, and monitoring closes the
loop (a drift or threshold alert retrains, and the retrained version is promoted)."""

from __future__ import annotations

import statistics
from datetime import timedelta

from ..evidence import ModelEvidence, RunFact
from ..models import Applicability
from .base import (
    CriterionDef,
    Outcome,
    ado_not_measured,
    days_of,
    failed,
    is_data_triggered,
    is_monitoring_triggered,
    not_measured,
    passed,
    plural,
    releases_unread,
    setting,
    train_kind,
)

# Level 4 ----------------------------------------------------------------------------------


def _data_triggered_runs(ev: ModelEvidence) -> list[RunFact]:
    return [r for r in ev.runs_of(train_kind(ev)) if r.succeeded and is_data_triggered(r)]


def check_data_triggered(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    runs = _data_triggered_runs(ev)
    word = train_kind(ev)
    if runs:
        return passed(
            f"{plural(len(runs), f'{word} run')} started by new data in the last "
            f"{days_of(ev)} days.",
            [r.link for r in runs],
        )
    return failed(
        f"No successful {word} run was started by new data in the last {days_of(ev)} days."
    )


def check_data_lag(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    runs = _data_triggered_runs(ev)
    if not runs:
        return failed("No data-triggered run to time.")
    arrivals = sorted(
        (
            (r.finished_at, r)
            for r in ev.runs_of("data_cleansing")
            if r.succeeded and r.finished_at is not None
        ),
        key=lambda pair: pair[0],  # two runs may finish at the same time
    )
    lags, evidence = [], []
    for run in runs:
        began = run.started_at or run.queued_at
        if began is None:
            continue
        before = [(at, r) for at, r in arrivals if at <= began and began - at <= timedelta(days=7)]
        if before:
            at, cleansing = before[-1]
            lags.append((began - at).total_seconds() / 3600)
            evidence += [cleansing.link, run.link]
    if not lags:
        return not_measured(
            "No data-cleansing run precedes the data-triggered runs, so when the data arrived "
            "is unknown."
        )
    limit = float(setting("MATURITY_DATA_LAG_HOURS", 24))
    median = statistics.median(lags)
    text = f"median {median:.1f} h from data arrival to the start of the run ({len(lags)} runs)"
    if median < limit:
        return passed(f"Within {limit:g} h: {text}.", evidence)
    return failed(f"Over {limit:g} h: {text}.", evidence)


# Level 5 ----------------------------------------------------------------------------------


def _monitoring_runs(ev: ModelEvidence) -> list[RunFact]:
    return [r for r in ev.runs_of(train_kind(ev)) if is_monitoring_triggered(r)]


def check_closed_loop(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    runs = [r for r in _monitoring_runs(ev) if r.succeeded]
    word = train_kind(ev)
    if runs:
        return passed(
            f"{plural(len(runs), f'{word} run')} started by a drift or threshold event in "
            f"the last {days_of(ev)} days.",
            [r.link for r in runs],
        )
    return failed(
        f"No successful {word} run was started by a drift or threshold event in the last "
        f"{days_of(ev)} days."
    )


def check_promoted(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    runs = [r for r in _monitoring_runs(ev) if r.succeeded]
    if not runs:
        return failed("No drift- or threshold-triggered training to follow to PROD.")
    versions = {r.model_version_id for r in runs if r.model_version_id in ev.versions}
    if not versions:
        return not_measured(
            "The drift-triggered training runs are not linked to a registered version, so "
            "whether it was promoted is unknown."
        )
    promoted = [r for r in ev.prod_deployments() if r.model_version_id in versions]
    if promoted:
        evidence = []
        for run in promoted:
            evidence += [ev.versions[run.model_version_id].link, run.link]
        return passed(
            "A version retrained on a monitoring signal went to PROD through the gated release.",
            evidence,
        )
    return releases_unread(ev) or failed(
        "No version retrained on a monitoring signal has reached PROD.",
        [ev.versions[v].link for v in versions],
    )


LEVELS_4_5: tuple[CriterionDef, ...] = (
    CriterionDef(
        code="data-triggered",
        level=4,
        title="New data starts training",
        description="Training (scoring) runs when new data arrives, not on a clock.",
        evaluation="A succeeded training (scoring) run in the window with ADO reason "
        "resourceTrigger or buildCompletion, or trigger new-data.",
        fix="Trigger the training (or scoring) pipeline from the data-cleansing pipeline (a "
        "pipeline resource trigger) or from a data-arrival event.",
        applies_to=Applicability.BOTH,
        check=check_data_triggered,
    ),
    CriterionDef(
        code="data-lag",
        level=4,
        title="Training follows new data within a day",
        description="The time from data arrival to the start of training is short.",
        evaluation="Median time from the end of the preceding data-cleansing run to the start "
        "of each data-triggered run, under MATURITY_DATA_LAG_HOURS (24 h).",
        fix="Trigger training on the data pipeline's completion rather than on a later "
        "schedule; remove manual hand-offs.",
        applies_to=Applicability.BOTH,
        check=check_data_lag,
    ),
    CriterionDef(
        code="closed-loop",
        level=5,
        title="Monitoring triggers retraining",
        description="Drift or threshold alerts from monitoring start retraining (rescoring) "
        "on their own.",
        evaluation="A succeeded training (scoring) run in the window whose trigger is drift or "
        "threshold.",
        fix="Wire the model's monitoring alerts to queue the training (or scoring) pipeline "
        "with trigger=drift (or threshold).",
        applies_to=Applicability.BOTH,
        check=check_closed_loop,
    ),
    CriterionDef(
        code="promoted",
        level=5,
        title="The retrained model is promoted",
        description="A version retrained on a monitoring signal went to PROD through the "
        "gated release.",
        evaluation="A version linked to a drift- or threshold-triggered training run was "
        "deployed by a release run whose PROD stage succeeded.",
        fix="Let the release pipeline pick up the retrained version when its evaluation "
        "beats the champion, through the usual QA and PROD approvals.",
        applies_to=Applicability.ML,
        check=check_promoted,
    ),
)
