"""The registry history the syncs record, read against a real `mlflow server`: the events, the
alias lanes with their "between A and B" windows, and what an alias pointed at at a moment."""

import datetime as dt
import importlib
import uuid
import warnings

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry import selectors, services
from registry.models import (
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    RegistryEventKind,
    RegistrySource,
)
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory
from tests.registry.upstream import add_version

pytestmark = pytest.mark.django_db
K = RegistryEventKind


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def source(mlflow_server):
    return RegistrySource.objects.create(
        name=unique("src"), tracking_uri=mlflow_server.url, is_central=True
    )


def full_sync(source):
    source.refresh_from_db()
    result = services.registry_sync(source=source, full=True)
    assert result.ok, result.as_dict()
    return result


def targeted_sync(source, name):
    result = services.registered_model_sync(source=source, name=name)
    assert result.ok, result.as_dict()
    return result


def events_of(source, name, *kinds):
    qs = RegistryEvent.objects.filter(source=source, registered_model__name=name)
    if kinds:
        qs = qs.filter(kind__in=kinds)
    return list(qs.order_by("observed_at", "pk"))


def last_seen(source, name):
    return RegisteredModel.objects.get(source=source, name=name).last_synced_at


def entry(source, name):
    return RegisteredModel.objects.get(source=source, name=name).catalog_model


def test_first_sync_records_model_versions_and_aliases_as_already_there(source, mlflow_client):
    name = unique("fraud")
    mlflow_client.create_registered_model(name, tags={"team": "risk"})
    add_version(mlflow_client, name)
    add_version(mlflow_client, name)
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    mlflow_client.set_registered_model_alias(name, "challenger", "2")

    full_sync(source)

    events = events_of(source, name)
    assert events[0].kind == K.MODEL_CREATED
    assert sorted((e.kind, e.version or 0, e.name) for e in events) == [
        (K.ALIAS_SET, 1, "champion"),
        (K.ALIAS_SET, 2, "challenger"),
        (K.MODEL_CREATED, 0, ""),
        (K.VERSION_CREATED, 1, ""),
        (K.VERSION_CREATED, 2, ""),
    ]
    assert all(e.previously_seen_at is None and e.seen_by == "full sweep" for e in events)
    model = RegisteredModel.objects.get(source=source, name=name)
    v1 = model.versions.get(version=1)
    created = {e.version: e for e in events if e.kind == K.VERSION_CREATED}
    assert created[1].upstream_at == v1.created_upstream_at and created[1].model_version == v1
    champion = next(e for e in events if e.name == "champion")
    assert champion.model_version == v1 and (champion.old_value, champion.new_value) == (None, 1)
    assert events[0].upstream_at == model.created_upstream_at

    lanes = selectors.alias_lanes(model.catalog_model)
    assert [lane.title for lane in lanes] == ["@challenger", "@champion"]
    lane = lanes[1]
    (span,) = lane.spans
    assert span.start is None and span.is_current and span.version == 1
    assert "already set when the portal first looked" in span.title


def test_a_repeated_sync_writes_no_event(source, mlflow_client):
    name = unique("churn")
    mlflow_client.create_registered_model(name, tags={"a": "1"})
    add_version(mlflow_client, name)
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    full_sync(source)
    before = RegistryEvent.objects.count()

    again = full_sync(source)
    source.refresh_from_db()
    incremental = services.registry_sync(source=source)
    targeted = targeted_sync(source, name)

    assert incremental.ok and incremental.mode == "incremental"
    assert again.events == 0 and incremental.events == 0 and targeted.events == 0
    assert RegistryEvent.objects.count() == before


def test_alias_moved_then_moved_back_then_model_deleted(source, mlflow_client):
    name = unique("pricing")
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name)
    add_version(mlflow_client, name)
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    full_sync(source)
    t1 = last_seen(source, name)

    mlflow_client.set_registered_model_alias(name, "champion", "2")
    full_sync(source)
    t2 = last_seen(source, name)

    mlflow_client.set_registered_model_alias(name, "champion", "1")
    full_sync(source)
    t3 = last_seen(source, name)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_client.delete_registered_model(name)
    result = full_sync(source)
    t4 = RegisteredModel.objects.get(source=source, name=name).deleted_upstream_at
    assert t1 < t2 < t3 < t4

    moves = events_of(source, name, K.ALIAS_SET, K.ALIAS_REMOVED)
    assert [(e.version, e.old_value, e.previously_seen_at, e.observed_at) for e in moves] == [
        (1, None, None, t1),
        (2, 1, t1, t2),
        (1, 2, t2, t3),
    ]
    (deleted,) = events_of(source, name, K.MODEL_DELETED)
    assert (deleted.previously_seen_at, deleted.observed_at) == (t3, t4)
    # One model_deleted event: neither its versions nor its aliases get one of their own.
    assert events_of(source, name, K.VERSION_DELETED) == []
    assert result.versions.deleted == 2

    (lane,) = selectors.alias_lanes(entry(source, name))
    assert lane.title == "@champion"
    first, second, third = lane.spans
    assert (first.version, first.start, first.end_after, first.end) == (1, None, t1, t2)
    assert (second.version, second.start_after, second.start) == (2, t1, t2)
    assert (second.end_after, second.end) == (t2, t3)
    assert (third.version, third.start_after, third.start) == (1, t2, t3)
    assert (third.end_after, third.end) == (t3, t4)  # ended by the model's deletion
    assert "moved between" in second.title and "the model was deleted" in third.title


