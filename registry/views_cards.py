"""The model card page: /registry/models/<name>/card/ — the card's form (editors), the review
actions (managers), submit and archive, and the card's history. POSTs carry CSRF; refusals
are shown on the page with their status (403 a role, 409 a state, 400 bad input)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from core.access import ANY_ROLE, access
from core.errors import PortalError

from . import selectors, services
from .card_sections import card_context
from .models import CatalogModel, RiskRating


class CardForm(forms.Form):
    intended_use = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    limitations = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    training_data = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Training data summary"
    )
    risk_rating = forms.ChoiceField(
        required=False, choices=[("", "Not rated"), *RiskRating.choices]
    )
    comment = forms.CharField(required=False, max_length=2000, label="What changed (optional)")


ACTIONS = {"save", "submit", "approve", "return", "archive"}


def _act(request, model, action: str, form: CardForm):
    user = request.user
    comment = request.POST.get("comment", "")
    if action == "save":
        if not form.is_valid():
            raise PortalError("Check the fields.", http_status=400)
        data = {k: v for k, v in form.cleaned_data.items() if k != "comment"}
        services.card_update(catalog_model=model, user=user, data=data, comment=comment)
        return "Model card saved."
    if action == "submit":
        services.card_submit(catalog_model=model, user=user)
        return "Model card submitted for review by a manager."
    if action in ("approve", "return"):
        outcome = services.REVIEW_APPROVE if action == "approve" else services.REVIEW_RETURN
        services.card_review(catalog_model=model, user=user, outcome=outcome, comment=comment)
        return "Model card approved." if action == "approve" else "Model card sent back to draft."
    services.card_archive(catalog_model=model, user=user, comment=comment)
    return "Model card archived."


@access(ANY_ROLE)
@require_http_methods(["GET", "POST"])
def model_card(request, name):
    model = get_object_or_404(CatalogModel, name=name)
    card = selectors.card_for(model)
    fields = ("intended_use", "limitations", "training_data", "risk_rating")
    initial = {f: getattr(card, f) for f in fields} if card else {}
    form = CardForm(request.POST or None, initial=initial)
    status, error = 200, ""
    if request.method == "POST":
        action = request.POST.get("action", "save")
        try:
            if action not in ACTIONS:
                raise PortalError("Unknown action.", http_status=400)
            done = _act(request, model, action, form)
        except PortalError as refusal:
            status, error = refusal.http_status, refusal.message
        else:
            messages.success(request, done)
            return redirect("registry:model-card", name=model.name)
    context = card_context(request, model)
    context.update(
        form=form, error=error, revisions=selectors.card_revisions(context["card"], limit=200)
    )
    context["edit_refusal"] = selectors.card_edit_refusal(request.user, model)
    return render(request, "registry/model_card.html", context, status=status)
