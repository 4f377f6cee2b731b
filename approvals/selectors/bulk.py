"""The combined evidence screen of a bulk decision: per selected request its version, the
metrics against the champion (the comparison the approval page shows: ``champion_for`` and
``metric_deltas``), QA's outcome for PROD, and the decision rules that would refuse it for
this user (``services.decision_rules``, the very list the decision box shows).

The selection is read in a fixed number of queries, whatever its size: the requests with
their decisions, what runs now for all their models, and all their QA stages, at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Prefetch, Q

from pipelines.models import Environment, RunStage
from pipelines.selectors import deployments_for_catalog
from registry.models import ModelVersion

from ..models import ApprovalRequest, Decision
from ..services.batch_reads import batch_reads
from ..services.gates import qa_succeeded_key
from ..services.refusals import Rule
from ..services.rules import decision_rules
from .evidence import MetricDelta, champion_for, metric_deltas, qa_stage_order
from .inbox import approvals_base


@dataclass
class BulkRow:
    """One selected request as the combined screen shows it."""

    approval: ApprovalRequest
    champion: ModelVersion | None = None
    champion_target: str = ""
    metrics: list[MetricDelta] = field(default_factory=list)
    qa_stage: RunStage | None = None  # PROD: the QA stage that deployed the same version
    rules: list[Rule] = field(default_factory=list)

    @property
    def challenger(self) -> ModelVersion | None:
        return self.approval.model_version

    @property
    def refusing(self) -> list[Rule]:
        """The rules that refuse it (a stale sign-in only asks to confirm who you are)."""
        return [r for r in self.rules if not r.ok and r.code != "recent_sign_in"]

    @property
    def gated_only(self) -> bool:
        """Refused only by promotion gates (QA first, soak time, freeze windows): a
        rejection still goes through, as it does for one request."""
        return bool(self.refusing) and all(r.approve_only for r in self.refusing)

    @property
    def warnings(self) -> list[Rule]:
        return [r for r in self.rules if r.ok and r.warning]

    @property
    def decidable(self) -> bool:
        return bool(self.rules) and not self.refusing

    @property
    def worse(self) -> list[MetricDelta]:
        return [m for m in self.metrics if m.verdict == "worse"]


@dataclass
class BulkReview:
    rows: list[BulkRow]
    missing: list[int] = field(default_factory=list)  # ids asked for that do not exist

    @property
    def environments(self) -> dict[int, str]:
        return {row.approval.pk: row.approval.environment for row in self.rows}

    @property
    def environment(self) -> str:
        distinct = set(self.environments.values())
        return distinct.pop() if len(distinct) == 1 else ""

    @property
    def mixed(self) -> bool:
        return len(set(self.environments.values())) > 1

    @property
    def ids(self) -> list[int]:
        return [row.approval.pk for row in self.rows]

    @property
    def decidable(self) -> list[BulkRow]:
        return [row for row in self.rows if row.decidable]

    @property
    def refused(self) -> list[BulkRow]:
        return [row for row in self.rows if not row.decidable]

    @property
    def rejectable_only(self) -> list[BulkRow]:
        return [row for row in self.rows if row.gated_only]

    @property
    def needs_reauth(self) -> bool:
        return any(r.code == "recent_sign_in" and not r.ok for row in self.rows for r in row.rules)


def bulk_review(
    *, approval_ids: list[int], user, authenticated_at: datetime | None = None
) -> BulkReview:
    """The selected requests (in the order asked), each with its evidence and its rules."""
    approvals = {
        a.pk: a
        for a in approvals_base()
        .filter(pk__in=approval_ids)
        .select_related("stage")
        .prefetch_related(
            Prefetch(
                "decisions",
                queryset=Decision.objects.select_related("outbox", "user__entra_account").order_by(
                    "pk"
                ),
            )
        )
    }
    ordered = [approvals[pk] for pk in approval_ids if pk in approvals]
    deployments = deployments_for_catalog({a.catalog_model_id for a in ordered})
    qa = _QaStages([a for a in ordered if a.environment == Environment.PROD])
    # The rules' "QA first" answered from the same stages (one query for the selection).
    qa_known = {
        qa_succeeded_key(model_version_id=a.model_version_id, run_id=a.run_id): qa.succeeded(a)
        for a in ordered
        if a.environment == Environment.PROD
    }
    with batch_reads(known=qa_known):
        rows = [_row(approval, deployments, qa, user, authenticated_at) for approval in ordered]
    return BulkReview(rows=rows, missing=[pk for pk in approval_ids if pk not in approvals])


def _row(approval, deployments, qa: _QaStages, user, authenticated_at) -> BulkRow:
    """One request's evidence (what the approval page compares) and its rules."""
    row = BulkRow(approval=approval)
    row.champion, row.champion_target = champion_for(
        approval, deployments=deployments.get(approval.catalog_model_id, {})
    )
    if approval.model_version is not None:
        row.metrics = metric_deltas(approval.model_version, row.champion)
    if approval.environment == Environment.PROD:
        row.qa_stage = qa.best(approval)
    row.rules = decision_rules(approval=approval, user=user, authenticated_at=authenticated_at)
    return row


class _QaStages:
    """The QA stages of these PROD requests' versions or runs, best first (the order the
    approval page picks its QA outcome by): which ones match each request is read as plain
    values in one query, and only each request's best stage is loaded, in a second."""

    def __init__(self, approvals: list[ApprovalRequest]):
        versions = {a.model_version_id for a in approvals if a.model_version_id}
        runs = {a.run_id for a in approvals if a.run_id}
        rows = []
        if versions or runs:
            rows = list(
                RunStage.objects.filter(environment=Environment.QA)
                .filter(Q(run__model_version_id__in=versions) | Q(run_id__in=runs))
                .order_by(*qa_stage_order())
                .values_list("pk", "run_id", "run__model_version_id", "result")
            )
        self.by_version: dict[int, list[tuple[int, int, str]]] = {}
        self.by_run: dict[int, list[tuple[int, int, str]]] = {}
        for position, (pk, run_id, version_id, result) in enumerate(rows):
            if version_id is not None:
                self.by_version.setdefault(version_id, []).append((position, pk, result))
            self.by_run.setdefault(run_id, []).append((position, pk, result))
        best = {matches[0][1] for matches in (self._matches(a) for a in approvals) if matches}
        self.stages = RunStage.objects.select_related("run__pipeline").in_bulk(best)

    def _matches(self, approval: ApprovalRequest) -> list[tuple[int, int, str]]:
        """The approval page's match, best first: a run of the same version, or (and, for an
        unregistered model, only) the approval's own run."""
        found = {m[0]: m for m in (self.by_run.get(approval.run_id, []) if approval.run_id else [])}
        if approval.model_version_id is not None:
            found.update({m[0]: m for m in self.by_version.get(approval.model_version_id, [])})
        return [found[position] for position in sorted(found)]

    def succeeded(self, approval: ApprovalRequest) -> bool:
        """What the rule ``qa_first`` asks: a matching QA stage succeeded."""
        return any(result == "succeeded" for _, _, result in self._matches(approval))

    def best(self, approval: ApprovalRequest) -> RunStage | None:
        matches = self._matches(approval)
        return self.stages.get(matches[0][1]) if matches else None
