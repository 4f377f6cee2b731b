"""Deciding several requests at once. The inbox's selection opens one combined evidence screen
(GET /approvals/bulk/?ids=1,2,3); its one form (approve or reject, one comment) POSTs to
/approvals/bulk/decide/, which decides each request through ``services.approvals_decide_bulk``;
what happened to each waits in the session and shows at /approvals/bulk/result/<token>/
(post, redirect, get: a reload decides nothing twice).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_POST

from core.access import SIGNED_IN, access, roles
from core.roles import Role
from core.sessions import session_authenticated_at

from .. import selectors, services
from ..models import Decision, DecisionStatus
from .base import freshness, render_page

DECIDERS = (Role.APPROVER,)
RESULTS_SESSION_KEY = "approvals_bulk_results"
RESULTS_KEPT = 5  # the latest bulk results a session keeps
DRAFT_SESSION_KEY = "approvals_bulk_draft"  # choice and comment kept through a re-sign-in
COMMENT_CODES = frozenset({"comment_required", "comment_too_long"})


def ids_from(query) -> list[str]:
    """``ids`` as the inbox sends them (repeated) or as a link carries them (comma-separated)."""
    values = []
    for raw in query.getlist("ids"):
        values += [part for part in (p.strip() for p in raw.split(",")) if part]
    return values


def bulk_url(ids) -> str:
    return f"{reverse('approvals:bulk')}?{urlencode({'ids': ','.join(str(i) for i in ids)})}"


def _review_response(request, ids_raw, *, status=200, error=None, draft=None):
    """The combined evidence screen for these ids (with ``error``, a refused batch)."""
    context = {
        "review": None,
        "error": error,
        "draft": draft or {},
        "comment_error": bool(error and error.code in COMMENT_CODES),
        "freshness": freshness(),
    }
    try:
        ids = services.bulk_ids_clean(approval_ids=ids_raw)
    except services.DecisionRefused as refusal:
        context["error"] = context["error"] or refusal
        return render_page(request, "approvals/bulk.html", context, status=400)
    review = selectors.bulk_review(
        approval_ids=ids, user=request.user, authenticated_at=session_authenticated_at(request)
    )
    by_environment: dict[str, list[int]] = {}
    for row in review.rows:
        by_environment.setdefault(row.approval.environment, []).append(row.approval.pk)
    context.update(
        review=review,
        reauth_url=f"{reverse('reauthenticate')}?{urlencode({'next': bulk_url(review.ids)})}",
        split_urls=[(env, len(pks), bulk_url(pks)) for env, pks in sorted(by_environment.items())],
    )
    if review.mixed and status < 400:
        status = 400
    return render_page(request, "approvals/bulk.html", context, status=status)


@access(roles(*DECIDERS))
@require_GET
def bulk(request):
    """The combined evidence of the selected requests, and the one form that decides them."""
    draft = request.session.pop(DRAFT_SESSION_KEY, None)
    ids = ids_from(request.GET)
    if not isinstance(draft, dict) or draft.get("ids") != ids:
        draft = None
    return _review_response(request, ids, draft=draft)


# Signed-in users reach the view; the service refuses other roles itself, audited like a
# single decision's refusal, and the 403 page says why (core.errors' middleware).
@access(SIGNED_IN)
@require_POST
def bulk_decide(request):
    ids = ids_from(request.POST)
    status = request.POST.get("status", "")
    comment = request.POST.get("comment", "")
    try:
        outcomes = services.approvals_decide_bulk(
            approval_ids=ids,
            user=request.user,
            status=status,
            comment=comment,
            authenticated_at=session_authenticated_at(request),
            via="web",
        )
    except services.ReauthenticationRequired:
        request.session[DRAFT_SESSION_KEY] = {"ids": ids, "status": status, "comment": comment}
        messages.info(
            request, "A PROD decision needs a recent sign-in: sign in again, then decide."
        )
        return redirect(f"{reverse('reauthenticate')}?{urlencode({'next': bulk_url(ids)})}")
    except services.DecisionRefused as refusal:
        if refusal.code == "not_an_approver":
            raise
        draft = {"status": status, "comment": comment}
        return _review_response(
            request, ids, status=refusal.http_status, error=refusal, draft=draft
        )
    token = secrets.token_urlsafe(12)
    kept = [r for r in request.session.get(RESULTS_SESSION_KEY, []) if isinstance(r, dict)]
    kept.append(
        {
            "token": token,
            "status": status,
            "comment": comment.strip(),
            "at": timezone.now().isoformat(),
            "outcomes": [
                {
                    "approval_id": o.approval_id,
                    "decided": o.decided,
                    "code": o.code,
                    "message": o.message,
                    "decision_id": o.decision_id,
                }
                for o in outcomes
            ],
        }
    )
    request.session[RESULTS_SESSION_KEY] = kept[-RESULTS_KEPT:]
    decided = sum(1 for o in outcomes if o.decided)
    verb = "approved" if status == DecisionStatus.APPROVED else "rejected"
    messages.success(
        request,
        f"{decided} of {len(outcomes)} request{'s' if len(outcomes) != 1 else ''} {verb}; "
        f"{len(outcomes) - decided} left as they were.",
    )
    return redirect("approvals:bulk-result", token=token)


@access(roles(*DECIDERS))
@require_GET
def bulk_result(request, token):
    """What happened to each request of one bulk decision, with links to each."""
    result = next(
        (
            r
            for r in request.session.get(RESULTS_SESSION_KEY, [])
            if isinstance(r, dict) and r.get("token") == token
        ),
        None,
    )
    if result is None:
        raise Http404("This bulk decision's result is not kept in your session any more")
    outcomes = result["outcomes"]
    approvals = selectors.approvals_base().in_bulk([o["approval_id"] for o in outcomes])
    decisions = Decision.objects.select_related("outbox").in_bulk(
        [o["decision_id"] for o in outcomes if o["decision_id"]]
    )
    rows = [
        {
            **o,
            "approval": approvals.get(o["approval_id"]),
            "decision": decisions.get(o["decision_id"]),
        }
        for o in outcomes
    ]
    context = {
        "result": result,
        "rows": rows,
        "decided": [r for r in rows if r["decided"]],
        "refused": [r for r in rows if not r["decided"]],
        "approved": result["status"] == DecisionStatus.APPROVED,
        "decided_at": parse_datetime(str(result.get("at") or "")),
    }
    return render_page(request, "approvals/bulk_result.html", context)
