"""What one signal costs the database (bench/operations.py measures the latency), and the
per-process copies of policies and rules that keep it low: they follow every change, in this
process and in others, and forget a change that was rolled back."""

from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from operations.models import (
    Disposition,
    MatchField,
    ModelOperations,
    RawSignal,
    Signal,
    TriggerMode,
    TriggerPolicy,
)
from operations.services import config_cache, policy_for
from registry.models import CatalogModel
from tests.pipelines.factories import PipelineFactory
from tests.registry.factories import CatalogModelFactory

from .conftest import KEYS
from .factories import MatchRuleFactory, TriggerPolicyFactory

# Committed rows (as in production), so the copies are used rather than bypassed.
pytestmark = pytest.mark.django_db(transaction=True)

# Statements of one request, BEGIN / SAVEPOINT / COMMIT included (docs/performance.md).
# BEGIN, lock the model's row (and read the model), the open episode, the signal (already
# decided) and its raw row in one INSERT whose ON CONFLICT is the duplicate check, COMMIT.
JOINED_MAX = 5
DUPLICATE_MAX = 5  # the same: only the INSERT finds the key
STARTED_MAX = 30  # the episode, its events, the run request


def post(client, slug: str, body: dict):
    return client.post(
        f"/api/v1/operations/signals/{slug}/",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_SIGNAL_KEY=KEYS[slug],
    )


def drift(model: str, key: str) -> dict:
    return {"model": model, "kind": "drift", "id": key, "source": "monitor"}


def alert(rule: str, key: str) -> dict:
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": f"/subscriptions/s/alerts/{key}",
                "alertRule": rule,
                "severity": "Sev2",
                "signalType": "Metric",
                "monitorCondition": "Fired",
                "alertTargetIDs": [],
                "firedDateTime": timezone.now().isoformat(),
            },
            "alertContext": {},
            "customProperties": None,
        },
    }


@pytest.fixture
def models():
    config_cache.clear()
    made = [CatalogModelFactory(name=f"fraud-{i}", team="risk", kind="ml") for i in range(2)]
    for model in made:
        PipelineFactory(catalog_model=model, kind="training")
    TriggerPolicy.objects.create(team="risk", mode=TriggerMode.AUTOMATIC)
    MatchRuleFactory(field=MatchField.ALERT_RULE, value="fraud-auc-drop", catalog_model=made[0])
    yield made
    config_cache.clear()


def test_queries_per_signal_are_bounded(models, django_assert_max_num_queries):
    client = Client()
    first, second = models
    assert post(client, "generic", drift(first.name, "warm")).status_code == 202  # starts
    # This process's first rule lookup loads its copy of the rules (one query, then none).
    assert post(client, "azure-monitor", alert("fraud-auc-drop", "a0")).status_code == 202
    with django_assert_max_num_queries(JOINED_MAX):
        joined = post(client, "generic", drift(first.name, "joins"))
    assert joined.json()["signals"][0]["disposition"] == Disposition.JOINED
    with django_assert_max_num_queries(JOINED_MAX):
        by_rule = post(client, "azure-monitor", alert("FRAUD-auc-drop", "a1"))
    assert by_rule.json()["signals"][0] == {
        **by_rule.json()["signals"][0],
        "model": first.name,
        "disposition": Disposition.JOINED,
    }
    with django_assert_max_num_queries(DUPLICATE_MAX):
        again = post(client, "generic", drift(first.name, "joins"))
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    with django_assert_max_num_queries(STARTED_MAX):
        started = post(client, "generic", drift(second.name, "starts"))
    assert started.json()["signals"][0]["disposition"] == Disposition.STARTED
    assert Signal.objects.count() == 5


