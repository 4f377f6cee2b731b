"""On PostgreSQL, the database itself refuses UPDATE and DELETE on maturity records."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION maturity_record_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'maturity_maturityrecord is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER maturity_record_append_only
    BEFORE UPDATE OR DELETE ON maturity_maturityrecord
    FOR EACH ROW EXECUTE FUNCTION maturity_record_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS maturity_record_append_only ON maturity_maturityrecord;
DROP FUNCTION IF EXISTS maturity_record_append_only();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("maturity", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
