"""Actions on one model's maturity, reached from the model page's "Maturity" section.

- ``declare``: a manager declares the model's level with a reason (or withdraws it), through
  ``services.maturity_declare``, the function the API calls too. GET shows the form alone.
- ``assess``: a manager or admin asks for an assessment now instead of waiting for the night.

Both answer a plain POST with a redirect back to the model page's ``#maturity``.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.access import access, roles
from registry.models import CatalogModel

from . import selectors, services
from .forms import DeclarationForm
from .sections import ASSESS_ROLES, DECLARE_ROLES, model_maturity_url


def _declare_page(request, catalog_model, form, status=200):
    view = selectors.model_maturity(catalog_model=catalog_model, history_limit=0)
    context = {"catalog_model": catalog_model, "form": form, "view": view}
    return render(request, "maturity/declare.html", context, status=status)


@access(roles(*DECLARE_ROLES))
@require_http_methods(["GET", "POST"])
def declare(request, name):
    """Declare a level (1-5) or withdraw the declaration, with a required reason."""
    catalog_model = get_object_or_404(CatalogModel, name=name)
    status = selectors.levels_for([catalog_model.pk]).get(catalog_model.pk)
    declared = status.declared_level if status else None
    if request.method == "GET":
        initial = {"level": str(declared)} if declared is not None else {}
        form = DeclarationForm(initial=initial, can_withdraw=declared is not None)
        return _declare_page(request, catalog_model, form)
    form = DeclarationForm(request.POST, can_withdraw=declared is not None)
    if not form.is_valid():
        return _declare_page(request, catalog_model, form, status=400)
    try:
        record = services.maturity_declare(
            catalog_model=catalog_model,
            level=form.declared_level,
            reason=form.cleaned_data["reason"],
            user=request.user,
        )
    except services.DeclarationRefused as refusal:
        form.add_error(refusal.field if refusal.field in form.fields else None, refusal.message)
        return _declare_page(request, catalog_model, form, status=refusal.http_status)
    if record.level is None:
        notice = f"The declared level of {catalog_model.name} was withdrawn."
    else:
        notice = f"Level {record.level} declared for {catalog_model.name}."
    messages.success(request, notice)
    return redirect(model_maturity_url(catalog_model))


@access(roles(*ASSESS_ROLES))
@require_POST
def assess(request, name):
    """Assess the model now; say whether its level changed."""
    catalog_model = get_object_or_404(CatalogModel, name=name)
    before = selectors.levels_for([catalog_model.pk]).get(catalog_model.pk)
    level_before = before.assessed_level if before else None
    services.model_assess(catalog_model=catalog_model)
    after = selectors.levels_for([catalog_model.pk]).get(catalog_model.pk)
    if after is None or after.assessed_level is None:
        messages.warning(request, f"{catalog_model.name} could not be assessed.")
        return redirect(model_maturity_url(catalog_model))
    if level_before is None:
        notice = (
            f"{catalog_model.name} was assessed for the first time: level {after.assessed_level}."
        )
    elif after.assessed_level != level_before:
        notice = (
            f"{catalog_model.name} was re-assessed: its level changed from {level_before} to "
            f"{after.assessed_level}."
        )
    else:
        notice = f"{catalog_model.name} was re-assessed: its level is still {level_before}."
    messages.success(request, notice)
    return redirect(model_maturity_url(catalog_model))
