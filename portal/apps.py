from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import services

        post_migrate.connect(services.role_groups_ensure_after_migrate, sender=self)


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin.PortalAdminSite"
