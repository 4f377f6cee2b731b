"""The rollback page: /pipelines/models/<name>/rollback/?version=<ModelVersion pk>.

GET shows the version to put back, what serves now per environment and asks for a reason;
POST queues the release through ``services.rollback_request`` and goes back to the model page.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from core.access import access, roles
from core.errors import PortalError
from registry.models import CatalogModel, ModelVersion

from . import selectors, selectors_history, services
from .models import Environment
from .sections import TRIGGER_ROLES


class RollbackForm(forms.Form):
    environment = forms.ChoiceField(
        choices=[(Environment.PROD, "PROD"), (Environment.QA, "QA")], initial=Environment.PROD
    )
    reason = forms.CharField(
        max_length=services.rollback.REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why this version goes back; the approvers read it beside the approval.",
        error_messages={"required": "Say why you roll back: a reason is required."},
    )


def _version_or_error(request, model: CatalogModel) -> ModelVersion:
    raw = request.POST.get("version") or request.GET.get("version") or ""
    if not raw.isdigit():
        raise PortalError(
            "Name the version to roll back to (?version=<id> from the history).",
            code="version_required",
            http_status=400,
        )
    version = (
        ModelVersion.objects.filter(pk=int(raw), registered_model__catalog_model=model)
        .select_related("registered_model__source")
        .first()
    )
    if version is None:
        raise Http404(f"{model.name} has no version with id {raw}.")
    return version


@access(roles(*TRIGGER_ROLES))
@require_http_methods(["GET", "POST"])
def rollback_request_page(request, name):
    model = get_object_or_404(CatalogModel, name=name)
    version = _version_or_error(request, model)
    form = RollbackForm(request.POST if request.method == "POST" else None)
    if request.method == "GET":
        # Refuse a version that never served at once, not after the reason is typed.
        services.rollback_served_check(catalog_model=model, version=version)
    elif form.is_valid():
        try:
            run_request = services.rollback_request(
                catalog_model=model,
                version=version,
                environment=form.cleaned_data["environment"],
                reason=form.cleaned_data["reason"],
                user=request.user,
            )
        except PortalError as refusal:
            form.add_error(None, refusal.message)
        else:
            replaced = run_request.rollback_of
            messages.success(
                request,
                f"Rollback to v{version.version} requested"
                + (f" (replaces v{replaced.version})" if replaced else "")
                + ": the release goes through the QA and PROD approvals.",
            )
            return redirect(model.get_absolute_url())
    context = {
        "catalog_model": model,
        "version": version,
        "form": form,
        "deployments": selectors.deployments_now(model),
        "recorded": {
            env: sorted(
                selectors_history.latest_per_target(model, env).values(), key=lambda r: r.target
            )
            for env in (Environment.QA, Environment.PROD)
        },
        "has_release_pipeline": services.release_pipeline(model) is not None,
    }
    status = 400 if form.errors else 200
    return render(request, "pipelines/rollback_request.html", context, status=status)
