from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # Imported here, not at the top: the services import models, which Django loads only
        # once every app is registered (ready() is the first moment that is true).
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from core.signals import api_access_event, sign_in_denied
        from pipelines.signals import hook_received, runs_changed

        from . import services

        hook_received.connect(
            services.hook_received, weak=False, dispatch_uid="approvals-hook-received"
        )
        # A PROD deployment that succeeded opens its post-deployment sign-off when its policy
        # asks for one (docs/approvals.md "Policies").
        runs_changed.connect(
            services.signoffs_on_runs_changed, weak=False, dispatch_uid="approvals-signoffs"
        )
        # Sign-ins, sign-outs and refused attempts go to the audit trail; a sign-in also
        # sends the person's decisions that waited for it (docs/approvals.md).
        user_logged_in.connect(services.sign_in_audit, weak=False, dispatch_uid="approvals-sign-in")
        user_logged_out.connect(
            services.sign_out_audit, weak=False, dispatch_uid="approvals-sign-out"
        )
        user_login_failed.connect(
            services.sign_in_failed_audit, weak=False, dispatch_uid="approvals-sign-in-failed"
        )
        sign_in_denied.connect(
            services.sign_in_denied_audit, weak=False, dispatch_uid="approvals-sign-in-denied"
        )
        # API tokens made, revoked, used (once a minute) and refused (docs/api-access.md).
        api_access_event.connect(
            services.api_access_audit, weak=False, dispatch_uid="approvals-api-access"
        )
