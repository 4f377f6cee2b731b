from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registry"

    def ready(self) -> None:
        """Keep each source's beat entries in line with the source (saved or deleted)."""
        # Here, not at the top: the services import the models, which need the app registry.
        from . import services
        from .models import RegistrySource

        def schedule(sender, instance, **kwargs):
            services.source_schedule_ensure(source=instance)

        def unschedule(sender, instance, **kwargs):
            services.source_schedule_remove(source=instance)

        post_save.connect(
            schedule, sender=RegistrySource, weak=False, dispatch_uid="registry-schedule"
        )
        post_delete.connect(
            unschedule, sender=RegistrySource, weak=False, dispatch_uid="registry-unschedule"
        )
