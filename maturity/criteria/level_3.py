"""Level 3: versions reach PROD through the release pipeline, gated by approvals, and every
deployment traces back to its run and data."""

from __future__ import annotations

from ..evidence import ModelEvidence
from ..models import Applicability
from .base import (
    CriterionDef,
    Outcome,
    ado_not_measured,
    data_tags,
    days_of,
    failed,
    passed,
    plural,
    registry_not_measured,
    releases_unread,
)


def check_pipeline_deployment(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    deployed = ev.prod_deployments()
    if deployed:
        return passed(
            f"{plural(len(deployed), 'release run')} deployed to PROD in the last "
            f"{days_of(ev)} days.",
            [r.link for r in deployed],
        )
    releases = ev.runs_of("release")
    if unread := releases_unread(ev):
        return unread
    if "release" not in ev.pipeline_kinds:
        return failed("The model has no release pipeline in Azure DevOps.")
    return failed(
        f"No release run reached PROD in the last {days_of(ev)} days.",
        [r.link for r in releases],
    )


def check_gated_promotion(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    deployed = ev.prod_deployments()
    if not deployed:
        return releases_unread(ev) or failed("No PROD deployment to check.")
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
            f"{plural(len(ungated), 'PROD deployment')} skipped a QA or PROD approval.",
            [r.link for r in ungated],
        )
    if one_person:
        return failed(
            f"{plural(len(one_person), 'PROD deployment')} was approved at QA and PROD by "
            "the same person.",
            [r.link for r in one_person],
        )
    return passed(
        f"All {plural(len(deployed), 'PROD deployment')} passed QA and PROD approvals.",
        evidence,
    )


def check_traceable(ev: ModelEvidence) -> Outcome:
    if missing := ado_not_measured(ev):
        return missing
    deployed = ev.prod_deployments()
    if not deployed:
        return releases_unread(ev) or failed("No PROD deployment to trace.")
    if ev.is_rule_based:
        untraced = [r for r in deployed if not r.source_version]
        if untraced:
            return failed(
                f"{plural(len(untraced), 'PROD deployment')} records no commit.",
                [r.link for r in untraced],
            )
        return passed(
            f"All {plural(len(deployed), 'PROD deployment')} are pinned to a commit.",
            [r.link for r in deployed],
        )
    if missing := registry_not_measured(ev):
        return missing
    untraced, evidence = [], []
    for run in deployed:
        version = ev.versions.get(run.model_version_id)
        if version is None or not version.run_id or not version.tag(data_tags()):
            untraced.append(run)
        else:
            evidence += [run.link, version.link]
    if untraced:
        return failed(
            f"{plural(len(untraced), 'PROD deployment')} cannot be traced to a registered "
            "version with its MLflow run and data version.",
            [r.link for r in untraced],
        )
    return passed(
        f"All {plural(len(deployed), 'PROD deployment')} trace to a version, its run and its data.",
        evidence,
    )


LEVEL_3: tuple[CriterionDef, ...] = (
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
)
