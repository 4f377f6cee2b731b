"""The "API tokens" page: a person makes, lists and revokes their own portal API tokens
(portal/api_tokens.py). Any role may (a token acts as its owner, so it can do no more than
they can); a person without a role has nothing a token could read. A new token is shown once,
in the answer to the POST that made it, never stored nor put in the session."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.validators import MaxValueValidator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from core.access import ANY_ROLE, access

from . import api_tokens
from .models import ApiToken, ApiTokenScope


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What it is for, e.g. “nightly report script”."
    )
    scope = forms.ChoiceField(
        choices=ApiTokenScope.choices,
        initial=ApiTokenScope.READ,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        help_text="Write: also the changes your role allows (never approving or rejecting).",
    )
    days = forms.IntegerField(label="Lifetime (days)", min_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        longest = api_tokens.lifetime_days_max()  # a setting: read per form, not at import
        days = self.fields["days"]
        days.validators.append(
            MaxValueValidator(longest, message=f"A token lives at most {longest} days.")
        )
        days.initial = api_tokens.lifetime_days_default()
        days.widget.attrs["max"] = longest


@access(ANY_ROLE)
@never_cache
@require_http_methods(["GET", "POST"])
def api_tokens_page(request):
    """List the user's tokens; a POST makes one and shows it this once."""
    created = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token, raw = api_tokens.token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scope=form.cleaned_data["scope"],
            days=form.cleaned_data["days"],
            request=request,
        )
        created = {"token": token, "raw": raw}
        form = ApiTokenForm()
    status = 400 if request.method == "POST" and created is None else 200
    context = {
        "form": form,
        "created": created,
        "tokens": api_tokens.tokens_of(request.user),
        "max_days": api_tokens.lifetime_days_max(),
        "now": timezone.now(),
    }
    return render(request, "portal/api_tokens.html", context, status=status)


@access(ANY_ROLE)
@require_POST
def api_token_revoke(request, pk: int):
    """Revoke one of the user's own tokens (someone else's is a 404, as if it did not exist)."""
    token = ApiToken.objects.filter(pk=pk, user=request.user).first()
    if token is None:
        raise Http404("No such token of yours.")
    if api_tokens.token_revoke(token=token, by=request.user, request=request):
        messages.success(request, f"Token {token.key_id}… “{token.name}” revoked.")
    else:
        messages.info(request, f"Token {token.key_id}… was already revoked.")
    return redirect("api-tokens")
