from functools import update_wrapper

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from core.roles import Role, user_has_role

NOT_AN_OPERATOR = "The admin is for operators (the admin role). Ask an administrator for it."


class PortalAdminSite(admin.AdminSite):
    """The admin is for operators: holders of the admin role (or superusers)."""

    site_header = "MLOps Portal administration"
    site_title = "MLOps Portal admin"
    index_title = "Operations"

    def has_permission(self, request) -> bool:
        return request.user.is_active and user_has_role(request.user, Role.ADMIN)

    def admin_view(self, view, cacheable=False):
        """Refuse signed-in non-operators with a 403 instead of a sign-in loop."""
        wrapped = super().admin_view(view, cacheable)

        def inner(request, *args, **kwargs):
            if request.user.is_authenticated and not self.has_permission(request):
                return render(request, "403.html", {"message": NOT_AN_OPERATOR}, status=403)
            return wrapped(request, *args, **kwargs)

        return update_wrapper(inner, wrapped)

    def login(self, request, extra_context=None):
        """One sign-in page for the whole portal."""
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = reverse("admin:index", current_app=self.name)
        if self.has_permission(request):
            return redirect(next_url)
        if request.user.is_authenticated:
            return render(request, "403.html", {"message": NOT_AN_OPERATOR}, status=403)
        return redirect_to_login(next_url, settings.LOGIN_URL)
