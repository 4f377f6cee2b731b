"""The decision rules: who may decide an approval now, and what a refusal answers.

``decision_rules`` lists every rule that applies (the decision box shows them);
``approval_decide`` refuses at the first that fails, with the rule's ``DecisionRefused``, a
``core.errors.PortalError``: the API and the error pages answer it in one place each, with
its status (400 bad input, 401 sign in again, 403 a rule says no, 409 already decided).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core.roles import Role, user_roles
from pipelines.models import Environment

from ..models import OPEN_STATUSES, ApprovalRequest, DecidedIn
from .audit import user_identities
from .gates import environment_rules, qa_succeeded_for
from .identity import decision_sent_as_portal, delivers_with_portal_identity
from .policies import approval_policy_for, policy_person_rules
from .refusals import (
    CONFLICT_RULES,
    HUMAN_DECISION_REQUIRED,
    NOT_AN_APPROVER,
    DecisionRefused,
    ReauthenticationRequired,
    Rule,
    reauthenticate_url,
)

__all__ = [
    "CONFLICT_RULES",
    "HUMAN_DECISION_REQUIRED",
    "NOT_AN_APPROVER",
    "DecisionRefused",
    "ReauthenticationRequired",
    "Rule",
    "decision_rules",
    "qa_succeeded",
    "reauthenticate_url",
]


def decision_rules(
    *, approval: ApprovalRequest, user, authenticated_at: datetime | None = None
) -> list[Rule]:
    """Every rule that applies to ``user`` deciding ``approval``, in the order they are
    checked. The page lists them; ``approval_decide`` refuses at the first that fails."""
    if Role.APPROVER not in user_roles(user):
        return [Rule("not_an_approver", False, NOT_AN_APPROVER)]
    rules = [Rule("approver_role", True, "You hold the approver role.")]
    closed = _state_refusal(approval, user)
    if closed is not None:  # nothing else matters: the box says only this
        return [*rules, closed]
    identities = user_identities(user)
    rules += _assignment_rules(approval, identities)
    rules += _separation_rules(approval, user, identities)
    policy = approval_policy_for(
        catalog_model=approval.catalog_model, environment=approval.environment
    )
    rules += policy_person_rules(approval=approval, user=user, identities=identities, policy=policy)
    rules += environment_rules(
        catalog_model=approval.catalog_model,
        model_version=approval.model_version,
        run=approval.run,
        environment=approval.environment,
        now=timezone.now(),
        policy=policy,
    )
    if approval.environment == Environment.PROD:
        rules.append(_prod_sign_in_rule(authenticated_at))
    return rules


def _state_refusal(approval: ApprovalRequest, user) -> Rule | None:
    """The request's state forbids deciding it (HTTP 409): already decided, expired, decided
    by you, or ADO would count your decision as someone else's."""
    if approval.status not in OPEN_STATUSES:
        status = approval.get_status_display().lower()
        if approval.decided_in == DecidedIn.PORTAL:
            message = (
                f"Already {status} by {approval.decided_by or 'someone'}; nothing left to decide."
            )
        else:
            message = (
                f"This approval is already {status} in Azure DevOps"
                + (f" (by {approval.decided_by})" if approval.decided_by else "")
                + "."
            )
        return Rule("already_decided", False, message)
    if approval.expires_at and approval.expires_at <= timezone.now():
        return Rule(
            "expired",
            False,
            "This approval has expired: ADO skips the stage when its check times out.",
        )
    decisions = list(approval.decisions.all())
    mine = {d.user_id: d for d in decisions}.get(user.pk)
    if mine is not None:
        return Rule(
            "already_decided_by_you",
            False,
            f"You already {mine.get_status_display().lower()} this request.",
        )
    others = [d for d in decisions if d.user_id != user.pk]
    # ADO needing one approval (a high-risk model's second approver in PROD): the portal
    # counts the people, and ADO the one approval it sends, so one identity is enough.
    one_for_ado = approval.min_required_approvers <= 1
    if others and not one_for_ado and delivers_with_portal_identity(user):
        shared = [d for d in others if decision_sent_as_portal(d)]
        if shared:
            return Rule(
                "one_identity",
                False,
                f"{shared[0].user_name} already decided here, and the portal sends both "
                "decisions to Azure DevOps under its own identity, which ADO counts once "
                "per approval: give yours in Azure DevOps itself (or sign in with "
                "Microsoft, so the portal sends it under your name).",
            )
    return None


def _assignment_rules(approval: ApprovalRequest, identities: set[str]) -> list[Rule]:
    """What ADO's check says about this person: blocked, assigned (by name or by group)."""
    rules = []
    blocked = [
        b for b in approval.blocked_approvers if (b.get("unique_name") or "").lower() in identities
    ]
    if blocked:
        rules.append(
            Rule("blocked_approver", False, "ADO lists you as a blocked approver for this check.")
        )
    named_users = [a for a in approval.assigned_approvers if not a.get("is_group")]
    has_groups = any(a.get("is_group") for a in approval.assigned_approvers)
    if named_users and not has_groups:
        assigned = any((a.get("unique_name") or "").lower() in identities for a in named_users)
        who = ", ".join(a.get("name") or a.get("unique_name") for a in named_users)
        rules.append(
            Rule(
                "assigned_approver",
                assigned,
                "ADO assigns this approval to you."
                if assigned
                else f"ADO assigns this approval to {who}; you are not one of them.",
            )
        )
    else:
        rules.append(
            Rule(
                "assigned_approver",
                True,
                "ADO assigns this approval to an approver group; the approver role covers it.",
            )
        )
    return rules


def _separation_rules(approval: ApprovalRequest, user, identities: set[str]) -> list[Rule]:
    """Separation of duties: not the run you queued, not the version you created."""
    run = approval.run
    queued_by_me = False
    if run is not None:
        queued_by_me = bool(
            (run.requested_by_id and run.requested_by_id.lower() in identities)
            or (run.triggered_by_id and run.triggered_by_id == user.pk)
        )
    elif approval.requested_by_id:
        queued_by_me = approval.requested_by_id.lower() in identities
    rules = [
        Rule(
            "requester",
            not queued_by_me,
            "You queued this run, so you cannot approve it (separation of duties)."
            if queued_by_me
            else "You did not queue this run.",
        )
    ]
    version = approval.model_version
    if version is not None:
        created_by_me = bool(version.user_id and version.user_id.lower() in identities)
        rules.append(
            Rule(
                "version_creator",
                not created_by_me,
                f"You created version {version.version}, so you cannot approve its deployment "
                "(separation of duties)."
                if created_by_me
                else "You did not create this model version.",
            )
        )
    return rules


def _prod_sign_in_rule(authenticated_at: datetime | None) -> Rule:
    """PROD only: the approver signed in recently."""
    fresh = _signed_in_recently(authenticated_at)
    minutes = settings.APPROVALS_PROD_REAUTH_MINUTES
    return Rule(
        "recent_sign_in",
        fresh,
        f"You signed in within the last {minutes} minutes."
        if fresh
        else f"A PROD decision needs a sign-in within the last {minutes} minutes: "
        "confirm it is you, and you come back here.",
    )


def _signed_in_recently(authenticated_at: datetime | None) -> bool:
    if authenticated_at is None:
        return False
    window = timedelta(minutes=settings.APPROVALS_PROD_REAUTH_MINUTES)
    return timezone.now() - authenticated_at <= window


def qa_succeeded(approval: ApprovalRequest) -> bool:
    """QA went through for the approval's version (or, unregistered, for its run)."""
    return qa_succeeded_for(model_version_id=approval.model_version_id, run_id=approval.run_id)