def test_alias_at_before_between_and_after(source, mlflow_client):
    name = unique("credit")
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name)
    add_version(mlflow_client, name)
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    full_sync(source)
    t1 = last_seen(source, name)
    mlflow_client.set_registered_model_alias(name, "champion", "2")
    full_sync(source)
    t2 = last_seen(source, name)
    mlflow_client.delete_registered_model_alias(name, "champion")
    full_sync(source)
    t3 = last_seen(source, name)
    catalog_model = entry(source, name)
    model = RegisteredModel.objects.get(source=source, name=name)
    ms = dt.timedelta(microseconds=1)

    def at(moment):
        return selectors.alias_at(catalog_model, "champion", moment)

    ancient = at(model.created_upstream_at - dt.timedelta(days=1))
    assert ancient.outcome == "none" and "registered only at" in ancient.text
    before_looking = at(t1 - ms)
    assert before_looking.outcome == "unknown" and before_looking.window_end == t1
    assert "before the portal first looked" in before_looking.text

    assert (at(t1).outcome, at(t1).version) == ("version", 1)
    between = at(t1 + (t2 - t1) / 2)
    assert between.outcome == "unknown"
    assert (between.window_start, between.window_end, between.possible) == (t1, t2, (1, 2))
    assert "moved between" in between.text and "v1 or v2" in between.text
    assert (at(t2).outcome, at(t2).version) == ("version", 2)
    removed = at(t2 + (t3 - t2) / 2)
    assert removed.outcome == "unknown" and removed.possible == (2, None)
    after = at(t3 + dt.timedelta(hours=1))
    assert (after.outcome, after.version) == ("none", None)
    other = selectors.alias_at(catalog_model, "challenger", t3)
    assert other.outcome == "none" and other.source == source.name


def test_tags_description_and_stage_changes(source, mlflow_client):
    name = unique("demand")
    mlflow_client.create_registered_model(name, tags={"team": "risk", "old": "x"})
    add_version(mlflow_client, name, tags={"validated": "no"})
    full_sync(source)
    t1 = last_seen(source, name)

    mlflow_client.set_registered_model_tag(name, "team", "growth")
    mlflow_client.delete_registered_model_tag(name, "old")
    mlflow_client.update_registered_model(name, description="Forecasts demand")
    mlflow_client.set_model_version_tag(name, "1", "validated", "yes")
    mlflow_client.set_model_version_tag(name, "1", "owner", "ana")
    mlflow_client.update_model_version(name, "1", description="first cut")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_client.transition_model_version_stage(name, "1", "Staging")
    full_sync(source)
    t2 = last_seen(source, name)

    changes = [
        (e.kind, e.version, e.name, e.old_value, e.new_value)
        for e in events_of(source, name)
        if e.observed_at == t2
    ]
    assert sorted(changes, key=str) == sorted(
        [
            (K.MODEL_DESCRIPTION, None, "", "", "Forecasts demand"),
            (K.MODEL_TAG_SET, None, "team", "risk", "growth"),
            (K.MODEL_TAG_REMOVED, None, "old", "x", None),
            (K.VERSION_STAGE, 1, "", "", "Staging"),
            (K.VERSION_DESCRIPTION, 1, "", "", "first cut"),
            (K.VERSION_TAG_SET, 1, "owner", None, "ana"),
            (K.VERSION_TAG_SET, 1, "validated", "no", "yes"),
        ],
        key=str,
    )
    assert {e.previously_seen_at for e in events_of(source, name) if e.observed_at == t2} == {t1}


