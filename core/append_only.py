"""Tables that keep history (the approvals audit trail, maturity records): rows are inserted
and never updated or deleted. The app refuses it here; on PostgreSQL each table also has a
trigger that refuses UPDATE and DELETE (see the apps' migrations)."""

from __future__ import annotations

from django.db import models


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
