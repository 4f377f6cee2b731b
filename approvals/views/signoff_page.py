"""Closing a post-deployment sign-off from the inbox or the approval page: signed off, or
flagged with a comment, through ``services.signoff_close`` (the API's path too). A refusal is
a ``PortalError``: the error page says why, with its status."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from core.access import access, roles

from .. import services
from ..models import SignOff, SignOffStatus
from .base import VIEW_ROLES


def signoffs_marked(request, signoffs: list[SignOff]) -> list[SignOff]:
    """Each sign-off with ``refusals``: why this user may not close it (empty: they may)."""
    for signoff in signoffs:
        signoff.refusals = services.signoff_close_rules(signoff=signoff, user=request.user)
    return signoffs


# Readers reach the view; the service refuses (and audits) anyone but an approver who did not
# deploy the run, as it does for the API.
@access(roles(*VIEW_ROLES))
@require_POST
def signoff_close(request, pk):
    try:
        signoff = services.signoff_close(
            signoff_id=pk,
            user=request.user,
            status=request.POST.get("status", ""),
            comment=request.POST.get("comment", ""),
            via="web",
        )
    except SignOff.DoesNotExist:
        raise Http404("No sign-off with this id") from None
    verb = "Signed off" if signoff.status == SignOffStatus.SIGNED_OFF else "Flagged"
    what = " ".join(
        filter(
            None,
            (signoff.catalog_model.name if signoff.catalog_model_id else "", signoff.version_label),
        )
    )
    messages.success(request, f"{verb}: the PROD deployment of {what or signoff.run.name}.")
    back = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = reverse("approvals:inbox")
    return redirect(back)
