"""Levels 1 and 2: the code builds in CI, the model is registered, and a pipeline trains it
reproducibly without a person starting it."""

from __future__ import annotations

from ..evidence import ModelEvidence
from ..models import Applicability
from .base import (
    CI_REASONS,
    CriterionDef,
    Outcome,
    ado_not_measured,
    commit_tags,
    data_tags,
    days_of,
    failed,
    is_automatic,
    not_measured,
    passed,
    plural,
    registry_not_measured,
    train_kind,
)

# Level 1 ----------------------------------------------------------------------------------


def check_ci_build(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    ci = ev.runs_of("ci")
    good = [r for r in ci if r.succeeded and r.reason.lower() in CI_REASONS]
    if good:
        return passed(
            f"{plural(len(good), 'successful CI run')} triggered by a push or pull request "
            f"in the last {days_of(ev)} days.",
            [r.link for r in good],
        )
    if "ci" not in ev.pipeline_kinds:
        return failed("The model has no CI pipeline in Azure DevOps.")
    if not ci:
        return failed(f"The CI pipeline has not run in the last {days_of(ev)} days.")
    return failed(
        f"None of the {plural(len(ci), 'CI run')} of the last {days_of(ev)} days both succeeded "
        "and was triggered by a push or pull request.",
        [r.link for r in ci],
    )


def check_registered(ev: ModelEvidence) -> Outcome:
    if missing := registry_not_measured(ev):
        return missing
    if not ev.versions:
        return failed("No version of this model is registered in the central registry.")
    latest = max(ev.versions.values(), key=lambda v: v.version)
    return passed(
        f"{plural(len(ev.versions), 'registered version')}; the latest is v{latest.version}.",
        [latest.link],
    )


# Level 2 ----------------------------------------------------------------------------------


def check_pipeline_training(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    word = train_kind(ev)
    runs = [r for r in ev.runs_of(train_kind(ev)) if r.succeeded]
    if not runs:
        if train_kind(ev) not in ev.pipeline_kinds:
            return failed(f"The model has no {word} pipeline in Azure DevOps.")
        return failed(f"No successful {word} pipeline run in the last {days_of(ev)} days.")
    if ev.is_rule_based:
        return passed(
            f"{plural(len(runs), 'successful scoring run')} in the last {days_of(ev)} days.",
            [r.link for r in runs],
        )
    linked = [r for r in runs if r.model_version_id in ev.versions]
    if linked:
        evidence = []
        for run in linked:
            evidence += [run.link, ev.versions[run.model_version_id].link]
        return passed(
            f"{plural(len(linked), 'successful training run')} registered a version in the "
            f"last {days_of(ev)} days.",
            evidence,
        )
    if missing := registry_not_measured(ev):
        return missing
    return failed(
        f"{plural(len(runs), 'training run')} succeeded, but none is linked to a registered "
        "version (modelName / modelVersion parameters or the version's run tags).",
        [r.link for r in runs],
    )


def check_reproducible(ev: ModelEvidence) -> Outcome:
    if ev.is_rule_based:
        if missing := ado_not_measured(ev):
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
    if missing := registry_not_measured(ev):
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
    if not version.tag(commit_tags()):
        missing_parts.append(f"a code commit tag ({', '.join(commit_tags())})")
    if not version.tag(data_tags()):
        missing_parts.append(f"a data version tag ({', '.join(data_tags())})")
    if not missing_parts:
        return passed(
            f"v{version.version} records its run, commit {version.tag(commit_tags())[:12]} "
            f"and data {version.tag(data_tags())}.",
            [version.link],
        )
    if version.run_id and not version.run_read:
        return not_measured(
            f"The MLflow run behind v{version.version} could not be read, so its tags are unknown."
        )
    return failed(f"v{version.version} lacks {', '.join(missing_parts)}.", [version.link])


def check_automatic_trigger(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    word = train_kind(ev)
    runs = ev.runs_of(train_kind(ev))
    automatic = [r for r in runs if is_automatic(r)]
    if automatic:
        how = sorted({(r.trigger or r.reason) for r in automatic})
        return passed(
            f"{plural(len(automatic), f'{word} run')} started without a person ({', '.join(how)}).",
            [r.link for r in automatic],
        )
    if not runs:
        return failed(f"No {word} run in the last {days_of(ev)} days.")
    return failed(
        f"All {plural(len(runs), f'{word} run')} of the last {days_of(ev)} days were started "
        "by hand.",
        [r.link for r in runs],
    )


LEVELS_1_2: tuple[CriterionDef, ...] = (
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
)
