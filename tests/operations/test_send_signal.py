"""``manage.py send_signal`` against the running portal (pytest-django's live_server, real
HTTP), and the demo's "send a signal" button on the operations inbox (admins, DEMO only)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from operations.models import (
    Disposition,
    Episode,
    EpisodeState,
    IntakeOutcome,
    RawSignal,
    Signal,
    TriggerMode,
)
from pipelines.models import PipelineKind, RunRequest
from registry.devserver import free_port
from tests.pipelines.factories import PipelineFactory
from tests.registry.factories import CatalogModelFactory

from .factories import TriggerPolicyFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def credit(db):
    model = CatalogModelFactory(name="credit-scoring", kind="ml", team="risk")
    PipelineFactory(catalog_model=model, kind=PipelineKind.TRAINING, name="risk-credit-train")
    TriggerPolicyFactory(catalog_model=model, mode=TriggerMode.AUTOMATIC)
    return model


def send(*args):
    call_command("send_signal", *args)


def test_send_signal_posts_a_drift_signal_that_starts_the_models_run(live_server, credit, capsys):
    send("CREDIT-scoring", "--url", live_server.url, "--severity", "error")
    out = capsys.readouterr().out
    signal = Signal.objects.get()
    assert f"signal #{signal.pk}, started" in out
    assert f"{live_server.url}/operations/signals/{signal.pk}/" in out
    assert (signal.kind, signal.severity, signal.source_ref) == (
        "drift",
        "error",
        "manage.py send_signal",
    )
    assert signal.raw.sender == "generic (shared secret)"
    episode = Episode.objects.get()
    assert episode.state == EpisodeState.REQUESTED
    assert RunRequest.objects.get().parameters["trigger"] == "drift"


def test_send_signal_resolves_the_signal_it_sent(live_server, credit, capsys):
    send("credit-scoring", "--url", live_server.url, "--kind", "threshold_breach")
    event_id = capsys.readouterr().out.split("event id ")[1].split()[0]
    send("credit-scoring", "--url", live_server.url, "--kind", "resolved", "--resolves", event_id)
    fired, resolved = Signal.objects.order_by("pk")
    assert resolved.disposition == Disposition.RESOLVES and resolved.resolves == fired
    assert "resolves" in capsys.readouterr().out


def test_an_unknown_model_is_refused_before_anything_is_sent(live_server, credit):
    with pytest.raises(CommandError) as refused:
        send("credit-scorin", "--url", live_server.url)
    assert refused.value.returncode == 2
    assert "No catalog model named 'credit-scorin'" in str(refused.value)
    assert "Did you mean credit-scoring?" in str(refused.value)
    assert not RawSignal.objects.exists()


def test_an_unreachable_portal_is_a_clear_error(credit):
    with pytest.raises(CommandError) as refused:
        send("credit-scoring", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "3")
    assert refused.value.returncode == 3
    assert "Could not reach the portal" in str(refused.value) and "--url" in str(refused.value)


def test_a_wrong_key_is_refused_by_the_portal(live_server, credit):
    with pytest.raises(CommandError) as refused:
        send("credit-scoring", "--url", live_server.url, "--key", "not-the-key")
    assert refused.value.returncode == 4
    assert "refused the signal (401)" in str(refused.value)
    assert RawSignal.objects.get().outcome == IntakeOutcome.REFUSED
    assert not Signal.objects.exists()


def test_without_a_key_nothing_is_sent(live_server, credit, settings, tmp_path):
    settings.OPERATIONS_SIGNAL_SECRETS = {}
    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError) as refused:
        send("credit-scoring", "--url", live_server.url)
    assert refused.value.returncode == 4 and "--key" in str(refused.value)
    (tmp_path / "demo-signal-key").write_text("the-demos-key\n")
    with pytest.raises(CommandError) as refused:  # the demo's key, which this portal lacks
        send("credit-scoring", "--url", live_server.url)
    assert refused.value.returncode == 4 and "401" in str(refused.value)


def test_a_resolved_signal_needs_the_one_it_closes(credit):
    with pytest.raises(CommandError) as refused:
        send("credit-scoring", "--kind", "resolved")
    assert refused.value.returncode == 2 and "--resolves" in str(refused.value)


def test_a_url_that_is_no_portal_is_said_so(live_server, credit):
    with pytest.raises(CommandError) as refused:
        send("credit-scoring", "--url", live_server.url + "/nothing-here")
    assert refused.value.returncode == 3 and "not a portal's signal endpoint" in str(refused.value)


# --- the demo's button -------------------------------------------------------------------------


@pytest.fixture
def demo_on(settings):
    settings.DEMO = True
    return settings


def test_the_button_sends_a_signal_in_process_for_an_admin(demo_on, credit, role_client):
    client = role_client("admin")
    page = client.get(reverse("operations:inbox"))
    assert b'data-testid="demo-signal"' in page.content
    assert b'<option value="credit-scoring" selected>' in page.content
    response = client.post(
        reverse("operations:demo-signal"),
        {"model": "credit-scoring", "kind": "drift", "severity": "warning"},
    )
    signal = Signal.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("operations:episode", kwargs={"pk": signal.episode_id})
    assert signal.disposition == Disposition.STARTED and signal.raw.sender.endswith("(demo button)")
    shown = client.get(response["Location"])
    assert b"Sent a drift signal for credit-scoring: started" in shown.content


def test_the_button_refuses_an_unknown_model_with_a_400(demo_on, credit, role_client):
    client = role_client("admin")
    response = client.post(
        reverse("operations:demo-signal"), {"model": "nope", "kind": "drift", "severity": "info"}
    )
    assert response.status_code == 400
    assert b"No catalog model has this name." in response.content
    assert not Signal.objects.exists()


@pytest.mark.parametrize("role", ["data_scientist", "approver", "manager"])
def test_the_button_is_for_admins_only(demo_on, credit, role_client, role):
    client = role_client(role)
    assert b'data-testid="demo-signal"' not in client.get(reverse("operations:inbox")).content
    response = client.post(
        reverse("operations:demo-signal"),
        {"model": "credit-scoring", "kind": "drift", "severity": "warning"},
    )
    assert response.status_code == 403
    assert not Signal.objects.exists()


def test_the_button_is_absent_when_demo_is_off(settings, credit, role_client):
    settings.DEMO = False
    client = role_client("admin")
    assert b'data-testid="demo-signal"' not in client.get(reverse("operations:inbox")).content
    response = client.post(
        reverse("operations:demo-signal"),
        {"model": "credit-scoring", "kind": "drift", "severity": "warning"},
    )
    assert response.status_code == 404
    assert not Signal.objects.exists()


def test_the_button_needs_the_csrf_token(demo_on, credit, make_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("admin"))
    response = client.post(
        reverse("operations:demo-signal"),
        {"model": "credit-scoring", "kind": "drift", "severity": "warning"},
    )
    assert response.status_code == 403
    assert not Signal.objects.exists()
