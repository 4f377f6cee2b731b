"""What every criterion is made of: its ``Outcome``, its definition (``CriterionDef``), and the
helpers the checks share (windows, reasons and triggers, the tags settings name)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings

from ..evidence import Link, ModelEvidence, RunFact
from ..models import Applicability, Result

# ADO build reasons (BuildReason, as the REST API spells them), compared lower-cased.
CI_REASONS = {"individualci", "batchedci", "pullrequest"}
AUTOMATIC_REASONS = {"schedule", "resourcetrigger", "buildcompletion", "individualci", "batchedci"}
DATA_REASONS = {"resourcetrigger", "buildcompletion"}
# The workflow's own words for why a run ran (pipelines' ``trigger``; docs/pipelines.md).
AUTOMATIC_TRIGGERS = {"schedule", "new-data", "data-arrival", "data_arrival", "drift", "threshold"}
DATA_TRIGGERS = {"new-data", "data-arrival", "data_arrival"}
MONITORING_TRIGGERS = {"drift", "threshold"}
MAX_EVIDENCE = 5


class Strength:
    """How strong a passed criterion's evidence is (levels 4 and 5, where it can differ).

    ``SEEN``: the portal saw it happen (an operations episode a signal started, monitoring
    heard from). ``DECLARED``: only what a run says of itself (its ``trigger`` parameter or
    ADO's build reason): it still counts, labelled as weaker evidence."""

    SEEN = "seen"
    DECLARED = "declared"


DECLARED_BY_PARAMETER = "declared by a run parameter, not seen by the portal"
DECLARED_BY_REASON = "declared by ADO's build reason, not seen by the portal"


@dataclass
class Outcome:
    result: str
    summary: str
    evidence: list[Link] = field(default_factory=list)
    strength: str = ""  # a Strength value where the criterion weighs its evidence, else ""
    measure: dict | None = None  # the measured figures (e.g. the data lag), where there are

    def as_dict(self) -> dict:
        found = {
            "result": self.result,
            "summary": self.summary,
            "evidence": [link.as_dict() for link in self.evidence[:MAX_EVIDENCE]],
        }
        if self.strength:
            found["evidence_strength"] = self.strength
        if self.measure is not None:
            found["measure"] = self.measure
        return found


def passed(summary: str, evidence=(), *, strength: str = "", measure=None) -> Outcome:
    return Outcome(Result.PASSED, summary, list(evidence), strength, measure)


def failed(summary: str, evidence=(), *, measure=None) -> Outcome:
    return Outcome(Result.FAILED, summary, list(evidence), measure=measure)


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


# Helpers the checks share ------------------------------------------------------------------


def setting(name: str, default):
    return getattr(settings, name, default)


def days_of(ev: ModelEvidence) -> int:
    return (ev.now - ev.window_start).days


def ado_not_measured(ev: ModelEvidence) -> Outcome | None:
    if not ev.sources.ado:
        return not_measured("No Azure DevOps project has been synced yet, so runs are unknown.")
    return None


def registry_not_measured(ev: ModelEvidence) -> Outcome | None:
    if not ev.sources.registry:
        return not_measured("No registry source has been synced yet, so versions are unknown.")
    return None


def train_kind(ev: ModelEvidence) -> str:
    """The pipeline kind that trains the model, and the word for it in summaries."""
    return "scoring" if ev.is_rule_based else "training"


def is_automatic(run: RunFact) -> bool:
    return run.reason.lower() in AUTOMATIC_REASONS or run.trigger.lower() in AUTOMATIC_TRIGGERS


def is_data_triggered(run: RunFact) -> bool:
    return run.reason.lower() in DATA_REASONS or run.trigger.lower() in DATA_TRIGGERS


def is_monitoring_triggered(run: RunFact) -> bool:
    return run.trigger.lower() in MONITORING_TRIGGERS


def commit_tags() -> list[str]:
    return setting("MATURITY_COMMIT_TAGS", ["mlflow.source.git.commit", "git_commit"])


def data_tags() -> list[str]:
    return setting("MATURITY_DATA_TAGS", ["data_snapshot", "data_version", "dataset_version"])


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def releases_unread(ev: ModelEvidence) -> Outcome | None:
    """Release runs whose stages are not read yet may have reached PROD: not measured."""
    unread = [r for r in ev.runs_of("release") if not r.timeline_synced]
    if unread:
        return not_measured(
            f"The stages of {plural(len(unread), 'release run')} have not been read yet."
        )
    return None
