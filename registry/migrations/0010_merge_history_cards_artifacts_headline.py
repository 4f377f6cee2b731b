"""Joins the branches of issue 17 built side by side (no schema change of its own)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0006_history_baseline"),
        ("registry", "0007_cards_append_only"),
        ("registry", "0008_artifacts"),
        ("registry", "0009_headline"),
    ]

    operations = []
