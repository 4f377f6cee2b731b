"""The operator's "Sync now" and "Test connection" admin actions, shared by the registry
sources and the ADO projects (each app passes its own service), and the read-only fields of
the rows the environment declares (``core.models.EnvironmentDeclared``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join


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


class EnvironmentDeclaredFields:
    """For a ModelAdmin of an ``EnvironmentDeclared`` model: on a row the environment
    declared, the fields it owns (and the name the bootstrap gave it) are read-only, and a
    notice at the top names the variable behind each, since the next ``bootstrap_from_env``
    would undo an edit made here. Rows made in the admin stay fully editable."""

    @admin.display(description="from environment", boolean=True)
    def from_environment(self, obj) -> bool:
        return obj.from_environment

    def get_readonly_fields(self, request, obj=None):
        fields = [*super().get_readonly_fields(request, obj)]
        if obj is not None and obj.from_environment:
            fields += ["environment_declaration", "name", *obj.declared_by]
        return list(dict.fromkeys(fields))

    def get_fieldsets(self, request, obj=None):
        fieldsets = copy.deepcopy(super().get_fieldsets(request, obj))
        if obj is not None and obj.from_environment:
            first = fieldsets[0][1]
            first["fields"] = ["environment_declaration", *first["fields"]]
        return fieldsets

    @admin.display(description="declared by the environment")
    def environment_declaration(self, obj):
        labels = (
            (str(obj._meta.get_field(field).verbose_name).capitalize(), variable)
            for field, variable in obj.declared_by.items()
        )
        return format_html(
            "<p>These fields come from environment variables and are read-only here: change "
            "the variable and run <code>manage.py bootstrap_from_env</code> (the migrate step "
            "runs it). The name is the bootstrap's; the other fields are yours to edit.</p>"
            "<ul>{}</ul>",
            format_html_join("", "<li>{}: <code>{}</code></li>", labels),
        )
