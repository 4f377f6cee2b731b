from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import metrics, selectors
from .access import PUBLIC, SIGNED_IN, access, roles
from .roles import Role, user_roles


@access(SIGNED_IN)  # users without a role must reach it to be told whom to ask
def home(request):
    held = user_roles(request.user)
    if not held:
        return render(request, "portal/no_role.html", status=403)
    return render(request, "portal/home.html", {"cards": selectors.home_cards(held, request.user)})


@access(PUBLIC)
@require_GET
@never_cache
def healthz(request):
    """Liveness: the process answers. Checks nothing else, so a slow DB never restarts it."""
    return JsonResponse({"status": "ok"})


@access(PUBLIC)
@require_GET
@never_cache
def readyz(request):
    ready, report = selectors.readiness()
    return JsonResponse(report, status=200 if ready else 503)


@access(roles(Role.ADMIN, bearer_token_setting="METRICS_TOKEN"))  # noqa: S106 (a setting name)
@require_GET
@never_cache
def metrics_view(request):
    body, content_type = metrics.render_latest()
    return HttpResponse(body, content_type=content_type)


class LoginView(auth_views.LoginView):
    portal_access = PUBLIC
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    portal_access = PUBLIC


class ReauthenticationForm(AuthenticationForm):
    """Password only: the signed-in user proves it is still them (no switching accounts)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That password is not right. Please try again.",
    }

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        del self.fields["username"]

    def clean(self):
        password = self.cleaned_data.get("password")
        if password:
            user = self.request.user
            self.user_cache = authenticate(
                self.request, username=user.get_username(), password=password
            )
            if self.user_cache is None or self.user_cache.pk != user.pk:
                raise forms.ValidationError(
                    self.error_messages["invalid_login"], code="invalid_login"
                )
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class ReauthenticateView(auth_views.LoginView):
    """Confirm the password of the signed-in user before a sensitive step (a PROD decision).

    Signing in again fires ``user_logged_in``, which refreshes the session's sign-in time
    (portal.services.session_authenticated_at_mark); ``next`` is followed only when safe.
    """

    portal_access = SIGNED_IN
    template_name = "registration/reauthenticate.html"
    form_class = ReauthenticationForm
    redirect_authenticated_user = False
