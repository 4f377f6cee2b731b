"""On PostgreSQL, the database itself refuses UPDATE and DELETE on the deployment history."""

from django.db import migrations

from core.append_only import append_only_triggers


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0006_deployments")]

    operations = [append_only_triggers("pipelines_deploymentrecord")]
