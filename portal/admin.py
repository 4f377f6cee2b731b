from django.contrib import admin

from .roles import Role, user_has_role


class PortalAdminSite(admin.AdminSite):
    """The admin is for operators: holders of the admin role (or superusers)."""

    site_header = "MLOps Portal administration"
    site_title = "MLOps Portal admin"
    index_title = "Operations"

    def has_permission(self, request) -> bool:
        return request.user.is_active and user_has_role(request.user, Role.ADMIN)

    def login(self, request, extra_context=None):
        """One sign-in page for the whole portal; signed-in non-operators are refused."""
        from django.conf import settings
        from django.contrib.auth.views import redirect_to_login
        from django.shortcuts import render
        from django.urls import reverse

        if request.user.is_authenticated:
            message = "The admin is for operators (admin role). Ask an administrator for it."
            return render(request, "403.html", {"message": message}, status=403)
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return redirect_to_login(next_url, settings.LOGIN_URL)
