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

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings

from .evidence import Link, ModelEvidence, RunFact
from .models import Applicability, Result

# ADO build reasons (BuildReason, as the REST API spells them), compared lower-cased.
CI_REASONS = {"individualci", "batchedci", "pullrequest"}
AUTOMATIC_REASONS = {"schedule", "resourcetrigger", "buildcompletion", "individualci", "batchedci"}
DATA_REASONS = {"resourcetrigger", "buildcompletion"}
# The workflow's own words for why a run ran (pipelines' ``trigger``; docs/pipelines.md).
AUTOMATIC_TRIGGERS = {"schedule", "new-data", "data-arrival", "data_arrival", "drift", "threshold"}
DATA_TRIGGERS = {"new-data", "data-arrival", "data_arrival"}
MONITORING_TRIGGERS = {"drift", "threshold"}
MAX_EVIDENCE = 5


@dataclass
class Outcome:
    result: str
    summary: str
    evidence: list[Link] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "result": self.result,
            "summary": self.summary,
            "evidence": [link.as_dict() for link in self.evidence[:MAX_EVIDENCE]],
        }


def passed(summary: str, evidence=()) -> Outcome:
    return Outcome(Result.PASSED, summary, list(evidence))


def failed(summary: str, evidence=()) -> Outcome:
    return Outcome(Result.FAILED, summary, list(evidence))


def not_measured(summary: str) -> Outcome:
    return Outcome(Result.NOT_MEASURED, summary)


def not_applicable(summary: str) -> Outcome:
    return Outcome(Result.NOT_APPLICABLE, summary)


@dataclass(frozen=True)
class CriterionDef:
    code: str
    level: int
    title: str
    description: str
    evaluation: str
    fix: str
    applies_to: str
    check: Callable[[ModelEvidence], Outcome]

    def not_applicable_to(self, *, rule_based: bool) -> Outcome | None:
        """The "not applicable" outcome for a model of this kind, or None if it applies."""
        if self.applies_to == Applicability.ML and rule_based:
            return not_applicable("Applies to ML models only.")
        if self.applies_to == Applicability.RULE_BASED and not rule_based:
            return not_applicable("Applies to rule-based models only.")
        return None

    def evaluate(self, evidence: ModelEvidence) -> Outcome:
        return self.not_applicable_to(rule_based=evidence.is_rule_based) or self.check(evidence)


# Helpers -------------------------------------------------------------------------------------


def _setting(name: str, default):
    return getattr(settings, name, default)


def _days(ev: ModelEvidence) -> int:
    return (ev.now - ev.window_start).days


def _no_ado(ev: ModelEvidence) -> Outcome | None:
    if not ev.sources.ado:
        return not_measured("No Azure DevOps project has been synced yet, so runs are unknown.")
    return None


def _no_registry(ev: ModelEvidence) -> Outcome | None:
    if not ev.sources.registry:
        return not_measured("No registry source has been synced yet, so versions are unknown.")
    return None


def _train_kind(ev: ModelEvidence) -> str:
    """The pipeline kind that trains the model, and the word for it in summaries."""
    return "scoring" if ev.is_rule_based else "training"


def _is_automatic(run: RunFact) -> bool:
    return run.reason.lower() in AUTOMATIC_REASONS or run.trigger.lower() in AUTOMATIC_TRIGGERS


def _is_data_triggered(run: RunFact) -> bool:
    return run.reason.lower() in DATA_REASONS or run.trigger.lower() in DATA_TRIGGERS


def _is_monitoring_triggered(run: RunFact) -> bool:
    return run.trigger.lower() in MONITORING_TRIGGERS


def _commit_tags() -> list[str]:
    return _setting("MATURITY_COMMIT_TAGS", ["mlflow.source.git.commit", "git_commit"])


def _data_tags() -> list[str]:
    return _setting("MATURITY_DATA_TAGS", ["data_snapshot", "data_version", "dataset_version"])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# Level 1 ----------------------------------------------------------------------------------


