"""The registry history's first look at a mirror that existed before it.

Without it, a model mirrored before the history would have no events until something changes,
and "what did @champion point at" would answer "no version" for an alias that is set. So every
mirrored model gets, observed at the last sync that confirmed it (``seen_by`` "baseline",
``previously_seen_at`` blank: "already there when the portal first looked"): one
``model_created``, one ``version_created`` per live version (with MLflow's creation time),
one ``alias_set`` per alias, and for a model already deleted upstream its ``model_deleted``.
Models that already have events are left alone, so running it again adds nothing.
"""

from django.db import migrations
from django.utils import timezone

BATCH_SIZE = 1000
SEEN_BY = "baseline"


def _model_events(Event, model, versions, now):
    at = model.last_synced_at or model.first_seen_at or now
    common = {"source_id": model.source_id, "registered_model_id": model.pk, "seen_by": SEEN_BY}
    yield Event(
        kind="model_created", observed_at=at, upstream_at=model.created_upstream_at, **common
    )
    for version in versions:
        if version.deleted_upstream_at is None:
            yield Event(
                kind="version_created", observed_at=at, model_version_id=version.pk,
                version=version.version, new_value=version.status or None,
                upstream_at=version.created_upstream_at, **common,
            )  # fmt: skip
    if model.deleted_upstream_at is not None:
        yield Event(
            kind="model_deleted", observed_at=max(at, model.deleted_upstream_at),
            previously_seen_at=at, **common,
        )  # fmt: skip
        return
    by_number = {v.version: v.pk for v in versions}
    for alias, number in sorted((model.aliases or {}).items()):
        yield Event(
            kind="alias_set", observed_at=at, name=alias, version=number, new_value=number,
            model_version_id=by_number.get(number), **common,
        )  # fmt: skip


def baseline(apps, schema_editor):
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    ModelVersion = apps.get_model("registry", "ModelVersion")
    Event = apps.get_model("registry", "RegistryEvent")
    now = timezone.now()
    with_events = set(
        Event.objects.order_by().values_list("registered_model_id", flat=True).distinct()
    )
    pks = [
        pk
        for pk in RegisteredModel.objects.order_by("pk").values_list("pk", flat=True)
        if pk not in with_events
    ]
    for start in range(0, len(pks), BATCH_SIZE):
        chunk = pks[start : start + BATCH_SIZE]
        versions: dict[int, list] = {}
        for version in ModelVersion.objects.filter(registered_model_id__in=chunk):
            versions.setdefault(version.registered_model_id, []).append(version)
        events = []
        for model in RegisteredModel.objects.filter(pk__in=chunk).order_by("pk"):
            events.extend(_model_events(Event, model, versions.get(model.pk, []), now))
        Event.objects.bulk_create(events, batch_size=BATCH_SIZE)


class Migration(migrations.Migration):
    dependencies = [("registry", "0005_history_append_only")]

    operations = [migrations.RunPython(baseline, migrations.RunPython.noop)]
