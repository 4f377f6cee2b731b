"""The approvals app's models: one module per concern, all importable from here.

``base``: approval requests mirrored from ADO, decisions, the outbox, the audit trail,
notifications, the sync's bookkeeping and promotion policies. ``checks``: the automated ADO
check's requests, evaluations and callbacks. ``policies``: approval policies per environment
and the post-deployment sign-offs they ask for. ``freeze``: freeze windows (allow and deny
windows as recurrence rules). ``marks``: what the pages mark on a request (a high-risk model's
number of approvers, a rollback).
"""

from .base import (
    OPEN_STATUSES,
    OUTBOX_FINAL_STATES,
    ApprovalRequest,
    ApprovalStatus,
    ApprovalSync,
    AuditAction,
    AuditEvent,
    DecidedIn,
    Decision,
    DecisionStatus,
    Notification,
    NotificationKind,
    OutboxMessage,
    OutboxState,
    PromotionPolicy,
)
from .checks import CallbackState, CheckCallback, CheckEvaluation, CheckRequest, CheckResult
from .freeze import FreezeKind, FreezeScope, FreezeWindow
from .policies import (
    HIGH_RISK_MIN_APPROVERS_DEFAULT,
    POLICY_EDITABLE_FIELDS,
    ApprovalPolicy,
    ExecutionOrder,
    PolicyScope,
    SignOff,
    SignOffStatus,
    SoakMode,
)

__all__ = [
    "HIGH_RISK_MIN_APPROVERS_DEFAULT",
    "OPEN_STATUSES",
    "OUTBOX_FINAL_STATES",
    "POLICY_EDITABLE_FIELDS",
    "ApprovalPolicy",
    "ApprovalRequest",
    "ApprovalStatus",
    "ApprovalSync",
    "AuditAction",
    "AuditEvent",
    "CallbackState",
    "CheckCallback",
    "CheckEvaluation",
    "CheckRequest",
    "CheckResult",
    "DecidedIn",
    "Decision",
    "DecisionStatus",
    "ExecutionOrder",
    "FreezeKind",
    "FreezeScope",
    "FreezeWindow",
    "Notification",
    "NotificationKind",
    "OutboxMessage",
    "OutboxState",
    "PolicyScope",
    "PromotionPolicy",
    "SignOff",
    "SignOffStatus",
    "SoakMode",
]
