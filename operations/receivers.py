"""Follow episodes when what they wait for changes: a run (pipelines' ``runs_changed``), a
version (the registry's ``registered_models_changed``), an approval (saved). Connected in
``OperationsConfig.ready``; each receiver only marks the episodes concerned and queues the
follow task after commit, so a sync never waits on this app."""

from __future__ import annotations


def connect() -> None:
    pass
