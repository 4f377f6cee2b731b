from django.apps import AppConfig
from django.db.models.signals import post_migrate, post_save


def _criteria_sync(sender, **kwargs) -> None:
    from . import services

    services.criteria_sync()


class MaturityConfig(AppConfig):
    name = "maturity"
    verbose_name = "Maturity"

    def ready(self) -> None:
        from approvals.models import ApprovalRequest
        from pipelines.signals import runs_changed
        from registry.signals import registered_models_changed

        from . import receivers

        post_migrate.connect(_criteria_sync, sender=self, dispatch_uid="maturity-criteria")
        runs_changed.connect(receivers.on_runs_changed, dispatch_uid="maturity-runs")
        post_save.connect(
            receivers.on_approval_saved, sender=ApprovalRequest, dispatch_uid="maturity-approvals"
        )
        registered_models_changed.connect(
            receivers.on_registered_models_changed, dispatch_uid="maturity-registry"
        )
