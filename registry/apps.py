from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Registry"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

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
