"""The evidence and the rules in an approval's detail (what the page shows, as JSON)."""

from __future__ import annotations

from rest_framework import serializers

from pipelines.models import Environment
from registry.serializers import FiniteJSONField, MetricValueField

from .. import selectors
from ..models import (
    ApprovalRequest,
)
from .links import (
    ApprovalRunLinkSerializer,
    ApprovalVersionLinkSerializer,
    approval_page_url,
    run_link,
    version_link,
)


class RuleSerializer(serializers.Serializer):
    code = serializers.CharField()
    ok = serializers.BooleanField(help_text="False: this rule stops you from deciding.")
    message = serializers.CharField()
    warning = serializers.BooleanField(
        default=False, help_text="Met, but worth saying (a soak time in warn mode)."
    )
    until = serializers.DateTimeField(
        allow_null=True,
        default=None,
        help_text="When a rule that waits stops refusing (a soak time's end), else null.",
    )
    approve_only = serializers.BooleanField(
        default=False,
        help_text="A gate on promotion (QA first, soak time, freeze window, minimum maturity): "
        "when not ok it refuses an approval, never a rejection.",
    )


class MetricDeltaSerializer(serializers.Serializer):
    name = serializers.CharField()
    challenger = FiniteJSONField(help_text="This version's value.")
    champion = FiniteJSONField(help_text="The value of the version now in the environment.")
    delta = MetricValueField(allow_null=True, help_text="challenger - champion.")
    lower_is_better = serializers.BooleanField()
    verdict = serializers.CharField(help_text="better, worse, same, or empty (not comparable).")


class QaStageSerializer(serializers.Serializer):
    name = serializers.CharField()
    state = serializers.CharField()
    result = serializers.CharField()
    finished_at = serializers.DateTimeField(allow_null=True)
    run = ApprovalRunLinkSerializer()


class QaApprovalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    decided_by = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    url = serializers.CharField()


class QaOutcomeSerializer(serializers.Serializer):
    succeeded = serializers.BooleanField(help_text="QA succeeded for the same version.")
    stage = QaStageSerializer(allow_null=True)
    approval = QaApprovalSerializer(allow_null=True)


class EvidenceSerializer(serializers.Serializer):
    challenger = ApprovalVersionLinkSerializer(
        allow_null=True, help_text="The version asking to go."
    )
    champion = ApprovalVersionLinkSerializer(allow_null=True, help_text="The version there now.")
    champion_target = serializers.CharField()
    metrics = MetricDeltaSerializer(many=True)
    qa_outcome = QaOutcomeSerializer(allow_null=True, help_text="PROD only.")
    training_run = ApprovalRunLinkSerializer(allow_null=True)
    lineage_tags = serializers.DictField(child=serializers.CharField())
    scoring_runs = ApprovalRunLinkSerializer(
        many=True, help_text="For a model with no registered version: its scoring results."
    )


def evidence_data(approval: ApprovalRequest, evidence: selectors.Evidence, qa_ok: bool) -> dict:
    qa_outcome = None
    if approval.environment == Environment.PROD:
        stage, qa_approval = evidence.qa_stage, evidence.qa_approval
        qa_outcome = {
            "succeeded": qa_ok,
            "stage": None
            if stage is None
            else {
                "name": stage.name,
                "state": stage.state,
                "result": stage.result,
                "finished_at": stage.finished_at,
                "run": run_link(stage.run),
            },
            "approval": None
            if qa_approval is None
            else {
                "id": qa_approval.pk,
                "status": qa_approval.status,
                "decided_by": qa_approval.decided_by,
                "decided_at": qa_approval.decided_at,
                "url": approval_page_url(qa_approval.pk),
            },
        }
    return {
        "challenger": version_link(evidence.challenger),
        "champion": version_link(evidence.champion),
        "champion_target": evidence.champion_target,
        "metrics": [vars(m) for m in evidence.metrics],
        "qa_outcome": qa_outcome,
        "training_run": run_link(evidence.training_run),
        "lineage_tags": {k: str(v) for k, v in evidence.lineage_tags.items()},
        "scoring_runs": [run_link(r) for r in evidence.scoring_runs],
    }
