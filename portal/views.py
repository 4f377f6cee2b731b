import logging
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET

from core.access import PUBLIC, SIGNED_IN, access, roles
from core.home import home_cards
from core.roles import Role, user_roles
from core.signals import sign_in_denied

from . import entra, metrics, selectors

logger = logging.getLogger(__name__)


def no_role_context(request) -> dict:
    return {
        "role_contact": settings.PORTAL_ROLE_CONTACT,
        "entra_user": entra.signed_in_with_entra(request),
        "entra_role_values": sorted(settings.ENTRA_ROLE_CLAIMS),
    }


@access(SIGNED_IN)  # users without a role must reach it to be told whom to ask
def home(request):
    held = user_roles(request.user)
    if not held:
        return render(request, "portal/no_role.html", no_role_context(request), status=403)
    return render(request, "portal/home.html", {"cards": home_cards(held, request.user)})


@access(PUBLIC)
@require_GET
@never_cache
def healthz(request):
    """Liveness: the process answers. Checks nothing else, so a slow DB never restarts it."""
    return JsonResponse({"status": "ok"})


@access(PUBLIC)
@require_GET
@cache_control(max_age=86400, public=True)
def favicon(request):
    """Browsers ask for /favicon.ico on their own: send them to the portal's icon."""
    return HttpResponsePermanentRedirect(static("favicon.ico"))


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
    """The sign-in page: "Sign in with Microsoft" when Entra ID is configured, and the local
    user name and password form unless production switched local accounts off."""

    portal_access = PUBLIC
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if not entra.local_accounts_enabled():
            logger.warning("Refused a local password sign-in: local accounts are switched off")
            context = self.get_context_data(form=self.get_form_class()(request))
            context["local_refused"] = True
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["entra_enabled"] = entra.is_enabled()
        context["local_accounts_enabled"] = entra.local_accounts_enabled()
        next_url = context.get("next") or ""
        context["entra_sign_in_url"] = reverse("entra-sign-in") + (
            "?" + urlencode({"next": next_url}) if next_url else ""
        )
        return context


class LogoutView(auth_views.LogoutView):
    """Sign-out: ends the portal session; someone who signed in with Entra ID then goes to
    Entra's end-session endpoint, which sends them back to the sign-in page."""

    portal_access = PUBLIC

    def post(self, request, *args, **kwargs):
        via_entra = entra.signed_in_with_entra(request)
        logout_hint = request.session.get(entra.LOGOUT_HINT_SESSION_KEY)
        entra.forget_session(request.session.session_key)
        response = super().post(request, *args, **kwargs)
        if not via_entra:
            return response
        back = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
        return redirect(entra.end_session_url(back, logout_hint))


def sign_in_locked_out(request, original_response=None, credentials=None):
    """What a locked-out sign-in answers (django-axes' AXES_LOCKOUT_CALLABLE): the page the
    person was on, the sign-in form or the password confirmation, saying why and for how
    long, with 429 Too Many Requests."""
    match = getattr(request, "resolver_match", None)
    view_class = ReauthenticateView if match and match.url_name == "reauthenticate" else LoginView
    view = view_class()
    view.setup(request)
    context = view.get_context_data(form=view.get_form_class()(request))
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    context["locked_out_message"] = (
        f"Too many failed sign-ins from your address. Signing in is locked for {minutes} "
        "minutes; try again later, or ask an administrator to unlock it."
    )
    return render(request, view.template_name, context, status=429)


