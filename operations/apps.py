from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from .models import MatchRule, TriggerPolicy
        from .services import config_cache

        # Each process keeps a copy of the policies and rules (config_cache): drop it on change.
        for model in (TriggerPolicy, MatchRule):
            post_save.connect(config_cache.changed, sender=model, dispatch_uid=f"ops-{model}-s")
            post_delete.connect(config_cache.changed, sender=model, dispatch_uid=f"ops-{model}-d")