def check_ci_build(ev: ModelEvidence) -> Outcome:
    if missing := _no_ado(ev):
        return missing
    ci = ev.runs_of("ci")
    good = [r for r in ci if r.succeeded and r.reason.lower() in CI_REASONS]
    if good:
        return passed(
            f"{_plural(len(good), 'successful CI run')} triggered by a push or pull request "
            f"in the last {_days(ev)} days.",
            [r.link for r in good],
        )
    if "ci" not in ev.pipeline_kinds:
        return failed("The model has no CI pipeline in Azure DevOps.")
    if not ci:
        return failed(f"The CI pipeline has not run in the last {_days(ev)} days.")
    return failed(
        f"None of the {_plural(len(ci), 'CI run')} of the last {_days(ev)} days both succeeded "
        "and was triggered by a push or pull request.",
        [r.link for r in ci],
    )


def check_registered(ev: ModelEvidence) -> Outcome:
    if missing := _no_registry(ev):
        return missing
    if not ev.versions:
        return failed("No version of this model is registered in the central registry.")
    latest = max(ev.versions.values(), key=lambda v: v.version)
    return passed(
        f"{_plural(len(ev.versions), 'registered version')}; the latest is v{latest.version}.",
        [latest.link],
    )


# Level 2 ----------------------------------------------------------------------------------


def check_pipeline_training(ev: ModelEvidence) -> Outcome:
    if missing := _no_ado(ev):
        return missing
    word = _train_kind(ev)
    runs = [r for r in ev.runs_of(_train_kind(ev)) if r.succeeded]
    if not runs:
        if _train_kind(ev) not in ev.pipeline_kinds:
            return failed(f"The model has no {word} pipeline in Azure DevOps.")
        return failed(f"No successful {word} pipeline run in the last {_days(ev)} days.")
    if ev.is_rule_based:
        return passed(
            f"{_plural(len(runs), 'successful scoring run')} in the last {_days(ev)} days.",
            [r.link for r in runs],
        )
    linked = [r for r in runs if r.model_version_id in ev.versions]
    if linked:
        evidence = []
        for run in linked:
            evidence += [run.link, ev.versions[run.model_version_id].link]
        return passed(
            f"{_plural(len(linked), 'successful training run')} registered a version in the "
            f"last {_days(ev)} days.",
            evidence,
        )
    if missing := _no_registry(ev):
        return missing
    return failed(
        f"{_plural(len(runs), 'training run')} succeeded, but none is linked to a registered "
        "version (modelName / modelVersion parameters or the version's run tags).",
        [r.link for r in runs],
    )


def check_reproducible(ev: ModelEvidence) -> Outcome:
    if ev.is_rule_based:
        if missing := _no_ado(ev):
            return missing
        runs = [r for r in ev.runs_of("scoring") if r.succeeded]
        if not runs:
            return failed("No successful scoring run to check.")
        latest = runs[0]
        if latest.source_version:
            return passed(
                f"The latest scoring run is pinned to commit {latest.source_version[:12]}.",
                [latest.link],
            )
        return failed("The latest scoring run records no commit.", [latest.link])
    if missing := _no_registry(ev):
        return missing
    if not ev.versions:
        return failed("No registered version to check.")
    trained = [
        ev.versions[r.model_version_id]
        for r in ev.runs_of("training")
        if r.succeeded and r.model_version_id in ev.versions
    ]
    version = trained[0] if trained else max(ev.versions.values(), key=lambda v: v.version)
    missing_parts = []
    if not version.run_id:
        missing_parts.append("an MLflow run")
    if not version.tag(_commit_tags()):
        missing_parts.append(f"a code commit tag ({', '.join(_commit_tags())})")
    if not version.tag(_data_tags()):
        missing_parts.append(f"a data version tag ({', '.join(_data_tags())})")
    if not missing_parts:
        return passed(
            f"v{version.version} records its run, commit {version.tag(_commit_tags())[:12]} "
            f"and data {version.tag(_data_tags())}.",
            [version.link],
        )
    if version.run_id and not version.run_read:
        return not_measured(
            f"The MLflow run behind v{version.version} could not be read, so its tags are unknown."
        )
    return failed(f"v{version.version} lacks {', '.join(missing_parts)}.", [version.link])


