"""On PostgreSQL, the database itself refuses UPDATE and DELETE on the model card history."""

from django.db import migrations

from core.append_only import append_only_triggers


class Migration(migrations.Migration):
    dependencies = [("registry", "0006_cards")]

    operations = [append_only_triggers("registry_modelcardrevision")]
