from django.apps import AppConfig


class CoreConfig(AppConfig):
    """An app only so Django finds its template tags (``portal_ui``); it has no models."""

    name = "core"
    verbose_name = "Portal kernel"
