"""The demo's Azure DevOps project: the ADO simulator's project mirrored as ``demo``
(``manage.py demo`` boots the simulator, then calls this)."""

from __future__ import annotations

from . import services
from .models import AdoProject

PROJECT_NAME = "demo"  # the portal's name for it (its service-hook URL ends with it)
ADO_PROJECT = "MLOps"  # the simulator's project


def mirror_simulator(org_url: str) -> tuple[AdoProject, services.SyncResult]:
    """Point the demo project at the simulator's organisation and run its first full sync.

    Synced often (every 30 s) once created, since the simulator's runs move in real time.
    """
    project, _ = AdoProject.objects.update_or_create(
        name=PROJECT_NAME,
        defaults={"organization_url": org_url, "project": ADO_PROJECT, "enabled": True},
        create_defaults={
            "organization_url": org_url,
            "project": ADO_PROJECT,
            "sync_interval_seconds": 30,
        },
    )
    return project, services.project_sync(project=project, full=True)
