"""The promotion gates: the rules about the version and the environment, not the person.

The decision box (``rules.decision_rules``) and the automated ADO check evaluate the same list,
so a refusal on the page and a failed check name the same rule with the same words.
Each gate is a function of (catalog_model, model_version, run, environment, now) returning
``Rule`` objects; ``environment_rules`` runs them in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime

from django.db.models import Q

from pipelines.models import Environment, RunStage

from .freeze import freeze_rule
from .policies import policy_gate_rules
from .refusals import Rule


def environment_rules(
    *, catalog_model, model_version, run, environment: str, now: datetime
) -> list[Rule]:
    """Every gate that applies to promoting this version (or run) to ``environment`` now."""
    rules: list[Rule] = []
    if environment == Environment.PROD:
        rules.append(qa_first_rule(model_version=model_version, run=run))
    rules += policy_gate_rules(
        catalog_model=catalog_model,
        model_version=model_version,
        run=run,
        environment=environment,
        now=now,
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


# (model_version_id, run_id) -> QA went through, read beforehand for many requests at once.
_qa_known: ContextVar[dict | None] = ContextVar("approvals_qa_known", default=None)


@contextmanager
def qa_outcomes_known(known: dict[tuple[int | None, int | None], bool]) -> Iterator[None]:
    """Evaluate the rules of many requests with their QA outcomes read in one query (the bulk
    evidence screen): inside, ``qa_succeeded_for`` answers the pairs in ``known`` from it.
    Only for reading: a decision re-reads it (``approval_decide``)."""
    token = _qa_known.set(known)
    try:
        yield
    finally:
        _qa_known.reset(token)


def qa_succeeded_for(*, model_version_id: int | None, run_id: int | None) -> bool:
    """QA went through: this run's QA stage, or (for a registered version) any run's QA stage
    that deployed it."""
    known = _qa_known.get()
    if known is not None and (model_version_id, run_id) in known:
        return known[(model_version_id, run_id)]
    stages = RunStage.objects.filter(environment=Environment.QA, result="succeeded")
    if model_version_id:
        match = Q(run__model_version_id=model_version_id)
        if run_id:
            match |= Q(run_id=run_id)
        return stages.filter(match).exists()
    if run_id:
        return stages.filter(run_id=run_id).exists()
    return False
