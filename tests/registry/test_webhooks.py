"""POST /registry/webhooks/mlflow/<source>/: signature, freshness, replay, envelope, queueing.

The unit-level tests sign requests the way MLflow does; the last test lets a real `mlflow server`
deliver to a live portal, which proves the signature format against MLflow's own sender.
"""

import json
import logging
import time
import uuid
import warnings
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from registry import webhooks
from registry.models import RegistrySource, WebhookDelivery

SECRET = "whsec-test-secret-1f0c"  # a test value, not a credential


@pytest.fixture
def secret(settings):
    settings.MLFLOW_WEBHOOK_SECRET = SECRET
    settings.MLFLOW_WEBHOOK_TOLERANCE_SECONDS = 300
    return SECRET


@pytest.fixture
def source(db):
    return RegistrySource.objects.create(name="central", tracking_uri="http://mlflow.invalid")


def envelope(entity="model_version", action="created", **data):
    data = data or {"name": "fraud", "version": "1", "source": "runs:/abc/model"}
    return {
        "entity": entity,
        "action": action,
        "timestamp": "2026-11-26T02:58:41.918084+00:00",
        "data": data,
    }


def deliver(
    client,
    payload,
    *,
    source="central",
    delivery_id=None,
    timestamp=None,
    secret=SECRET,
    signature=None,
    omit=(),
):
    """POST like MLflow: the signature covers "{delivery_id}.{timestamp}.{raw body}"."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    delivery_id = delivery_id or str(uuid.uuid4())
    timestamp = str(int(time.time())) if timestamp is None else str(timestamp)
    if signature is None:
        signature = webhooks.signature_compute(secret, delivery_id, timestamp, body)
    headers = {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": signature,
    }
    headers = {k: v for k, v in headers.items() if k not in omit}
    url = reverse("registry:mlflow-webhook", kwargs={"source": source})
    return client.post(url, data=body, content_type="application/json", headers=headers)


def assert_sync_model_sent(send_task, source_id, model_name):
    """The webhook queued ``registry.sync_model`` for the model, by name (core.tasks)."""
    send_task.assert_called_once_with(
        "registry.sync_model",
        args=(source_id, model_name),
        kwargs={},
        retry=False,
        ignore_result=True,
    )


# --- accepted deliveries ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_signed_model_event_is_accepted_and_queues_the_sync_on_commit(
    client, secret, source, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = deliver(client, envelope(), delivery_id="d-1")
    assert response.status_code == 202
    assert response.json() == {"queued": "fraud"}
    assert len(callbacks) == 1
    delivery = WebhookDelivery.objects.get()
    assert (delivery.delivery_id, delivery.source, delivery.event, delivery.model_name) == (
        "d-1",
        source,
        "model_version.created",
        "fraud",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("event", webhooks.MODEL_EVENTS)
def test_each_model_event_queues_sync_model_with_the_source_and_model(
    event, client, secret, source, django_capture_on_commit_callbacks
):
    entity, action = event.split(".")
    # The mock replaces only the Celery boundary (core.tasks' app): everything up to it is real.
    with (
        mock.patch("core.tasks.current_app") as celery_app,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = deliver(client, envelope(entity, action, name="fraud", version="2"))
    assert response.status_code == 202, response.content
    assert_sync_model_sent(celery_app.send_task, source.pk, "fraud")


@pytest.mark.django_db
def test_nothing_is_queued_before_the_transaction_commits(
    client, secret, source, django_capture_on_commit_callbacks
):
    # The mock replaces only the Celery boundary (core.tasks' app).
    with mock.patch("core.tasks.current_app") as celery_app:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            deliver(client, envelope())
        celery_app.send_task.assert_not_called()
        callbacks[0]()
    assert_sync_model_sent(celery_app.send_task, source.pk, "fraud")


@pytest.mark.django_db
def test_a_header_with_several_signatures_is_accepted_when_one_matches(client, secret, source):
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time()))
    body = json.dumps(envelope()).encode()
    good = webhooks.signature_compute(SECRET, delivery_id, timestamp, body)
    old = webhooks.signature_compute("the-previous-secret", delivery_id, timestamp, body)
    response = deliver(
        client,
        body,
        delivery_id=delivery_id,
        timestamp=timestamp,
        signature=f"{old} v2,unknown-scheme {good}",
    )
    assert response.status_code == 202


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("entity", "action"),
    [("prompt", "created"), ("prompt_version", "created"), ("budget_policy", "exceeded")],
)
def test_prompt_and_unknown_events_are_ignored_but_recorded(
    entity, action, client, secret, source, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = deliver(client, envelope(entity, action, name="my-prompt"), delivery_id="p-1")
        replay = deliver(client, envelope(entity, action, name="my-prompt"), delivery_id="p-1")
    assert response.status_code == 202
    assert response.json() == {"ignored": f"{entity}.{action}"}
    assert callbacks == []
    assert WebhookDelivery.objects.get().event == f"{entity}.{action}"
    assert replay.status_code == 409


@pytest.mark.django_db
def test_the_endpoint_needs_no_csrf_token_nor_sign_in(secret, source):
    response = deliver(Client(enforce_csrf_checks=True), envelope())
    assert response.status_code == 202


@pytest.mark.django_db
def test_a_broker_failure_after_commit_is_logged_not_a_500(
    client, secret, source, django_capture_on_commit_callbacks, caplog
):
    # The mock replaces only the Celery boundary (core.tasks' app) to simulate Redis being down.
    with (
        mock.patch("core.tasks.current_app") as celery_app,
        django_capture_on_commit_callbacks(execute=True),
    ):
        celery_app.send_task.side_effect = OSError("redis down")
        response = deliver(client, envelope(), delivery_id="d-down")
    assert response.status_code == 202
    assert "could not queue registry.sync_model" in caplog.text
    assert WebhookDelivery.objects.filter(delivery_id="d-down", model_name="fraud").exists()


# --- refused deliveries -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_wrong_signature_is_401_and_records_nothing(client, secret, source):
    response = deliver(client, envelope(), secret="not-the-secret")
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid signature"}
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "signature", ["v1,", "v1,AAAA", "garbage", "v1,dGVzdA== \u00e9\u00e8", " "]
)
def test_malformed_signatures_are_401(signature, client, secret, source):
    assert deliver(client, envelope(), signature=signature).status_code in (400, 401)
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_body_changed_after_signing_is_401(client, secret, source):
    delivery_id, timestamp = str(uuid.uuid4()), str(int(time.time()))
    signed = webhooks.signature_compute(
        SECRET, delivery_id, timestamp, json.dumps(envelope()).encode()
    )
    tampered = envelope(name="someone-elses-model")
    response = deliver(
        client, tampered, delivery_id=delivery_id, timestamp=timestamp, signature=signed
    )
    assert response.status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_stale_and_future_timestamps_are_400(offset, client, secret, source):
    response = deliver(client, envelope(), timestamp=int(time.time()) + offset)
    assert response.status_code == 400
    assert response.json() == {"detail": "stale or future timestamp"}


@pytest.mark.django_db
def test_the_tolerance_comes_from_the_settings(client, secret, source, settings):
    settings.MLFLOW_WEBHOOK_TOLERANCE_SECONDS = 10
    assert deliver(client, envelope(), timestamp=int(time.time()) - 60).status_code == 400
    assert deliver(client, envelope(), timestamp=int(time.time()) - 2).status_code == 202


@pytest.mark.django_db
@pytest.mark.parametrize("timestamp", ["soon", "1.5e9", "-5", "", " 1795661921", "1_795_661_921"])
def test_a_timestamp_that_is_not_an_integer_is_400(timestamp, client, secret, source):
    response = deliver(client, envelope(), timestamp=timestamp)
    assert response.status_code == 400


@pytest.mark.django_db
def test_a_replayed_delivery_is_409_and_queues_nothing(
    client, secret, source, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as first:
        assert deliver(client, envelope(), delivery_id="same-id").status_code == 202
    with django_capture_on_commit_callbacks(execute=False) as second:
        response = deliver(client, envelope(), delivery_id="same-id")
    assert response.status_code == 409
    assert response.json() == {"detail": "replayed delivery"}
    assert len(first) == 1
    assert second == []
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_a_race_on_the_same_delivery_id_is_settled_by_the_unique_constraint(secret, source):
    # Two workers both pass the checks; the second insert hits the constraint: 409, not 500.
    first = webhooks.envelope_parse(json.dumps(envelope()).encode())
    assert webhooks.delivery_record(source=source, delivery_id="race", envelope=first)
    assert not webhooks.delivery_record(source=source, delivery_id="race", envelope=first)
    assert WebhookDelivery.objects.filter(delivery_id="race").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", ["X-MLflow-Delivery-Id", "X-MLflow-Timestamp", "X-MLflow-Signature"]
)
def test_a_missing_header_is_400(header, client, secret, source):
    response = deliver(client, envelope(), omit=(header,))
    assert response.status_code == 400
    assert header in response.json()["detail"]


@pytest.mark.django_db
def test_an_unsigned_delivery_is_400(client, secret, source):
    # MLflow sends no signature header when its webhook has no secret: refused.
    response = deliver(client, envelope(), omit=("X-MLflow-Signature",))
    assert response.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("delivery_id", ["x" * 101, "has space", "semi;colon"])
def test_a_malformed_delivery_id_is_400(delivery_id, client, secret, source):
    assert deliver(client, envelope(), delivery_id=delivery_id).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"",
        b"[]",
        b'"a string"',
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps({"entity": "model_version", "action": "created"}).encode(),
        json.dumps({**envelope(), "data": "not an object"}).encode(),
        json.dumps({**envelope(), "entity": 5}).encode(),
        json.dumps(envelope(version="1")).encode(),  # a model event without data.name
        json.dumps(envelope(name="")).encode(),
        json.dumps(envelope(name=["fraud"])).encode(),
        json.dumps(envelope(name="x" * 501)).encode(),
    ],
    ids=lambda b: b[:30].decode("latin-1"),
)
def test_a_signed_body_that_is_not_the_envelope_is_400(body, client, secret, source):
    response = deliver(client, body)
    assert response.status_code == 400
    assert "envelope" in response.json()["detail"]
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_signed_body_is_answered_without_a_500(body, client, secret, source):
    assert deliver(client, body).status_code in (202, 400)


@pytest.mark.django_db
def test_an_unknown_source_is_404(client, secret, source):
    response = deliver(client, envelope(), source="nowhere")
    assert response.status_code == 404
    assert response.json() == {"detail": "unknown or disabled registry source"}


@pytest.mark.django_db
def test_a_disabled_source_is_404(client, secret, source):
    source.enabled = False
    source.save()
    assert deliver(client, envelope()).status_code == 404


@pytest.mark.django_db
def test_without_a_secret_in_the_settings_it_is_503(client, settings, source):
    settings.MLFLOW_WEBHOOK_SECRET = ""
    response = deliver(client, envelope(), secret="anything")
    assert response.status_code == 503
    assert response.json() == {"detail": "webhooks are not configured"}


@pytest.mark.django_db
def test_a_body_over_one_megabyte_is_413(client, secret, source):
    body = json.dumps(envelope(name="fraud", padding="x" * webhooks.MAX_BODY_BYTES)).encode()
    response = deliver(client, body)
    assert response.status_code == 413
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_a_body_just_under_one_megabyte_is_accepted(client, secret, source):
    payload = envelope(name="fraud", padding="")
    room = webhooks.MAX_BODY_BYTES - len(json.dumps(payload).encode())
    payload["data"]["padding"] = "x" * room
    assert len(json.dumps(payload).encode()) == webhooks.MAX_BODY_BYTES
    assert deliver(client, payload).status_code == 202


@pytest.mark.django_db
def test_get_is_405(client, secret, source):
    url = reverse("registry:mlflow-webhook", kwargs={"source": "central"})
    assert client.get(url).status_code == 405


@pytest.mark.django_db
def test_outcomes_are_logged_without_secrets(client, secret, source, caplog):
    caplog.set_level(logging.INFO, logger="registry.webhooks")
    deliver(client, envelope(), delivery_id="logged-ok")
    deliver(client, envelope(), secret="wrong")
    messages = [r.getMessage() for r in caplog.records if r.name == "registry.webhooks"]
    assert any("logged-ok" in m and "sync queued" in m for m in messages)
    assert any("status=401" in m for m in messages)
    assert SECRET not in caplog.text
    assert "v1," not in caplog.text  # no signatures either


# --- small functions ----------------------------------------------------------------------------


def test_the_signature_matches_mlflows_own_signer():
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = json.dumps(envelope())
    ours = webhooks.signature_compute("s3cret", "id-1", "1795661921", body.encode())
    assert ours == _generate_hmac_signature("s3cret", "id-1", "1795661921", body)


def test_timestamp_freshness_is_symmetric():
    assert webhooks.timestamp_is_fresh("1000", 300, now=1300)
    assert webhooks.timestamp_is_fresh("1600", 300, now=1300)
    assert not webhooks.timestamp_is_fresh("999", 300, now=1300)
    assert not webhooks.timestamp_is_fresh("1601", 300, now=1300)


@pytest.mark.django_db
def test_prune_deletes_only_old_deliveries(source):
    old = WebhookDelivery.objects.create(delivery_id="old", source=source, event="e")
    WebhookDelivery.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(8))
    WebhookDelivery.objects.create(delivery_id="new", source=source, event="e")
    assert webhooks.webhook_deliveries_prune(older_than_days=7) == 1
    assert list(WebhookDelivery.objects.values_list("delivery_id", flat=True)) == ["new"]
    with pytest.raises(ValueError):
        webhooks.webhook_deliveries_prune(older_than_days=0)


# --- end to end: a real MLflow server delivers to a live portal ---------------------------------


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory):
    """A real `mlflow server` with a fixed webhook encryption key, stopped by its pid."""
    from cryptography.fernet import Fernet

    from registry.devserver import MlflowServer

    server = MlflowServer(
        tmp_path_factory.mktemp("mlflow-webhooks"),
        webhook_encryption_key=Fernet.generate_key().decode(),
    ).start()
    yield server
    server.stop()


def _wait_for(query, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if query.exists():
            return True
        time.sleep(0.25)
    return False


def test_a_real_mlflow_server_delivers_signed_events_to_the_portal(
    hook_server, live_server, settings, caplog
):
    from mlflow import MlflowClient

    settings.MLFLOW_WEBHOOK_SECRET = "e2e-" + uuid.uuid4().hex
    source = RegistrySource.objects.create(name="e2e", tracking_uri=hook_server.url)
    url = f"{live_server.url}{reverse('registry:mlflow-webhook', kwargs={'source': 'e2e'})}"
    call_command("register_mlflow_webhook", "--source", "e2e", "--url", url, "--test")
    # --test sent MLflow's canned example for the webhook's first event ("example_model").
    assert WebhookDelivery.objects.filter(source=source, model_name="example_model").exists()

    client = MlflowClient(tracking_uri=hook_server.url)
    client.create_registered_model("e2e-fraud", description="webhook e2e")
    experiment_id = client.create_experiment(f"e2e-{uuid.uuid4().hex[:8]}")
    run = client.create_run(experiment_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.create_model_version(
            "e2e-fraud", source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
        )

    deliveries = WebhookDelivery.objects.filter(source=source, model_name="e2e-fraud")
    assert _wait_for(deliveries.filter(event="registered_model.created")), hook_server.log_path
    assert _wait_for(deliveries.filter(event="model_version.created")), hook_server.log_path
    # Rows exist only for deliveries whose signature, timestamp and envelope passed.
    assert "webhook refused" not in caplog.text
