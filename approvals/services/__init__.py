"""Everything that changes approvals: the ADO sync, decisions, the outbox, the audit trail,
notifications. Functions are keyword-only and named <entity>_<action>; callers use
``from approvals import services`` and the names below (each module says what it owns).

The two promises (docs/approvals.md):
- a decision is written, with its outbox message and audit row, in one transaction before
  anything is sent; refusals are audited too, in their own transaction (``decisions``);
- delivery is at least once and applied once: the deliverer claims the message, reads the
  approval in ADO, and PATCHes only if ADO does not already have the decision (``delivery``).

Modules, from the bottom: ``audit`` (the trail), ``identity`` (whose identity a decision goes
under), ``rules`` (who may decide; the refusals), ``mirror`` (ADO's JSON into the mirror),
``sync`` (polls and hooks), ``outbox`` (queueing deliveries), ``delivery`` (one attempt),
``decisions``, ``bulk`` (several at once, each through ``decisions``), ``signins`` (sign-in
audit receivers), ``schedules``, ``notifications``; ``leases`` (the claim both outboxes use),
``check`` and ``check_callback`` (the automated ADO check: ADO's call, its evaluation, the
TaskCompleted callback); ``policies`` (approval policies per environment and their rules;
``gates`` and ``rules`` add them), ``signoffs`` (post-deployment sign-offs), ``policy_edits``
(audited policy changes); ``freeze`` (freeze windows: the gate, the audited edits).
"""

from .api_access import api_access_audit
from .audit import (
    DELIVERY_ACTOR,
    PORTAL_MARK,
    SYSTEM_ACTOR,
    approval_model_name,
    audit_record,
    user_display_name,
    user_identities,
)
from .bulk import BulkOutcome, approvals_decide_bulk, bulk_environment_check, bulk_ids_clean
from .check import (
    CheckCall,
    challenger_rule,
    check_evaluate,
    check_receive,
    check_rules,
    check_token_decrypt,
    check_token_encrypt,
)
from .check_callback import check_callback_deliver, checks_sweep
from .decisions import (
    approval_decide,
    decision_input_check,
    decision_refusal_record,
    decision_role_check,
    decision_token_check,
)
from .delivery import DeliveryOutcome, delivery_backoff, outbox_deliver
from .freeze import EDITABLE_FIELDS as FREEZE_EDITABLE_FIELDS
from .freeze import (
    freeze_message,
    freeze_rule,
    freeze_window_create,
    freeze_window_delete,
    freeze_window_snapshot,
    freeze_window_update,
    freeze_windows_in_scope,
)
from .identity import decision_sent_as_portal, delivers_with_portal_identity
from .mirror import approval_apply
from .notifications import (
    approval_recipients,
    notifications_send_expiring,
    notifications_send_new,
)
from .outbox import outbox_enqueue, outbox_requeue_after_sign_in, outbox_retry, outbox_sweep
from .policies import (
    POLICY_DEFAULTS,
    EffectivePolicy,
    approval_policy_for,
    maturity_level_of,
    register_maturity_level_source,
)
from .policy_edits import (
    POLICY_EDITOR_ROLES,
    PolicyEditRefused,
    policy_delete,
    policy_edit_check,
    policy_save,
    policy_snapshot,
)
from .rules import (
    CONFLICT_RULES,
    HUMAN_DECISION_REQUIRED,
    NOT_AN_APPROVER,
    DecisionRefused,
    ReauthenticationRequired,
    Rule,
    decision_rules,
    qa_succeeded,
    reauthenticate_url,
)
from .schedules import hook_received, projects_sync_enqueue
from .signins import sign_in_audit, sign_in_denied_audit, sign_in_failed_audit, sign_out_audit
from .signoffs import (
    signoff_close,
    signoff_close_rules,
    signoff_notify,
    signoffs_on_runs_changed,
    signoffs_open,
)
from .sync import SyncResult, approval_gone, approval_refresh, project_approvals_sync

__all__ = [
    "CONFLICT_RULES",
    "DELIVERY_ACTOR",
    "FREEZE_EDITABLE_FIELDS",
    "HUMAN_DECISION_REQUIRED",
    "NOT_AN_APPROVER",
    "POLICY_DEFAULTS",
    "POLICY_EDITOR_ROLES",
    "PORTAL_MARK",
    "SYSTEM_ACTOR",
    "BulkOutcome",
    "CheckCall",
    "DecisionRefused",
    "DeliveryOutcome",
    "EffectivePolicy",
    "PolicyEditRefused",
    "ReauthenticationRequired",
    "Rule",
    "SyncResult",
    "api_access_audit",
    "approval_apply",
    "approval_decide",
    "approval_gone",
    "approval_model_name",
    "approval_policy_for",
    "approval_recipients",
    "approval_refresh",
    "approvals_decide_bulk",
    "audit_record",
    "bulk_environment_check",
    "bulk_ids_clean",
    "challenger_rule",
    "check_callback_deliver",
    "check_evaluate",
    "check_receive",
    "check_rules",
    "check_token_decrypt",
    "check_token_encrypt",
    "checks_sweep",
    "decision_input_check",
    "decision_refusal_record",
    "decision_role_check",
    "decision_rules",
    "decision_sent_as_portal",
    "decision_token_check",
    "delivers_with_portal_identity",
    "delivery_backoff",
    "freeze_message",
    "freeze_rule",
    "freeze_window_create",
    "freeze_window_delete",
    "freeze_window_snapshot",
    "freeze_window_update",
    "freeze_windows_in_scope",
    "hook_received",
    "maturity_level_of",
    "notifications_send_expiring",
    "notifications_send_new",
    "outbox_deliver",
    "outbox_enqueue",
    "outbox_requeue_after_sign_in",
    "outbox_retry",
    "outbox_sweep",
    "policy_delete",
    "policy_edit_check",
    "policy_save",
    "policy_snapshot",
    "project_approvals_sync",
    "projects_sync_enqueue",
    "qa_succeeded",
    "reauthenticate_url",
    "register_maturity_level_source",
    "sign_in_audit",
    "sign_in_denied_audit",
    "sign_in_failed_audit",
    "sign_out_audit",
    "signoff_close",
    "signoff_close_rules",
    "signoff_notify",
    "signoffs_on_runs_changed",
    "signoffs_open",
    "user_display_name",
    "user_identities",
]
