"""Approvals: QA and PROD approval requests, decisions, the outbox that delivers them
to ADO, and the audit trail."""
