"""The operator's "Sync now" and "Test connection" admin actions, shared by the registry
sources and the ADO projects (each app passes its own service)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages


@dataclass(frozen=True)
class ConnectionCheck:
    """What "Test connection" found: reached or not, and the short reason when not."""

    ok: bool
    detail: str


def sync_now(request, objects, queue: Callable[..., None], what: str) -> None:
    """Queue each selected object's sync (after the admin's transaction commits)."""
    names = []
    for obj in objects:
        if not obj.enabled:
            messages.warning(request, f"{obj.name} is disabled: enable it to sync it.")
            continue
        queue(obj)
        names.append(obj.name)
    if names:
        messages.success(
            request,
            f"Sync queued for {what} {', '.join(names)}: a worker runs it within a minute; "
            "the sync state below shows when it is done.",
        )


def test_connection(request, objects, check: Callable[..., ConnectionCheck]) -> None:
    """Try each selected object's connection and say what happened, one message each."""
    for obj in objects:
        result = check(obj)
        if result.ok:
            messages.success(request, f"{obj.name}: connected ({result.detail}).")
        else:
            messages.error(request, f"{obj.name}: cannot connect: {result.detail}")
