from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from pipelines.signals import hook_received

        from . import services

        hook_received.connect(
            services.hook_received, weak=False, dispatch_uid="approvals-hook-received"
        )
