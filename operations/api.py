"""Filled in by its owner."""

urlpatterns: list = []
