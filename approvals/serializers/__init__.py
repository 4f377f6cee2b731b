"""DRF serializers of this app's API: approvals (list, detail with evidence, rules and
decisions), a decision and its delivery state, the audit trail, and the query filters.
``inputs`` (bodies, filters, the error body), ``links``, ``evidence``, ``records``, ``bulk``
(deciding several at once)."""

from .bulk import BulkDecisionInputSerializer, BulkDecisionResultSerializer, BulkOutcomeSerializer
from .evidence import (
    EvidenceSerializer,
    MetricDeltaSerializer,
    QaApprovalSerializer,
    QaOutcomeSerializer,
    QaStageSerializer,
    RuleSerializer,
    evidence_data,
)
from .inputs import (
    DECIDED_STATUSES,
    ApprovalFilterSerializer,
    ApprovalsErrorSerializer,
    ApproveInputSerializer,
    AuditFilterSerializer,
    DecisionInputSerializer,
    RejectInputSerializer,
)
from .links import (
    ApprovalRunLinkSerializer,
    ApprovalVersionLinkSerializer,
    approval_page_url,
    run_link,
    version_link,
)
from .records import (
    ApprovalDetailSerializer,
    ApprovalListSerializer,
    AuditEventSerializer,
    DecisionSerializer,
    DecisionSummarySerializer,
    DeliverySerializer,
    OutboxMessageSerializer,
)

__all__ = [
    "DECIDED_STATUSES",
    "ApprovalDetailSerializer",
    "ApprovalFilterSerializer",
    "ApprovalListSerializer",
    "ApprovalRunLinkSerializer",
    "ApprovalVersionLinkSerializer",
    "ApprovalsErrorSerializer",
    "ApproveInputSerializer",
    "AuditEventSerializer",
    "AuditFilterSerializer",
    "BulkDecisionInputSerializer",
    "BulkDecisionResultSerializer",
    "BulkOutcomeSerializer",
    "DecisionInputSerializer",
    "DecisionSerializer",
    "DecisionSummarySerializer",
    "DeliverySerializer",
    "EvidenceSerializer",
    "MetricDeltaSerializer",
    "OutboxMessageSerializer",
    "QaApprovalSerializer",
    "QaOutcomeSerializer",
    "QaStageSerializer",
    "RejectInputSerializer",
    "RuleSerializer",
    "approval_page_url",
    "evidence_data",
    "run_link",
    "version_link",
]
