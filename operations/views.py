"""The operations pages: the inbox (open episodes, proposals, unmatched and all signals), an
episode with its timeline, a signal with its raw payload; confirming or declining a proposal
and, for admins, creating the match rule an unmatched signal suggests.

Every portal role may read; confirm / decline take a data scientist, an approver or an admin
(the service checks it too), creating a rule an admin. Refusals are ``PortalError``s, shown
on the episode page or as the 403 page.
"""

from __future__ import annotations

import importlib

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from core.access import access, roles
from core.listing import sort_headers
from core.roles import Role, user_has_role

from . import selectors
from .demo_data import LOOP_MODEL
from .forms import DeclineForm, DemoSignalForm, InboxFilterForm, RuleCreateForm
from .models import (
    Disposition,
    Episode,
    EpisodeKind,
    EpisodeState,
    Signal,
    SignalFormat,
    SignalKind,
)
from .services import ProposalRefused, proposal_confirm, proposal_decline
from .services.intake import signal_send

VIEW_ROLES = (Role.APPROVER, Role.DATA_SCIENTIST, Role.MANAGER, Role.ADMIN)
CONFIRM_ROLES = (Role.DATA_SCIENTIST, Role.APPROVER, Role.ADMIN)
RULE_ROLES = (Role.ADMIN,)
DEMO_ROLES = (Role.ADMIN,)
PER_PAGE = 50


def can_confirm(user) -> bool:
    return user_has_role(user, *CONFIRM_ROLES)


def _tab_urls(request) -> dict[str, str]:
    urls = {}
    for tab in selectors.TABS:
        params = request.GET.copy()
        for name in ("page", "sort", "tab", "state", "stalled", "disposition"):
            params.pop(name, None)
        if tab == "unmatched":
            params.pop("model", None)
        if tab != "episodes":
            params["tab"] = tab
        query = params.urlencode()
        urls[tab] = reverse("operations:inbox") + (f"?{query}" if query else "")
    return urls


def demo_signal_allowed(user) -> bool:
    """The demo's "send a signal" button: only in the demo (settings.DEMO), only for admins."""
    return bool(getattr(settings, "DEMO", False)) and user_has_role(user, *DEMO_ROLES)


@access(roles(*VIEW_ROLES))
@require_GET
def inbox(request):
    return _inbox_page(request)


def _inbox_page(request, *, status: int = 200, demo_form=None):
    form = InboxFilterForm(request.GET)
    form.is_valid()  # invalid fields are shown and left out
    tab = form.active_tab
    if tab in ("episodes", "proposals"):
        filters = form.episode_filters()
        rows = selectors.episode_list(filters=filters)
        sorts = sort_headers(request, filters.sort, list(selectors.EPISODE_SORTS))
    else:
        filters = form.signal_filters()
        rows = selectors.signal_list(filters=filters)
        sorts = sort_headers(
            request, filters.sort or "-received", list(selectors.SIGNAL_SORTS), {"received"}
        )
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "tab": tab,
        "filters": filters,
        "page": page,
        "rows": list(page.object_list),
        "counts": selectors.inbox_counts(),
        "tab_urls": _tab_urls(request),
        "sort_headers": sorts,
        "filtered": filters.filtered,
        "models": selectors.model_choices(),
        "signal_kinds": SignalKind.choices,
        "episode_kinds": EpisodeKind.choices,
        "dispositions": [(d.value, d.label) for d in Disposition if d.value],
        "formats": SignalFormat.choices,
        "states": [c for c in InboxFilterForm.base_fields["state"].choices if c[0] != "open"],
        "can_confirm": can_confirm(request.user),
        "demo_signal_form": (demo_form or DemoSignalForm(initial={"model": LOOP_MODEL}))
        if demo_signal_allowed(request.user)
        else None,
    }
    return render(request, "operations/inbox.html", context, status=status)


@access(roles(*DEMO_ROLES))
@require_POST
def demo_signal(request):
    """Send a plain signal for a model from the inbox, as a monitor would (the demo only)."""
    if not getattr(settings, "DEMO", False):
        raise Http404("Sending signals from the inbox is a demo feature (PORTAL_DEMO is off).")
    form = DemoSignalForm(request.POST)
    if not form.is_valid():
        return _inbox_page(request, status=400, demo_form=form)
    data = form.cleaned_data
    result = signal_send(
        model=data["model"].name,
        kind=data["kind"],
        severity=data["severity"],
        sender=f"{request.user.get_username()} (demo button)",
    )
    signal = result.signals[0]
    signal.refresh_from_db()
    messages.success(
        request,
        f"Sent a {signal.get_kind_display().lower()} signal for {data['model'].name}: "
        f"{signal.get_disposition_display().lower()}. {signal.disposition_note}",
    )
    if signal.episode_id:
        return redirect(_episode_url(signal.episode_id))
    return redirect(reverse("operations:signal", kwargs={"pk": signal.pk}))


def _episode_or_404(pk: int):
    try:
        return selectors.episode_detail(pk)
    except Episode.DoesNotExist:
        raise Http404("No episode with this id") from None


