"""On PostgreSQL, the database itself refuses UPDATE and DELETE on the raw signals and the
episode timelines."""

from django.db import migrations

from core.append_only import append_only_triggers


class Migration(migrations.Migration):
    dependencies = [("operations", "0001_initial")]

    operations = [append_only_triggers("operations_rawsignal", "operations_episodeevent")]
