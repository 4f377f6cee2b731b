from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save

from pipelines.signals import runs_changed
from registry.signals import registered_models_changed


def _criteria_sync(sender, **kwargs) -> None:
    # Here, not at the top: apps.py is imported before any model can be (the app registry).
    from . import services

    services.criteria_sync()


class MaturityConfig(AppConfig):
    name = "maturity"
    verbose_name = "Maturity"

    def ready(self) -> None:
        """Re-assess on what changes a model's evidence: runs, approvals, registered models,
        closed operations episodes."""
        # Here, not at the top: these import models, which need the app registry ready.
        from approvals import services as approvals_services
        from approvals.models import ApprovalRequest
        from operations.models import Episode

        from . import receivers, selectors

        # Approvals' minimum-maturity gate reads the level through this hook (approvals is
        # below maturity and may not import it).
        approvals_services.register_maturity_level_source(selectors.current_level)

        post_migrate.connect(_criteria_sync, sender=self, dispatch_uid="maturity-criteria")
        runs_changed.connect(receivers.on_runs_changed, dispatch_uid="maturity-runs")
        post_save.connect(
            receivers.on_approval_saved, sender=ApprovalRequest, dispatch_uid="maturity-approvals"
        )
        post_save.connect(
            receivers.on_episode_saved, sender=Episode, dispatch_uid="maturity-episodes"
        )
        registered_models_changed.connect(
            receivers.on_registered_models_changed, dispatch_uid="maturity-registry"
        )
