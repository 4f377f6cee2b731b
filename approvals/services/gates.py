"""The promotion gates: the rules about the version and the environment, not the person.

The decision box (``rules.decision_rules``) and the automated ADO check evaluate the same list,
so a refusal on the page and a failed check name the same rule with the same words.
Each gate is a function of (catalog_model, model_version, run, environment, now) returning
``Rule`` objects; ``environment_rules`` runs them in order.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from django.db.models import Q

from pipelines.models import Environment, RunStage

from .batch_reads import read_once
from .freeze import freeze_rule
from .policies import policy_gate_rules
from .refusals import Rule


def environment_rules(
    *, catalog_model, model_version, run, environment: str, now: datetime, policy=None
) -> list[Rule]:
    """Every gate that applies to promoting this version (or run) to ``environment`` now.
    ``policy``: the model's effective approval policy there, when the caller resolved it."""
    rules: list[Rule] = []
    if environment == Environment.PROD:
        rules.append(qa_first_rule(model_version=model_version, run=run))
    rules += policy_gate_rules(
        catalog_model=catalog_model,
        model_version=model_version,
        run=run,
        environment=environment,
        now=now,
        policy=policy,
    )
    if frozen := freeze_rule(catalog_model=catalog_model, environment=environment, now=now):
        rules.append(frozen)
    return [replace(rule, approve_only=True) for rule in rules]


def qa_first_rule(*, model_version, run) -> Rule:
    """PROD only: QA succeeded for the same version first."""
    qa_ok = qa_succeeded_for(
        model_version_id=getattr(model_version, "pk", None), run_id=getattr(run, "pk", None)
    )
    return Rule(
        "qa_first",
        qa_ok,
        "QA succeeded for this version."
        if qa_ok
        else "PROD can be approved only after QA succeeded for the same version.",
    )


def qa_succeeded_for(*, model_version_id: int | None, run_id: int | None) -> bool:
    """QA went through: this run's QA stage, or (for a registered version) any run's QA stage
    that deployed it."""
    return read_once(
        qa_succeeded_key(model_version_id=model_version_id, run_id=run_id),
        lambda: _qa_succeeded_read(model_version_id=model_version_id, run_id=run_id),
    )


def qa_succeeded_key(*, model_version_id: int | None, run_id: int | None) -> tuple:
    """The ``batch_reads`` key of a QA outcome (the bulk screen reads them all at once)."""
    return ("qa_succeeded", model_version_id, run_id)


def _qa_succeeded_read(*, model_version_id: int | None, run_id: int | None) -> bool:
    stages = RunStage.objects.filter(environment=Environment.QA, result="succeeded")
    if model_version_id:
        match = Q(run__model_version_id=model_version_id)
        if run_id:
            match |= Q(run_id=run_id)
        return stages.filter(match).exists()
    if run_id:
        return stages.filter(run_id=run_id).exists()
    return False
