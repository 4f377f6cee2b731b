from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        # Imports wait for ready(): the modules use models, which exist only once apps load.
        from django.db.models.signals import post_migrate

        from . import services

        post_migrate.connect(services.role_groups_ensure_after_migrate, sender=self)

        from django.contrib.auth.signals import user_logged_in

        from core.sessions import session_authenticated_at_mark

        user_logged_in.connect(
            session_authenticated_at_mark, weak=False, dispatch_uid="portal-auth-time"
        )

        from core.identity import delegated_token_provider_register

        from .entra import delegated_ado_token

        delegated_token_provider_register(delegated_ado_token)

        from axes.signals import user_locked_out

        user_locked_out.connect(
            services.sign_in_lockout_announce, weak=False, dispatch_uid="portal-sign-in-locked"
        )

        from . import token_admin  # noqa: F401 - registers API tokens in the admin (its docstring)


class PortalAdminConfig(AdminConfig):
    default_site = "portal.admin.PortalAdminSite"
