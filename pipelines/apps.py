from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Pipelines"

    def ready(self) -> None:
        # Here, not at the top: models (and the services importing them) load only once the
        # app registry is ready.
        from django.db.models.signals import post_delete, post_save

        from . import services
        from .models import AdoProject

        def schedule(sender, instance, **kwargs):
            services.project_schedule_ensure(project=instance)

        def unschedule(sender, instance, **kwargs):
            services.project_schedule_remove(project=instance)

        post_save.connect(
            schedule, sender=AdoProject, weak=False, dispatch_uid="pipelines-schedule"
        )
        post_delete.connect(
            unschedule, sender=AdoProject, weak=False, dispatch_uid="pipelines-unschedule"
        )