def check_automatic_trigger(ev: ModelEvidence) -> Outcome:
    if missing := _no_ado(ev):
        return missing
    word = _train_kind(ev)
    runs = ev.runs_of(_train_kind(ev))
    automatic = [r for r in runs if _is_automatic(r)]
    if automatic:
        how = sorted({(r.trigger or r.reason) for r in automatic})
        return passed(
            f"{_plural(len(automatic), f'{word} run')} started without a person "
            f"({', '.join(how)}).",
            [r.link for r in automatic],
        )
    if not runs:
        return failed(f"No {word} run in the last {_days(ev)} days.")
    return failed(
        f"All {_plural(len(runs), f'{word} run')} of the last {_days(ev)} days were started "
        "by hand.",
        [r.link for r in runs],
    )


# Level 3 ----------------------------------------------------------------------------------


def _unread_releases(ev: ModelEvidence) -> Outcome | None:
    """Release runs whose stages are not read yet may have reached PROD: not measured."""
    unread = [r for r in ev.runs_of("release") if not r.timeline_synced]
    if unread:
        return not_measured(
            f"The stages of {_plural(len(unread), 'release run')} have not been read yet."
        )
    return None


def check_pipeline_deployment(ev: ModelEvidence) -> Outcome:
    if missing := _no_ado(ev):
        return missing
    deployed = ev.prod_deployments()
    if deployed:
        return passed(
            f"{_plural(len(deployed), 'release run')} deployed to PROD in the last "
            f"{_days(ev)} days.",
            [r.link for r in deployed],
        )
    releases = ev.runs_of("release")
    if unread := _unread_releases(ev):
        return unread
    if "release" not in ev.pipeline_kinds:
        return failed("The model has no release pipeline in Azure DevOps.")
    return failed(
        f"No release run reached PROD in the last {_days(ev)} days.",
        [r.link for r in releases],
    )


def check_gated_promotion(ev: ModelEvidence) -> Outcome:
    if missing := _no_ado(ev):
        return missing
    deployed = ev.prod_deployments()
    if not deployed:
        return _unread_releases(ev) or failed("No PROD deployment to check.")
    ungated, one_person, evidence = [], [], []
    for run in deployed:
        stages = ev.stages.get(run.pk, [])
        gated = all(
            any(s.environment == env and s.approval_ids for s in stages) for env in ("QA", "PROD")
        )
        if not gated:
            ungated.append(run)
            continue
        approved = [a for a in ev.approvals.get(run.pk, []) if a.status == "approved"]
        evidence += [a.link for a in approved] or [run.link]
        deciders = {a.decided_by.lower() for a in approved if a.decided_by}
        envs = {a.environment for a in approved}
        if envs >= {"QA", "PROD"} and len(deciders) < 2:
            one_person.append(run)
    if ungated:
        return failed(
            f"{_plural(len(ungated), 'PROD deployment')} skipped a QA or PROD approval.",
            [r.link for r in ungated],
        )
    if one_person:
        return failed(
            f"{_plural(len(one_person), 'PROD deployment')} was approved at QA and PROD by "
            "the same person.",
            [r.link for r in one_person],
        )
    return passed(
        f"All {_plural(len(deployed), 'PROD deployment')} passed QA and PROD approvals.",
        evidence,
    )