def test_status_change_version_deleted_and_model_back(source, mlflow_client):
    name = unique("screening")
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name)
    add_version(mlflow_client, name)
    mlflow_client.set_registered_model_alias(name, "champion", "2")
    full_sync(source)
    # The last sync saw version 1 still registering; this one sees it READY.
    ModelVersion.objects.filter(registered_model__name=name, version=1).update(
        status="PENDING_REGISTRATION"
    )
    mlflow_client.delete_model_version(name, "2")
    full_sync(source)
    (status,) = events_of(source, name, K.VERSION_STATUS)
    assert (status.version, status.old_value, status.new_value) == (
        1,
        "PENDING_REGISTRATION",
        "READY",
    )
    (deleted,) = events_of(source, name, K.VERSION_DELETED)
    assert deleted.version == 2 and deleted.model_version.version == 2
    (removed,) = events_of(source, name, K.ALIAS_REMOVED)  # deleting v2 dropped its alias
    assert (removed.name, removed.version, removed.old_value) == ("champion", 2, 2)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_client.delete_registered_model(name)
    full_sync(source)
    gone_at = RegisteredModel.objects.get(source=source, name=name).deleted_upstream_at
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name)
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    full_sync(source)
    back = events_of(source, name, K.MODEL_REAPPEARED, K.VERSION_REAPPEARED)
    assert [(e.kind, e.version, e.previously_seen_at) for e in back] == [
        (K.MODEL_REAPPEARED, None, gone_at),
        (K.VERSION_REAPPEARED, 1, gone_at),
    ]
    (lane,) = selectors.alias_lanes(entry(source, name))
    assert [(s.version, s.start_after) for s in lane.spans][-1] == (1, gone_at)
    assert lane.spans[-1].is_current


def test_targeted_sync_records_with_its_name(source, mlflow_client):
    name = unique("webhooked")
    mlflow_client.create_registered_model(name)
    add_version(mlflow_client, name)
    targeted_sync(source, name)
    t1 = last_seen(source, name)
    add_version(mlflow_client, name)
    mlflow_client.set_registered_model_alias(name, "champion", "2")

    result = targeted_sync(source, name)

    new = [e for e in events_of(source, name) if e.previously_seen_at == t1]
    assert {(e.kind, e.version) for e in new} == {(K.VERSION_CREATED, 2), (K.ALIAS_SET, 2)}
    assert {e.seen_by for e in new} == {"targeted"} and result.events == 2
    created = next(e for e in new if e.kind == K.VERSION_CREATED)
    assert created.upstream_at is not None and t1 <= created.upstream_at <= created.observed_at
    assert next(e for e in new if e.kind == K.ALIAS_SET).model_version.version == 2


def test_events_are_written_in_bulk(source, mlflow_client):
    name = unique("bulk")
    mlflow_client.create_registered_model(name)
    for _ in range(3):
        add_version(mlflow_client, name, tags={"k": "v"})
    for alias, version in (("a", "1"), ("b", "2"), ("c", "3")):
        mlflow_client.set_registered_model_alias(name, alias, version)
    with CaptureQueriesContext(connection) as queries:
        result = targeted_sync(source, name)
    sql = [q["sql"] for q in queries.captured_queries]
    inserts = [q for q in sql if 'INSERT INTO "registry_registryevent"' in q]
    assert result.events == 7 and len(inserts) == 1


def test_the_baseline_migration_gives_a_mirror_from_before_the_history_its_first_look():
    baseline = importlib.import_module("registry.migrations.0006_history_baseline").baseline
    ms = dt.timedelta(microseconds=1)
    live = RegisteredModelFactory(name=unique("old"), aliases={"champion": 2})
    ModelVersionFactory(registered_model=live, version=1)
    v2 = ModelVersionFactory(registered_model=live, version=2)
    gone = RegisteredModelFactory(
        name=unique("gone"), aliases={"champion": 1}, deleted_upstream_at=timezone.now()
    )
    seen = RegisteredModelFactory(name=unique("seen"))
    RegistryEvent.objects.create(
        source=seen.source, registered_model=seen, kind=K.MODEL_CREATED,
        observed_at=timezone.now(),
    )  # fmt: skip

    baseline(django_apps, None)
    baseline(django_apps, None)  # again: nothing more

    kinds = [(e.kind, e.version) for e in RegistryEvent.objects.filter(registered_model=live)]
    assert sorted(kinds, key=str) == sorted(
        [(K.MODEL_CREATED, None), (K.VERSION_CREATED, 1), (K.VERSION_CREATED, 2), (K.ALIAS_SET, 2)],
        key=str,
    )
    champion = RegistryEvent.objects.get(registered_model=live, kind=K.ALIAS_SET)
    assert champion.previously_seen_at is None and champion.observed_at == live.last_synced_at
    assert champion.model_version == v2 and champion.seen_by == "baseline"
    answer = selectors.alias_at(live.catalog_model, "champion", live.last_synced_at)
    assert (answer.outcome, answer.version) == ("version", 2)
    unseen = selectors.alias_at(live.catalog_model, "champion", live.last_synced_at - ms)
    assert unseen.outcome == "unknown" and "before the portal first looked" in unseen.text
    gone_kinds = {e.kind for e in RegistryEvent.objects.filter(registered_model=gone)}
    assert gone_kinds == {K.MODEL_CREATED, K.MODEL_DELETED}
    assert RegistryEvent.objects.filter(registered_model=seen).count() == 1
