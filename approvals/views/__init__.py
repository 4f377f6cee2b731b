"""HTML views; each declares its access rule with core.access (``urls`` names them here).

``inbox_page`` (the inbox), ``detail_page`` (an approval, its decision box, deciding, an
admin's retry of a delivery), ``bulk_page`` (deciding several at once: the combined evidence,
the decision, its result), ``audit_page`` (the audit trail and its CSV), ``freeze_page``
(freeze windows, and their editing), ``signoff_page`` (closing a post-deployment sign-off);
``base`` what they share. A refusal the page does not
show in place is a ``core.errors.PortalError`` that the middleware renders as its error page.
"""

from .audit_page import audit, audit_csv
from .bulk_page import bulk, bulk_decide, bulk_result
from .detail_page import decide, decision_box, detail, outbox_retry
from .freeze_page import freeze_deactivate, freeze_delete, freeze_edit, freeze_new, freeze_page
from .inbox_page import inbox
from .signoff_page import signoff_close

__all__ = [
    "audit",
    "audit_csv",
    "bulk",
    "bulk_decide",
    "bulk_result",
    "decide",
    "decision_box",
    "detail",
    "freeze_deactivate",
    "freeze_delete",
    "freeze_edit",
    "freeze_new",
    "freeze_page",
    "inbox",
    "outbox_retry",
    "signoff_close",
]