def _episode_page(request, pk: int, *, status: int = 200, error: str = "", decline_form=None):
    detail = _episode_or_404(pk)
    episode = detail.episode
    context = {
        "episode": episode,
        "detail": detail,
        "can_confirm": can_confirm(request.user) and episode.state == EpisodeState.PROPOSED,
        "decline_form": decline_form or DeclineForm(),
        "error": error,
        "policy": episode.policy or {},
    }
    return render(request, "operations/episode.html", context, status=status)


@access(roles(*VIEW_ROLES))
@require_GET
def episode_detail(request, pk):
    return _episode_page(request, pk)


def _episode_url(pk: int) -> str:
    return reverse("operations:episode", kwargs={"pk": pk})


@access(roles(*CONFIRM_ROLES))
@require_POST
def episode_confirm(request, pk):
    episode = _episode_or_404(pk).episode
    try:
        episode = proposal_confirm(episode=episode, user=request.user)
    except ProposalRefused as refusal:
        return _episode_page(request, pk, status=refusal.http_status, error=refusal.message)
    messages.success(request, f"Confirmed: the run of {episode.catalog_model.name} is requested.")
    return redirect(_episode_url(pk))


@access(roles(*CONFIRM_ROLES))
@require_POST
def episode_decline(request, pk):
    episode = _episode_or_404(pk).episode
    form = DeclineForm(request.POST)
    if not form.is_valid():
        return _episode_page(request, pk, status=400, decline_form=form)
    try:
        proposal_decline(episode=episode, user=request.user, reason=form.cleaned_data["reason"])
    except ProposalRefused as refusal:
        return _episode_page(
            request, pk, status=refusal.http_status, error=refusal.message, decline_form=form
        )
    messages.success(request, f"Declined: no run of {episode.catalog_model.name} is requested.")
    return redirect(_episode_url(pk))


def _matching():
    """operations.services.matching (intake's), or None while it is not installed: the page
    then shows no suggestions rather than failing."""
    try:
        return importlib.import_module("operations.services.matching")
    except ModuleNotFoundError:
        return None


def _rule_suggestions(signal: Signal) -> list[tuple[str, str, str]]:
    """The rules that would match this signal (operations.services.matching)."""
    matching = _matching()
    return list(matching.rule_suggestions(signal) or []) if matching else []


def _rematch(rule) -> int:
    matching = _matching()
    return matching.unmatched_rematch(rule) if matching else 0


def _signal_page(request, pk: int, *, status: int = 200, rule_form=None, rule_error_index=None):
    try:
        signal = selectors.signal_get(pk)
    except Signal.DoesNotExist:
        raise Http404("No signal with this id") from None
    suggestions = _rule_suggestions(signal) if signal.catalog_model_id is None else []
    is_admin = user_has_role(request.user, *RULE_ROLES)
    context = {
        "signal": signal,
        "raw_pretty": selectors.raw_body_pretty(signal),
        "suggestions": [
            {
                "field": field,
                "value": value,
                "label": label,
                "form": rule_form if rule_error_index == i else None,
            }
            for i, (field, value, label) in enumerate(suggestions)
        ],
        "can_create_rule": is_admin,
        "models": selectors.CatalogModel.objects.order_by("name").values_list("name", flat=True)
        if is_admin and suggestions
        else [],
        "rule_form": rule_form if rule_error_index is None else None,
    }
    return render(request, "operations/signal.html", context, status=status)


@access(roles(*VIEW_ROLES))
@require_GET
def signal_detail(request, pk):
    return _signal_page(request, pk)


@access(roles(*RULE_ROLES))
@require_POST
def signal_rule_create(request, pk):
    """Create the match rule chosen from the suggestions, then match the unmatched signals
    again: this one and every other it covers go to the model."""
    if not Signal.objects.filter(pk=pk).exists():
        raise Http404("No signal with this id")
    form = RuleCreateForm(request.POST)
    index = request.POST.get("suggestion")
    index = int(index) if index and index.isdigit() else None
    if not form.is_valid():
        return _signal_page(request, pk, status=400, rule_form=form, rule_error_index=index)
    try:
        rule = form.save_as(request.user)
    except IntegrityError:
        return _signal_page(request, pk, status=400, rule_form=form, rule_error_index=index)
    matched = _rematch(rule)
    messages.success(
        request,
        f"Rule created: {rule}. {matched} unmatched signal{'s' if matched != 1 else ''} "
        "now matched.",
    )
    return redirect(reverse("operations:signal", kwargs={"pk": pk}))


urlpatterns = [
    path("", inbox, name="inbox"),
    path("episodes/<int:pk>/", episode_detail, name="episode"),
    path("episodes/<int:pk>/confirm/", episode_confirm, name="episode-confirm"),
    path("episodes/<int:pk>/decline/", episode_decline, name="episode-decline"),
    path("signals/<int:pk>/", signal_detail, name="signal"),
    path("signals/<int:pk>/rule/", signal_rule_create, name="signal-rule-create"),
    path("demo/signal/", demo_signal, name="demo-signal"),
]