def test_a_policy_change_applies_to_the_next_signal(models, live_server, sender):
    first, second = models
    answer = sender.post("generic", drift(first.name, "k1")).json()["signals"][0]
    assert answer["disposition"] == Disposition.STARTED
    # Saved here (this thread), read by the live server's thread: its copy is out of date.
    policy = TriggerPolicy.objects.get(team="risk")
    policy.enabled = False
    policy.save()
    answer = sender.post("generic", drift(second.name, "k2")).json()["signals"][0]
    assert answer["disposition"] == Disposition.IGNORED
    TriggerPolicyFactory(catalog_model=second, mode=TriggerMode.DRY_RUN)
    answer = sender.post("generic", drift(second.name, "k3")).json()["signals"][0]
    assert answer["disposition"] == Disposition.DRY_RUN
    TriggerPolicy.objects.filter(catalog_model=second).delete()  # the delete signal fires too
    answer = sender.post("generic", drift(second.name, "k4")).json()["signals"][0]
    assert answer["disposition"] == Disposition.IGNORED  # the (disabled) team default again


def test_a_new_rule_matches_the_next_signal(models, live_server, sender):
    _, second = models
    body = alert("second-latency", "b1")
    assert sender.post("azure-monitor", body).json()["signals"][0]["model"] is None
    MatchRuleFactory(field=MatchField.ALERT_RULE, value="second-latency", catalog_model=second)
    answer = sender.post("azure-monitor", alert("second-latency", "b2")).json()["signals"][0]
    assert answer["model"] == second.name


def test_a_rolled_back_policy_is_not_kept(models):
    model = models[1]
    team_default = policy_for(model)
    assert team_default.team == "risk"
    with pytest.raises(RuntimeError), transaction.atomic():
        own = TriggerPolicyFactory(catalog_model=model, mode=TriggerMode.DRY_RUN)
        assert policy_for(model) == own  # its own transaction sees it
        raise RuntimeError("roll back")
    assert not TriggerPolicy.objects.filter(catalog_model=model).exists()
    assert policy_for(model) == team_default


def test_last_heard_is_written_when_it_moves_by_the_resolution(models, settings):
    settings.OPERATIONS_LAST_HEARD_RESOLUTION_SECONDS = 60
    client = Client()
    model = models[0]
    post(client, "generic", drift(model.name, "h1"))
    first = ModelOperations.objects.get(pk=model.pk).last_signal_at
    post(client, "generic", drift(model.name, "h2"))
    assert ModelOperations.objects.get(pk=model.pk).last_signal_at == first  # within a minute
    earlier = timezone.now() - dt.timedelta(minutes=5)
    ModelOperations.objects.filter(pk=model.pk).update(
        last_signal_at=earlier, last_monitoring_signal_at=earlier
    )
    post(client, "generic", drift(model.name, "h3"))
    state = ModelOperations.objects.get(pk=model.pk)
    assert state.last_signal_at > first and state.last_monitoring_signal_at > earlier


def test_a_renamed_model_is_not_matched_by_its_old_name(models):
    client = Client()
    old = models[0]
    assert post(client, "generic", drift(old.name, "r1")).json()["signals"][0]["model"] == old.name
    # The registry sync renames with a queryset update: no signal tells the intake.
    CatalogModel.objects.filter(pk=old.pk).update(name="fraud-renamed")
    newcomer = CatalogModelFactory(name=old.name, team="risk", kind="ml")
    answer = post(client, "generic", drift(old.name, "r2")).json()["signals"][0]
    assert answer["model"] == newcomer.name
    assert Signal.objects.get(pk=answer["id"]).catalog_model_id == newcomer.pk
    CatalogModel.objects.filter(pk=newcomer.pk).update(name="someone-else")
    gone = post(client, "generic", drift(old.name, "r3")).json()["signals"][0]
    assert gone["model"] is None and gone["disposition"] == Disposition.UNMATCHED


def test_concurrent_deliveries_of_an_unmatched_event_make_one_signal(live_server, sender):
    # No model row to lock: the INSERT's ON CONFLICT alone tells the repeats apart.
    body = json.dumps({"model": "nobody-knows", "kind": "drift", "id": "race-2"}).encode()
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _i: sender.post("generic", body).status_code, range(6)))
    assert sorted(statuses) == [200] * 5 + [202]
    assert Signal.objects.get().disposition == Disposition.UNMATCHED
    outcomes = sorted(RawSignal.objects.values_list("outcome", "signal_count"))
    assert outcomes == [("accepted", 1)] + [("duplicate", 0)] * 5
