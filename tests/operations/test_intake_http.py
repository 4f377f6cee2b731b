"""The signal endpoints over real HTTP (pytest-django's live_server, requests): each payload
shape, the handshakes, duplicates, credentials, bad and oversized payloads, Resolved."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from core.roles import Role
from operations.models import ModelOperations, RawSignal, Signal
from portal import api_tokens
from tests.registry.factories import CatalogModelFactory

from .conftest import KEYS, fixture_bytes, fixture_json, signature
from .factories import MatchRuleFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fraud(db):
    return CatalogModelFactory(name="fraud-detector", kind="ml", team="risk")


def test_generic_signal_is_accepted_matched_and_decided(sender, fraud):
    response = sender.post("generic", {"model": "FRAUD-detector", "kind": "drift", "id": "1"})
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["received"] == 1 and answer["duplicates"] == 0
    (item,) = answer["signals"]
    assert item["model"] == "fraud-detector" and item["kind"] == "drift"
    assert item["disposition"]  # the trigger policy decided something
    raw = RawSignal.objects.get(pk=answer["raw_id"])
    assert raw.outcome == "accepted" and raw.signal_count == 1
    assert raw.sender == "generic (shared secret)"
    assert "x-signal-key" not in raw.headers
    state = ModelOperations.objects.get(catalog_model=fraud)
    assert state.last_signal_at and state.last_monitoring_signal_at


def test_the_same_delivery_twice_is_one_signal(sender, fraud):
    body = fixture_bytes("event_grid_blob_created.json")
    MatchRuleFactory(field="blob_prefix", value="testcontainer/", catalog_model=fraud)
    first = sender.post("event-grid", body)
    again = sender.post("event-grid", body)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["duplicates"] == 1 and "Already received" in again.json()["detail"]
    assert Signal.objects.count() == 1
    assert list(RawSignal.objects.order_by("pk").values_list("outcome", flat=True)) == [
        "accepted",
        "duplicate",
    ]
    state = ModelOperations.objects.get(catalog_model=fraud)
    assert state.last_signal_at and state.last_monitoring_signal_at is None  # data arrival


def test_event_grid_handshake(sender):
    response = sender.post(
        "event-grid",
        fixture_bytes("event_grid_subscription_validation.json"),
        headers={"aeg-event-type": "SubscriptionValidation"},
    )
    assert response.status_code == 200
    assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    raw = RawSignal.objects.get()
    assert raw.outcome == "handshake" and raw.headers["aeg-event-type"] == "SubscriptionValidation"


def test_cloudevents_abuse_protection_handshake(sender):
    response = requests.options(
        sender.url("event-grid"),
        headers={"WebHook-Request-Origin": "eventgrid.azure.net"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"
    assert response.headers["WebHook-Allowed-Rate"] == "*"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("cloudevents_blob_created.json", "application/cloudevents+json; charset=utf-8"),
        ("cloudevents_batch_run_status_changed.json", "application/cloudevents-batch+json"),
    ],
)
def test_cloudevents_are_read(sender, name, content_type):
    response = sender.post("event-grid", fixture_bytes(name), content_type=content_type)
    assert response.status_code == 202, response.text
    assert RawSignal.objects.get().format == "cloudevents"
    assert Signal.objects.get().format == "cloudevents"


def test_run_status_changed_without_the_tag_is_ignored(sender):
    response = sender.post("event-grid", fixture_bytes("event_grid_run_status_changed_plain.json"))
    assert response.status_code == 200
    assert "without the model monitor's" in response.json()["ignored"]
    assert RawSignal.objects.get().outcome == "ignored"
    assert not Signal.objects.exists()


def test_azure_monitor_resolved_closes_fired(sender, fraud):
    MatchRuleFactory(field="alert_rule", value="wcus-r2-gen2", catalog_model=fraud)
    fired = sender.post("azure-monitor", fixture_bytes("azure_monitor_metric_fired.json"))
    resolved = sender.post("azure-monitor", fixture_bytes("azure_monitor_metric_resolved.json"))
    assert fired.status_code == 202 and resolved.status_code == 202
    first = Signal.objects.get(pk=fired.json()["signals"][0]["id"])
    closing = Signal.objects.get(pk=resolved.json()["signals"][0]["id"])
    assert closing.kind == "resolved" and closing.resolves == first
    assert closing.disposition == "resolves"
    first.refresh_from_db()
    assert first.resolved_at is not None


def test_databricks_job_maps_by_rule_with_its_kind(sender, fraud):
    MatchRuleFactory(field="job_id", value="1098402913431208", catalog_model=fraud, kind="drift")
    response = sender.post("databricks", fixture_bytes("databricks_on_failure.json"))
    assert response.status_code == 202
    assert response.json()["signals"][0] == {**response.json()["signals"][0], "kind": "drift"}
    assert Signal.objects.get().matched_by.startswith("rule #")
    start = sender.post("databricks", fixture_bytes("databricks_on_start.json"))
    assert start.status_code == 200 and "nothing to act on" in start.json()["ignored"]


def test_evidently_drift_and_clean_heartbeat(sender, fraud):
    drift = sender.post("evidently", fixture_bytes("evidently_current_drift.json"))
    assert drift.status_code == 202 and drift.json()["signals"][0]["model"] == "fraud-detector"
    ModelOperations.objects.filter(pk=fraud.pk).update(last_monitoring_signal_at=None)
    clean = sender.post(
        "evidently",
        fixture_bytes("evidently_legacy_clean.json"),
        params={"model": "fraud-detector"},
    )
    assert clean.status_code == 200
    assert clean.json()["ignored"].startswith("no drift")
    assert clean.json()["monitoring_heard_from"] == "fraud-detector"
    assert ModelOperations.objects.get(pk=fraud.pk).last_monitoring_signal_at is not None


def test_bad_payload_is_a_400_and_kept(sender):
    response = sender.post("azure-monitor", b'{"schemaId": "azureMonitorCommonAlertSchema"}')
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "data must be a JSON object, not null."
    assert body["code"] == "bad_payload"
    raw = RawSignal.objects.get(pk=body["raw_id"])
    assert raw.outcome == "rejected" and raw.error == body["detail"]
    assert raw.body == '{"schemaId": "azureMonitorCommonAlertSchema"}'


def test_a_nul_character_is_kept_readable_not_a_500(sender, fraud):
    """PostgreSQL's text and jsonb refuse NUL: a raw NUL in a bad body, a JSON \\u0000 the
    plain signal refuses, and one in an alert's rule name are kept with U+FFFD in its place
    (found by the schemathesis run)."""
    bad = sender.post("generic", b'{"model": "fraud-detector"\x00}')
    assert bad.status_code == 400 and bad.json()["code"] == "bad_payload"
    assert (
        RawSignal.objects.get(pk=bad.json()["raw_id"]).body == '{"model": "fraud-detector"\ufffd}'
    )
    refused = sender.post(
        "generic", b'{"model": "fraud-detector", "kind": "drift", "title": "drift\\u0000"}'
    )
    assert refused.status_code == 400
    assert "title: Null characters are not allowed." in refused.json()["detail"]
    alert = fixture_json("azure_monitor_metric_fired.json")
    alert["data"]["essentials"]["alertRule"] += "\u0000"
    alert["data"]["customProperties"] = {"model": "fraud-detector", "n\u0000": "v\u0000"}
    accepted = sender.post("azure-monitor", json.dumps(alert).encode())
    assert accepted.status_code == 202, accepted.text
    signal = Signal.objects.get(pk=accepted.json()["signals"][0]["id"])
    assert "\ufffd" in signal.title
    stored = json.dumps([signal.attributes, signal.details, signal.source_ref, signal.title])
    assert "\\u0000" not in stored and "\x00" not in stored


def test_oversize_is_a_413(sender):
    response = sender.post("generic", b"{" + b" " * (1024 * 1024) + b"}")
    assert response.status_code == 413
    assert "at most 1,048,576 bytes" in response.json()["detail"]
    raw = RawSignal.objects.get()
    assert raw.outcome == "rejected" and raw.body == ""


def test_bad_credentials_are_refused_without_the_body(sender):
    """One test for every refusal (each live-server test pays a database flush)."""
    ways = [
        {"key": False},
        {"key": "wrong"},
        {"key": False, "params": {"key": "wrong"}},
        {"key": False, "headers": {"X-Signal-Signature": "sha256=00"}},
        {"key": False, "headers": {"Authorization": "Bearer mlpt_nonsense"}},
    ]
    for how in ways:
        response = sender.post("generic", {"kind": "drift", "model": "x"}, **how)
        assert response.status_code == 401, (how, response.text)
        assert response.headers.get("WWW-Authenticate"), how
        assert response.json()["detail"], how
    raws = list(RawSignal.objects.all())
    assert len(raws) == len(ways)
    assert all(r.outcome == "refused" and r.body == "" and r.error for r in raws)
    assert not Signal.objects.exists()


def test_concurrent_deliveries_of_one_event_make_one_signal(sender, fraud):
    body = json.dumps({"model": "fraud-detector", "kind": "drift", "id": "race"}).encode()
    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda _i: sender.post("generic", body).status_code, range(6)))
    assert sorted(statuses) == [200] * 5 + [202]
    assert Signal.objects.count() == 1
    assert RawSignal.objects.filter(outcome="duplicate").count() == 5


def test_other_ways_to_give_the_secret(sender, fraud):
    body = json.dumps({"model": "fraud-detector", "kind": "drift", "id": "a"}).encode()
    signed = sender.post(
        "generic",
        body,
        key=False,
        headers={"X-Signal-Signature": signature(KEYS["generic"], body)},
    )
    assert signed.status_code == 202, signed.text
    basic = base64.b64encode(b"databricks:test-databricks-key").decode()
    by_basic = sender.post(
        "databricks",
        fixture_bytes("databricks_on_failure.json"),
        key=False,
        headers={"Authorization": f"Basic {basic}"},
    )
    assert by_basic.status_code == 202, by_basic.text
    by_query = sender.post(
        "azure-monitor",
        fixture_bytes("azure_monitor_metric_fired.json"),
        key=False,
        params={"key": "test-azure-monitor-key-next"},  # the rotation's second secret
    )
    assert by_query.status_code == 202, by_query.text
    assert "query" not in RawSignal.objects.filter(format="azure_monitor").get().headers


def test_machine_tokens_by_role_and_scope(sender, make_user, fraud):
    body = {"model": "fraud-detector", "kind": "drift", "id": "t"}
    _token, writer = api_tokens.token_create(
        user=make_user(Role.DATA_SCIENTIST), name="monitor", scope="write"
    )
    _token, reader = api_tokens.token_create(
        user=make_user(Role.DATA_SCIENTIST), name="reader", scope="read"
    )
    _token, approver = api_tokens.token_create(
        user=make_user(Role.APPROVER), name="approver", scope="write"
    )
    ok = sender.post("generic", body, key=False, headers={"Authorization": f"Bearer {writer}"})
    assert ok.status_code == 202, ok.text
    read_only = sender.post(
        "generic", body, key=False, headers={"Authorization": f"Bearer {reader}"}
    )
    assert read_only.status_code == 403 and "read-only" in read_only.json()["detail"]
    wrong_role = sender.post(
        "generic", body, key=False, headers={"Authorization": f"Bearer {approver}"}
    )
    assert wrong_role.status_code == 403 and "data scientist" in wrong_role.json()["detail"]


def test_unmatched_signal_suggests_a_rule_that_rematches_it(sender, fraud):
    from operations.services.matching import rule_suggestions, unmatched_rematch

    body = fixture_json("event_grid_adls_flush_and_create.json")
    response = sender.post("event-grid", json.dumps(body).encode())
    assert response.status_code == 202
    signal = Signal.objects.get()
    assert signal.catalog_model is None and signal.disposition == "unmatched"
    suggestions = rule_suggestions(signal)
    prefixes = [value for field, value, _label in suggestions if field == "blob_prefix"]
    assert prefixes[:2] == ["landing/fraud/2025/03/22/", "landing/fraud/2025/03/"]
    assert prefixes[-1] == "landing/"
    rule = MatchRuleFactory(field="blob_prefix", value="landing/fraud/", catalog_model=fraud)
    assert unmatched_rematch(rule) == 1
    signal.refresh_from_db()
    assert signal.catalog_model == fraud and signal.rule == rule
    assert signal.disposition != "unmatched"
