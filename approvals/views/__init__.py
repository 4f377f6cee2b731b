"""HTML views; each declares its access rule with core.access (``urls`` names them here).

``inbox_page`` (the inbox), ``detail_page`` (an approval, its decision box, deciding, an
admin's retry of a delivery), ``audit_page`` (the audit trail and its CSV); ``base`` what they
share. A refusal the page does not show in place is a ``core.errors.PortalError`` that the
middleware renders as its error page.
"""

from .audit_page import audit, audit_csv
from .detail_page import decide, decision_box, detail, outbox_retry
from .inbox_page import inbox
from .signoff_page import signoff_close

__all__ = [
    "audit",
    "audit_csv",
    "decide",
    "decision_box",
    "detail",
    "inbox",
    "outbox_retry",
    "signoff_close",
]
