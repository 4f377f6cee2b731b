"""Project package: settings, URLs, the Celery app, sign-in and roles, home and health."""

from .celery import app as celery_app

__all__ = ("celery_app",)
