"""The operator's "Sync now" and "Test connection" admin actions, shared by the registry
sources and the ADO projects (each app passes its own service)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages


@dataclass(frozen=True)
class ConnectionCheck:
    """What "Test connection" found: reached or not, and the short reason when not."""

    ok: bool
    detail: str


# Words an operator understands for the transport failures requests reports at length.
TRANSPORT_REASONS = [
    ("Connection refused", "the connection was refused (is the server running on that port?)"),
    ("timed out", "no answer in time"),
    ("Timeout", "no answer in time"),
    ("Name or service not known", "the host name is not known"),
    ("Failed to resolve", "the host name is not known"),
    ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted"),
]


def short_reason(text: str, limit: int = 300) -> str:
    """A line for the admin instead of urllib3's paragraph (the full one is in the log)."""
    text = " ".join(text.split())
    for marker, reason in TRANSPORT_REASONS:
        if marker in text:
            return reason
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


class SyncActions:
    """ "Sync now" and "Test connection" for a ModelAdmin of synced objects; the admin says
    how to queue one object's sync and how to check its connection."""

    actions = ["sync_now", "test_connection"]
    synced_what = "object"

    def queue_sync(self, obj) -> None:
        raise NotImplementedError

    def check_connection(self, obj) -> ConnectionCheck:
        raise NotImplementedError

    @admin.action(description="Sync now", permissions=["change"])
    def sync_now(self, request, queryset):
        sync_now(request, queryset, self.queue_sync, self.synced_what)

    @admin.action(description="Test connection", permissions=["view"])
    def test_connection(self, request, queryset):
        test_connection(request, queryset, self.check_connection)