def check_traceable(ev: ModelEvidence) -> Outcome:
    if missing := _no_ado(ev):
        return missing
    deployed = ev.prod_deployments()
    if not deployed:
        return _unread_releases(ev) or failed("No PROD deployment to trace.")
    if ev.is_rule_based:
        untraced = [r for r in deployed if not r.source_version]
        if untraced:
            return failed(
                f"{_plural(len(untraced), 'PROD deployment')} records no commit.",
                [r.link for r in untraced],
            )
        return passed(
            f"All {_plural(len(deployed), 'PROD deployment')} are pinned to a commit.",
            [r.link for r in deployed],
        )
    if missing := _no_registry(ev):
        return missing
    untraced, evidence = [], []
    for run in deployed:
        version = ev.versions.get(run.model_version_id)
        if version is None or not version.run_id or not version.tag(_data_tags()):
            untraced.append(run)
        else:
            evidence += [run.link, version.link]
    if untraced:
        return failed(
            f"{_plural(len(untraced), 'PROD deployment')} cannot be traced to a registered "
            "version with its MLflow run and data version.",
            [r.link for r in untraced],
        )
    return passed(
        f"All {_plural(len(deployed), 'PROD deployment')} trace to a version, its run and "
        "its data.",
        evidence,
    )


# Level 4 ----------------------------------------------------------------------------------


def _data_triggered_runs(ev: ModelEvidence) -> list[RunFact]:
    return [r for r in ev.runs_of(_train_kind(ev)) if r.succeeded and _is_data_triggered(r)]


def check_data_triggered(ev: ModelEvidence) -> Outcome:
    if missing := _no_ado(ev):
        return missing
    runs = _data_triggered_runs(ev)
    word = _train_kind(ev)
    if runs:
        return passed(
            f"{_plural(len(runs), f'{word} run')} started by new data in the last "
            f"{_days(ev)} days.",
            [r.link for r in runs],
        )
    return failed(f"No successful {word} run was started by new data in the last {_days(ev)} days.")


def check_data_lag(ev: ModelEvidence) -> Outcome:
    if missing := _no_ado(ev):
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
    limit = float(_setting("MATURITY_DATA_LAG_HOURS", 24))
    median = statistics.median(lags)
    text = f"median {median:.1f} h from data arrival to the start of the run ({len(lags)} runs)"
    if median < limit:
        return passed(f"Within {limit:g} h: {text}.", evidence)
    return failed(f"Over {limit:g} h: {text}.", evidence)


# Level 5 ----------------------------------------------------------------------------------


def _monitoring_runs(ev: ModelEvidence) -> list[RunFact]:
    return [r for r in ev.runs_of(_train_kind(ev)) if _is_monitoring_triggered(r)]


def check_closed_loop(ev: ModelEvidence) -> Outcome:
    if missing := _no_ado(ev):
        return missing
    runs = [r for r in _monitoring_runs(ev) if r.succeeded]
    word = _train_kind(ev)
    if runs:
        return passed(
            f"{_plural(len(runs), f'{word} run')} started by a drift or threshold event in "
            f"the last {_days(ev)} days.",
            [r.link for r in runs],
        )
    return failed(
        f"No successful {word} run was started by a drift or threshold event in the last "
        f"{_days(ev)} days."
    )


def check_promoted(ev: ModelEvidence) -> Outcome:
    if missing := _no_ado(ev):
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
    return _unread_releases(ev) or failed(
        "No version retrained on a monitoring signal has reached PROD.",
        [ev.versions[v].link for v in versions],
    )


