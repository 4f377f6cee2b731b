"""The freeze windows page: what is frozen now and next (everyone with a role reads it), and
the forms managers and admins create, edit, deactivate and delete windows with (audited by
the services)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.access import access, roles
from core.roles import Role, user_roles

from .. import selectors, services
from ..freeze_forms import COMMON_ZONES, FreezeWindowForm
from ..models import FreezeWindow
from .base import VIEW_ROLES, render_page

# Everyone with a role sees the freezes (they decide whether a promotion can go now);
# managers and admins edit them.
FREEZE_EDITORS = (Role.MANAGER, Role.ADMIN)


def _window_or_404(pk: int) -> FreezeWindow:
    try:
        return selectors.freeze_window_get(pk=pk)
    except FreezeWindow.DoesNotExist:
        raise Http404("No freeze window with this id") from None


def can_edit_freezes(user) -> bool:
    return bool(user_roles(user) & set(FREEZE_EDITORS))


@access(roles(*VIEW_ROLES))
@require_GET
def freeze_page(request):
    overview = selectors.freeze_overview()
    context = {
        "overview": overview,
        "environments": list(overview.frozen.items()),
        "can_edit": can_edit_freezes(request.user),
    }
    return render_page(request, "approvals/freeze.html", context)


def _form_page(request, form, window, status=200):
    form.mark_invalid_fields()
    context = {"form": form, "window": window, "zones": COMMON_ZONES}
    return render_page(request, "approvals/freeze_form.html", context, status=status)


@access(roles(*FREEZE_EDITORS))
@require_http_methods(["GET", "POST"])
def freeze_new(request):
    form = FreezeWindowForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            window = services.freeze_window_create(user=request.user, **form.window_fields())
        except ValidationError as error:
            form.apply_errors(error)
        else:
            messages.success(request, f"Freeze window '{window.name}' created.")
            return redirect(reverse("approvals:freeze"))
    return _form_page(request, form, None, 400 if form.errors else 200)


@access(roles(*FREEZE_EDITORS))
@require_http_methods(["GET", "POST"])
def freeze_edit(request, pk: int):
    window = _window_or_404(pk)
    form = FreezeWindowForm(request.POST or None, window=window)
    if request.method == "POST" and form.is_valid():
        try:
            services.freeze_window_update(
                window_id=window.pk, user=request.user, **form.window_fields()
            )
        except ValidationError as error:
            form.apply_errors(error)
        else:
            messages.success(request, f"Freeze window '{form.cleaned_data['name']}' saved.")
            return redirect(reverse("approvals:freeze"))
    return _form_page(request, form, window, 400 if form.errors else 200)


@access(roles(*FREEZE_EDITORS))
@require_POST
def freeze_deactivate(request, pk: int):
    """Switch a window off (or on again: ``active=1``) without opening the form."""
    window = _window_or_404(pk)
    active = request.POST.get("active") == "1"
    try:
        services.freeze_window_update(window_id=window.pk, user=request.user, active=active)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        state = "active again" if active else "deactivated"
        messages.success(request, f"Freeze window '{window.name}' {state}.")
    return redirect(reverse("approvals:freeze"))


@access(roles(*FREEZE_EDITORS))
@require_POST
def freeze_delete(request, pk: int):
    window = _window_or_404(pk)
    services.freeze_window_delete(window_id=window.pk, user=request.user)
    messages.success(request, f"Freeze window '{window.name}' deleted.")
    return redirect(reverse("approvals:freeze"))
