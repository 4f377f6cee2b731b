"""Signals the pipelines app sends, so higher apps can react without importing upward."""

from django.dispatch import Signal

# Sent after commit when the ADO hook endpoint accepted a new (not duplicate) delivery:
# kwargs project (AdoProject), event_type (str), resource (dict, untrusted: a trigger only).
hook_received = Signal()

# Sent when a sync that created or changed runs (or their stages) finished, inside the
# caller's transaction if there is one (receivers write to the database, nothing slower):
# kwargs project (AdoProject), run_ids (PipelineRun pks).
runs_changed = Signal()