def _safe_next(request, next_url: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return ""


@access(PUBLIC)
@require_GET
@never_cache
def entra_sign_in(request):
    """Send the browser to Entra ID. ``fresh=1`` (a signed-in user confirming it is them)
    asks Entra for a new sign-in (``prompt=login``, ``max_age=0``), which msal checks."""
    if not entra.is_enabled():
        raise Http404("Sign-in with Microsoft is not configured.")
    next_url = _safe_next(request, request.GET.get("next", ""))
    fresh = request.GET.get("fresh") == "1" and request.user.is_authenticated
    login_hint = None
    if fresh:
        account = getattr(request.user, "entra_account", None)
        login_hint = getattr(account, "preferred_username", None) or None
    try:
        auth_uri = entra.initiate(
            request,
            next_url,
            max_age=0 if fresh else None,
            prompt="login" if fresh else None,
            login_hint=login_hint,
            reauth_user_id=request.user.pk if fresh else None,
        )
    except entra.SignInFailed as exc:
        return _sign_in_failed(request, exc, next_url, status=503)
    return redirect(auth_uri)


@access(PUBLIC)
@require_GET
@never_cache
def entra_callback(request):
    """Where Entra sends the browser back: redeem the code, match the user, sign them in."""
    if not entra.is_enabled():
        raise Http404("Sign-in with Microsoft is not configured.")
    try:
        sign_in = entra.complete(request)
    except entra.SignInFailed as exc:
        sign_in_denied.send(
            sender=entra_callback,
            request=request,
            user=exc.user,
            reason=exc.code,
            claims=exc.claims,
            method="entra",
        )
        status = 503 if isinstance(exc, entra.EntraUnavailable) else 400
        return _sign_in_failed(request, exc, "", status=status)
    login(request, sign_in.user, backend=entra.USER_BACKEND)  # new session key
    entra.mark_session(request, sign_in)
    if not sign_in.roles and not sign_in.user.is_superuser:
        # Signed in, but every page refuses them: the home page says whom to ask.
        sign_in_denied.send(
            sender=entra_callback,
            request=request,
            user=sign_in.user,
            reason="no_role",
            claims=sign_in.claims,
            method="entra",
        )
    logger.info(
        "Signed in with Entra ID: user %s roles %s%s",
        sign_in.user.pk,
        ",".join(sorted(sign_in.roles)) or "none",
        f" (unmapped app roles: {', '.join(sign_in.unmapped)})" if sign_in.unmapped else "",
    )
    if not sign_in.roles and not sign_in.user.is_superuser:
        return redirect("home")  # the "no role" page, saying whom to ask
    next_url = _safe_next(request, sign_in.next_url)
    return redirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))


def _sign_in_failed(request, exc: entra.SignInFailed, next_url: str, *, status: int):
    logger.warning("Entra ID sign-in failed: %s", exc.reason)
    retry = reverse("entra-sign-in") + (f"?{urlencode({'next': next_url})}" if next_url else "")
    return render(
        request,
        "registration/entra_failed.html",
        {"reason": exc.reason, "retry_url": retry, "unavailable": status == 503},
        status=status,
    )


@access(PUBLIC)
@require_GET
@never_cache
@xframe_options_exempt  # Entra calls it in a hidden iframe
def entra_front_channel_logout(request):
    """Entra's front-channel logout: the person signed out of Entra elsewhere, so the portal
    sessions that sign-in opened (the ``sid``) end too."""
    ended = entra.end_sessions_of_sid(request.GET["sid"]) if request.GET.get("sid") else 0
    if entra.signed_in_with_entra(request):  # the browser sent our cookie after all
        from django.contrib.auth import logout

        logout(request)
        ended += 1
    return HttpResponse(f"signed out {ended}", content_type="text/plain")


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
    """Confirm the password of the signed-in user before a sensitive step (a PROD decision);
    someone who signed in with Entra ID is sent through Entra again instead (``max_age``).

    Signing in again fires ``user_logged_in``, which refreshes the session's sign-in time
    (core.sessions.session_authenticated_at_mark); ``next`` is followed only when safe.
    """

    portal_access = SIGNED_IN
    template_name = "registration/reauthenticate.html"
    form_class = ReauthenticationForm
    redirect_authenticated_user = False

    def _through_entra(self, request) -> bool:
        """Entra users (and everyone, once local passwords are off) confirm with Entra."""
        return entra.is_enabled() and (
            entra.signed_in_with_entra(request) or not entra.local_accounts_enabled()
        )

    def get(self, request, *args, **kwargs):
        if self._through_entra(request):
            query = {"fresh": "1", "next": self.get_redirect_url() or "/"}
            return redirect(f"{reverse('entra-sign-in')}?{urlencode(query)}")
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        if self._through_entra(request):
            return self.get(request, *args, **kwargs)
        return super().post(request, *args, **kwargs)
