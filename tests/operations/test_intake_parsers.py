"""Each parser on the vendors' own samples (fixtures/) and on what is wrong with bad ones."""

from __future__ import annotations

import json

import pytest

from operations.payloads import azure_monitor, databricks, event_grid, evidently, generic
from operations.payloads.base import PayloadError

from .conftest import fixture_bytes, fixture_json


def _b(doc) -> bytes:
    return json.dumps(doc).encode()


def test_azure_monitor_fired_and_resolved_pair_by_alert_id():
    fired = azure_monitor.parse(fixture_bytes("azure_monitor_metric_fired.json")).signals[0]
    resolved = azure_monitor.parse(fixture_bytes("azure_monitor_metric_resolved.json")).signals[0]
    assert fired.kind == "threshold_breach"  # rule "WCUS-R2-Gen2" names no kind
    assert fired.severity == "info"  # Sev3
    assert fired.observed_at.isoformat() == "2019-03-22T13:58:24.371321+00:00"
    assert fired.attributes["alert_rule"] == "WCUS-R2-Gen2"
    assert fired.attributes["resource_ids"][0].endswith("virtualmachines/wcus-r2-gen2")
    assert fired.details["condition"]["criteria"][0]["metricValue"] == 31.1105
    assert resolved.kind == "resolved"
    assert resolved.resolves_key == fired.dedupe_key != resolved.dedupe_key
    assert resolved.observed_at.minute == 3


def test_azure_monitor_custom_properties_give_kind_and_tags():
    signal = azure_monitor.parse(fixture_bytes("azure_monitor_log_v2_fired_custom.json")).signals[0]
    assert signal.kind == "drift"
    assert signal.severity == "error"  # Sev1
    assert signal.attributes["tags"] == {"team": "risk", "signalKind": "drift"}


@pytest.mark.parametrize(
    ("rule", "description", "kind"),
    [
        ("fraud-feature-drift", "", "drift"),
        ("fraud-auc", "AUC below 0.8", "performance_drop"),
        ("cpu-high", "", "threshold_breach"),
    ],
)
def test_azure_monitor_kind_is_guessed_from_the_rule(rule, description, kind):
    doc = fixture_json("azure_monitor_metric_fired.json")
    doc["data"]["essentials"].update(alertRule=rule, description=description)
    assert azure_monitor.parse(_b(doc)).signals[0].kind == kind


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schemaId="Microsoft.Insights/activityLogs"), "common alert schema"),
        (lambda d: d["data"]["essentials"].pop("alertId"), "data.essentials.alertId is missing"),
        (lambda d: d["data"]["essentials"].update(monitorCondition="Open"), "Fired or Resolved"),
        (lambda d: d["data"]["essentials"].update(severity="Sev9"), "severity is 'Sev9'"),
        (lambda d: d["data"]["essentials"].update(firedDateTime="yesterday"), "ISO 8601"),
        (lambda d: d["data"].update(customProperties={"signalKind": "boom"}), "not a kind"),
    ],
)
def test_azure_monitor_bad_payloads_say_what_is_wrong(change, message):
    doc = fixture_json("azure_monitor_metric_fired.json")
    change(doc)
    with pytest.raises(PayloadError, match=message):
        azure_monitor.parse(_b(doc))


def test_not_json_is_said_so():
    with pytest.raises(PayloadError, match="not JSON: Expecting value at line 1, column 1"):
        azure_monitor.parse(b"hello")
    with pytest.raises(PayloadError, match="empty"):
        generic.parse(b"  ")


def test_event_grid_blob_created():
    result = event_grid.parse(fixture_bytes("event_grid_blob_created.json"))
    assert result.format == "event_grid"
    (signal,) = result.signals
    assert signal.kind == "data_arrival"
    assert signal.attributes["blob_path"] == "testcontainer/testfile.txt"
    assert signal.dedupe_key == "event-grid:831e1650-001e-001b-66ab-eeb76e069631"


def test_event_grid_adls_counts_the_flush_not_the_create():
    result = event_grid.parse(fixture_bytes("event_grid_adls_flush_and_create.json"))
    (signal,) = result.signals
    assert signal.details["api"] == "FlushWithClose"
    assert signal.attributes["blob_path"] == "landing/fraud/2025/03/22/transactions.parquet"
    assert "CreateFile is not a finished blob" in result.ignored


def test_event_grid_handshake():
    result = event_grid.parse(fixture_bytes("event_grid_subscription_validation.json"))
    assert result.handshake == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert result.signals == []


def test_run_status_changed_needs_the_monitor_tag():
    breach = event_grid.parse(fixture_bytes("event_grid_run_status_changed_monitor.json"))
    (signal,) = breach.signals
    assert signal.kind == "threshold_breach"
    assert signal.attributes["alert_rule"] == "fraud-detector-monitor"
    plain = event_grid.parse(fixture_bytes("event_grid_run_status_changed_plain.json"))
    assert plain.signals == []
    assert "without the model monitor's" in plain.ignored