CRITERIA: tuple[CriterionDef, ...] = (
    CriterionDef(
        code="ci-build",
        level=1,
        title="Code builds in CI",
        description="The model's code (training, scoring or rules) is built and tested by a CI "
        "pipeline on every push or pull request.",
        evaluation="At least one succeeded run of the model's CI pipeline with ADO reason "
        "individualCI, batchedCI or pullRequest in the window.",
        fix="Add a CI pipeline in the model's ADO folder, triggered on push and pull request, "
        "that builds and tests the code.",
        applies_to=Applicability.BOTH,
        check=check_ci_build,
    ),
    CriterionDef(
        code="registered",
        level=1,
        title="Registered in the central registry",
        description="The model has at least one version in the central MLflow registry.",
        evaluation="At least one version of a registered model linked to this catalog entry "
        "that has not been deleted upstream.",
        fix="Register the model in the central MLflow registry from its training pipeline "
        "(mlflow.register_model).",
        applies_to=Applicability.ML,
        check=check_registered,
    ),
    CriterionDef(
        code="pipeline-training",
        level=2,
        title="Trained by a pipeline",
        description="Training (scoring, for a rule-based model) runs as an ADO pipeline, not "
        "from a notebook, and registers the version it trains.",
        evaluation="A succeeded training run in the window linked to a registered version "
        "(rule-based: a succeeded scoring run).",
        fix="Move training (scoring, for a rule-based model) into the model's ADO pipeline; "
        "for an ML model pass modelName / modelVersion so the run and the version it "
        "registers are linked.",
        applies_to=Applicability.BOTH,
        check=check_pipeline_training,
    ),
    CriterionDef(
        code="reproducible",
        level=2,
        title="Training is reproducible",
        description="A version records the run that made it, the code commit and the data "
        "version it was trained on.",
        evaluation="The latest pipeline-trained version has an MLflow run id, a commit tag "
        "and a data version tag (MATURITY_COMMIT_TAGS, MATURITY_DATA_TAGS). Rule-based: the "
        "latest scoring run is pinned to a commit.",
        fix="Log the git commit (mlflow.source.git.commit) and tag the data snapshot "
        "(data_snapshot) on the training run or the version.",
        applies_to=Applicability.BOTH,
        check=check_reproducible,
    ),
    CriterionDef(
        code="automatic-trigger",
        level=2,
        title="Training starts without a person",
        description="Training (or scoring) runs on a schedule or an event, not only by hand.",
        evaluation="A training (scoring) run in the window with ADO reason schedule, "
        "resourceTrigger, buildCompletion, individualCI or batchedCI, or a workflow trigger "
        "such as new data or drift.",
        fix="Give the training (or scoring) pipeline a schedule or a pipeline resource trigger.",
        applies_to=Applicability.BOTH,
        check=check_automatic_trigger,
    ),
    CriterionDef(
        code="pipeline-deployment",
        level=3,
        title="Deployed by a release pipeline",
        description="Versions reach PROD through the release pipeline.",
        evaluation="A release run in the window whose PROD stage succeeded.",
        fix="Deploy through the model's release pipeline (QA then PROD stages) instead of by hand.",
        applies_to=Applicability.BOTH,
        check=check_pipeline_deployment,
    ),
    CriterionDef(
        code="gated-promotion",
        level=3,
        title="Promotion is gated by approvals",
        description="Every PROD deployment passed a QA and a PROD approval, by two different "
        "people where the portal knows who approved.",
        evaluation="Each release run of the window that reached PROD had an approval check on "
        "its QA and PROD stages; where the portal holds both approvals, their approvers differ.",
        fix="Add approval checks to the QA and PROD environments of the release pipeline and "
        "decide them in the portal.",
        applies_to=Applicability.BOTH,
        check=check_gated_promotion,
    ),
    CriterionDef(
        code="traceable",
        level=3,
        title="Deployments trace back to data",
        description="Every PROD deployment resolves to a version, the run that trained it and "
        "the data it was trained on.",
        evaluation="Each PROD deployment of the window names a registered version with an "
        "MLflow run and a data version tag. Rule-based: it is pinned to a commit.",
        fix="Pass modelName and modelVersion to the release pipeline and tag versions with "
        "their data snapshot.",
        applies_to=Applicability.BOTH,
        check=check_traceable,
    ),
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
