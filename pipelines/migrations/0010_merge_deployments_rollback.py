"""Joins the branches of issue 17 built side by side (no schema change of its own)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0008_deployments_backfill"),
        ("pipelines", "0009_rollback"),
    ]

    operations = []
