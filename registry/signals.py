"""Signals the registry sends, so higher apps can react without importing upward."""

from django.dispatch import Signal

# Sent after commit when a sync changed registered models: kwargs source, names.
registered_models_changed = Signal()
