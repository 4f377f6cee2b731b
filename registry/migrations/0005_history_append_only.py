"""On PostgreSQL, the database itself refuses UPDATE and DELETE on the registry history."""

from django.db import migrations

from core.append_only import append_only_triggers


class Migration(migrations.Migration):
    dependencies = [("registry", "0004_history")]

    operations = [append_only_triggers("registry_registryevent")]
