"""Django admin registrations for operators."""

from django.contrib import admin  # noqa: F401
