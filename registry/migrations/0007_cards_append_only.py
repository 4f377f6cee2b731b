"""On PostgreSQL, the database itself refuses UPDATE and DELETE on the model card history."""

from django.db import migrations

TABLES = ("registry_modelcardrevision",)


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(
            f"""
CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '{table} is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER {table}_append_only
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {table}_append_only();
""",
            params=None,
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        schema_editor.execute(
            f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"
            f"DROP FUNCTION IF EXISTS {table}_append_only();",
            params=None,
        )


class Migration(migrations.Migration):
    dependencies = [("registry", "0006_cards")]

    operations = [migrations.RunPython(create, drop)]
