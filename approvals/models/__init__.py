"""The approvals app's models: one module per concern, all importable from here.

``base``: approval requests mirrored from ADO, decisions, the outbox, the audit trail,
notifications, the sync's bookkeeping and promotion policies.
``freeze``: freeze windows (allow and deny windows as recurrence rules).
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
from .freeze import FreezeKind, FreezeScope, FreezeWindow

__all__ = [
    "OPEN_STATUSES",
    "OUTBOX_FINAL_STATES",
    "ApprovalRequest",
    "ApprovalStatus",
    "ApprovalSync",
    "AuditAction",
    "AuditEvent",
    "DecidedIn",
    "Decision",
    "DecisionStatus",
    "FreezeKind",
    "FreezeScope",
    "FreezeWindow",
    "Notification",
    "NotificationKind",
    "OutboxMessage",
    "OutboxState",
    "PromotionPolicy",
]
