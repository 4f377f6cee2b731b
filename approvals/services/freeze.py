"""Freeze windows: the ``freeze_window`` gate and the audited edits of the windows.

``freeze_rule`` is one of ``gates.environment_rules``, so the decision box, the API and the
automated ADO check all refuse with the same words: the window, its reason, when it reopens.
Managers and admins edit windows (the views and the API check it); every edit is audited with
the window before and after.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q

from .. import freeze
from ..models import AuditAction, FreezeWindow
from .audit import audit_record
from .batch_reads import read_once
from .refusals import Rule

# The fields an edit may change (the API and the form name them the same).
EDITABLE_FIELDS = (
    "name",
    "kind",
    "reason",
    "environment",
    "team",
    "catalog_model",
    "dtstart",
    "duration_minutes",
    "rrule",
    "timezone",
    "active",
)


def freeze_windows_in_scope(*, environment: str):
    """The active windows that can apply to ``environment`` (its own and "all")."""
    return (
        FreezeWindow.objects.filter(active=True)
        .filter(Q(environment=environment) | Q(environment=freeze.ALL_ENVIRONMENTS))
        .select_related("catalog_model")
    )


def freeze_rule(*, catalog_model, environment: str, now: datetime) -> Rule | None:
    """The freeze gate for promoting ``catalog_model`` to ``environment`` at ``now``; None
    when no window is scoped to it (the decision box then lists nothing about freezes)."""
    if not environment:
        return None
    team = catalog_model.effective_team if catalog_model is not None else ""
    model_name = catalog_model.name if catalog_model is not None else ""
    in_scope = read_once(
        ("freeze_windows", environment),
        lambda: list(freeze_windows_in_scope(environment=environment)),
    )
    windows = [
        w
        for w in in_scope
        if freeze.applies(w, environment=environment, team=team, model_name=model_name)
    ]
    if not windows:
        return None
    verdict = freeze.freeze_verdict(
        windows=windows, environment=environment, team=team, model_name=model_name, now=now
    )
    if not verdict.frozen:
        return Rule(
            "freeze_window",
            True,
            f"No freeze window is in effect for {environment} now.",
        )
    return Rule(
        "freeze_window",
        False,
        freeze_message(verdict),
        until=verdict.reopens_at,
        values={
            "windows": [w.pk for w in verdict.windows],
            "cause": verdict.cause,
            "reopens_at": verdict.reopens_at.isoformat() if verdict.reopens_at else None,
        },
    )


def freeze_message(verdict: freeze.FreezeVerdict) -> str:
    """The sentence a refusal says: which window, its reason, when it reopens."""
    first = verdict.windows[0]
    zone = first.timezone
    names = ", ".join(
        f"'{w.name}'" + (f" ({w.reason.strip()})" if w.reason.strip() else "")
        for w in verdict.windows
    )
    if verdict.reopens_at is None:
        when = "it does not reopen in the next 2 years"
    else:
        verb = "reopens" if verdict.cause == freeze.DENY else "opens"
        when = f"{verb} at {freeze.format_local(verdict.reopens_at, zone)}"
    if verdict.cause == freeze.DENY:
        label = "window" if len(verdict.windows) == 1 else "windows"
        return f"Frozen by the freeze {label} {names}; {when}."
    label = "window" if len(verdict.windows) == 1 else "windows"
    return f"Outside the release {label} {names}; {when}."


def freeze_window_snapshot(window: FreezeWindow) -> dict:
    """The window's fields as the audit trail keeps them (before / after an edit)."""
    return {
        "name": window.name,
        "kind": window.kind,
        "reason": window.reason,
        "environment": window.environment,
        "team": window.team,
        "catalog_model": window.model_name,
        "dtstart": window.dtstart.isoformat() if window.dtstart else None,
        "duration_minutes": window.duration_minutes,
        "rrule": window.rrule,
        "timezone": window.timezone,
        "active": window.active,
    }


def _audit(action: str, window: FreezeWindow, user, message: str, before, after) -> None:
    audit_record(
        action=action,
        actor=user,
        message=message,
        environment=window.environment,
        model_name=window.model_name,
        detail={"freeze_window": window.pk, "before": before, "after": after},
    )


@transaction.atomic
def freeze_window_create(*, user, **fields) -> FreezeWindow:
    """A new window (validated by the model's ``clean``: rule, zone, an occurrence ahead)."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Not a freeze window field: {', '.join(sorted(unknown))}")
    window = FreezeWindow(**fields, created_by=user, updated_by=user)
    window.save()
    _audit(
        AuditAction.FREEZE_CREATED,
        window,
        user,
        f"Freeze window '{window.name}' created ({window.kind}, {window.environment}).",
        None,
        freeze_window_snapshot(window),
    )
    return window


@transaction.atomic
def freeze_window_update(*, window_id: int, user, **fields) -> FreezeWindow:
    """Change a window (deactivating is ``active=False``); audited with before and after."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"Not a freeze window field: {', '.join(sorted(unknown))}")
    window = FreezeWindow.objects.select_for_update().get(pk=window_id)
    before = freeze_window_snapshot(window)
    for name, value in fields.items():
        setattr(window, name, value)
    window.updated_by = user
    window.save()
    after = freeze_window_snapshot(window)
    changed = sorted(k for k in after if after[k] != before[k])
    if changed:
        _audit(
            AuditAction.FREEZE_CHANGED,
            window,
            user,
            f"Freeze window '{window.name}' changed: {', '.join(changed)}.",
            {k: before[k] for k in changed},
            {k: after[k] for k in changed},
        )
    return window


@transaction.atomic
def freeze_window_delete(*, window_id: int, user) -> None:
    """Remove a window for good; the trail keeps what it was."""
    window = (
        FreezeWindow.objects.select_for_update(of=("self",))
        .select_related("catalog_model")
        .get(pk=window_id)
    )
    before = freeze_window_snapshot(window)
    pk = window.pk
    window.delete()
    window.pk = pk
    _audit(
        AuditAction.FREEZE_DELETED,
        window,
        user,
        f"Freeze window '{before['name']}' deleted.",
        before,
        None,
    )