def test_cloudevents_single_and_batch():
    single = event_grid.parse(fixture_bytes("cloudevents_blob_created.json"))
    assert single.format == "cloudevents"
    assert single.signals[0].attributes["blob_path"] == "test-container/new-file.txt"
    batch = event_grid.parse(fixture_bytes("cloudevents_batch_run_status_changed.json"))
    assert [s.kind for s in batch.signals] == ["threshold_breach"]
    assert "ModelRegistered is not one the portal acts on" in batch.ignored


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "no events"),
        ({"specversion": "0.3", "id": "1", "type": "x", "source": "s"}, "only CloudEvents 1.0"),
        ([{"id": "1", "eventType": "Microsoft.Storage.BlobCreated"}], "eventTime is missing"),
        (
            [
                {
                    "id": "1",
                    "eventType": "Microsoft.Storage.BlobCreated",
                    "eventTime": "2025-01-01T00:00:00Z",
                    "subject": "/containers/x",
                    "data": {"api": "PutBlob"},
                }
            ],
            "not /blobServices/default/containers/",
        ),
        ("text", "must be an array"),
    ],
)
def test_event_grid_bad_payloads(doc, message):
    with pytest.raises(PayloadError, match=message):
        event_grid.parse(_b(doc))


def test_databricks_notifications():
    failure = databricks.parse(fixture_bytes("databricks_on_failure.json")).signals[0]
    assert failure.kind == "threshold_breach"
    assert failure.attributes == {"job_id": "1098402913431208"}
    success = databricks.parse(fixture_bytes("databricks_on_success_task.json")).signals[0]
    assert success.kind == "data_arrival"
    assert success.details["task_key"] == "land_transactions"
    start = databricks.parse(fixture_bytes("databricks_on_start.json"))
    assert start.signals == [] and "nothing to act on" in start.ignored
    with pytest.raises(PayloadError, match=r"job\.job_id is missing"):
        databricks.parse(_b({"event_type": "jobs.on_failure", "run": {"run_id": 1}, "job": {}}))


def test_evidently_current_drift():
    (signal,) = evidently.parse(fixture_bytes("evidently_current_drift.json")).signals
    assert signal.kind == "drift"
    assert signal.attributes["model"] == "fraud-detector"
    assert signal.details["drifted_columns"] == ["amount", "merchant_risk"]
    assert signal.details["drift_share"] == pytest.approx(2 / 3)
    assert signal.details["failed_tests"][0]["name"].startswith("Share of Drifted Columns")


def test_evidently_legacy_drift_with_model_in_the_query():
    result = evidently.parse(
        fixture_bytes("evidently_legacy_drift.json"), query={"model": "fraud-detector"}
    )
    (signal,) = result.signals
    assert signal.details["dataset_drift"] is True
    assert signal.details["drifted_columns"] == ["amount", "hour", "country"]
    assert signal.observed_at.isoformat().startswith("2025-03-22T05:00:12")
    assert signal.details["evidently_version"] == "0.4.40"


@pytest.mark.parametrize("name", ["evidently_current_clean.json", "evidently_legacy_clean.json"])
def test_evidently_clean_report_is_a_heartbeat(name):
    result = evidently.parse(fixture_bytes(name), query={"model": "fraud-detector"})
    assert result.signals == []
    assert result.ignored.startswith("no drift")
    assert result.heartbeat_model == "fraud-detector"


def test_evidently_threshold_from_the_wrapper():
    report = fixture_json("evidently_legacy_clean.json")
    report["metrics"][0]["result"]["dataset_drift"] = False
    result = evidently.parse(_b({"model": "m", "drift_share": 0.2, "report": report}))
    assert result.signals[0].details["threshold"] == 0.2
    with pytest.raises(PayloadError, match="not an Evidently report"):
        evidently.parse(_b({"model": "m", "report": {"foo": 1}}))


def test_generic_signal():
    (signal,) = generic.parse(
        _b({"model": "fraud-detector", "kind": "performance-drop", "id": "42", "source": "cron"})
    ).signals
    assert signal.kind == "performance_drop"
    assert signal.dedupe_key == "generic:cron:42"
    assert signal.attributes["model"] == "fraud-detector"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"model": "m"}, "kind: This field is required"),
        ({"kind": "boom"}, "kind is 'boom': not a kind"),
        ({"kind": "drift", "observed_at": "noon"}, "observed_at is 'noon', not an ISO 8601"),
        ({"kind": "drift", "severity": "huge"}, "severity is 'huge'"),
        ({"kind": "drift", "modle": "m"}, "Unknown field"),
        ({"kind": "resolved"}, "needs resolves"),
        ({"kind": "drift", "tags": {"a": {"b": 1}}}, "tags: a:"),
    ],
)
def test_generic_bad_payloads(doc, message):
    with pytest.raises(PayloadError, match=message):
        generic.parse(_b(doc))
