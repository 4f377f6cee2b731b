from django.contrib.auth import views as auth_views
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
    return render(request, "portal/home.html", {"cards": selectors.home_cards(held)})


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
