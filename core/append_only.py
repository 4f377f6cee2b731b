"""Tables that keep history (the approvals audit trail, maturity records): rows are inserted
and never updated or deleted. The app refuses it here; on PostgreSQL each table also has a
trigger that refuses UPDATE and DELETE (see the apps' migrations)."""

from __future__ import annotations

from django.db import migrations, models


def _refusal(what: str, verb: str) -> TypeError:
    return TypeError(f"{what} append-only: rows are never {verb}.")


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise _refusal(self.model.append_only_name, "updated")

    def delete(self):
        raise _refusal(self.model.append_only_name, "deleted")

    def bulk_update(self, *args, **kwargs):
        raise _refusal(self.model.append_only_name, "updated")


class AppendOnlyModel(models.Model):
    """Subclasses set ``append_only_name`` ("The audit trail is", "Maturity records are")."""

    append_only_name = "This table is"

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None or not self._state.adding:
            raise _refusal(self.append_only_name, "updated")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise _refusal(self.append_only_name, "deleted")


def append_only_triggers(*tables: str):
    """A migration operation: on PostgreSQL, a trigger per table that refuses UPDATE and
    DELETE (the database's half of the promise; other databases rely on the model's)."""

    def create(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in tables:
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
        for table in tables:
            schema_editor.execute(
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"
                f"DROP FUNCTION IF EXISTS {table}_append_only();",
                params=None,
            )

    return migrations.RunPython(create, drop)
