"""The whole chain, each payload shape: a vendor's payload POSTed over real HTTP to the running
portal, the training run the trigger policy requests queued in the ADO simulator (with the
request's key and the signal in its parameters), the run played to its end, the version it
registered in a real `mlflow server` and in the portal's mirror, challenger against champion
on the promotion policy, and then the release queued with the QA approval showing the
comparison (promote) or the episode held with the numbers (hold). Plus the Event Grid
handshake, duplicates, bad signatures, a burst and the cooldown on the same chain.

One simulator for the module and the session's MLflow server; each test has its own model.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ado_simulator import AdoSimulator
from approvals.models import ApprovalStatus
from core.roles import Role
from operations.models import (
    Disposition,
    Episode,
    EpisodeOutcome,
    EpisodeState,
    EpisodeStep,
    MatchField,
    ModelOperations,
    RawSignal,
    Signal,
)
from pipelines.models import Environment, PipelineKind, PipelineRun, RunRequest, RunResult
from registry.models import ModelVersion

from .chain_support import PAT, PAT_USER, Chain, unique
from .conftest import KEYS, fixture_bytes, signature

pytestmark = pytest.mark.django_db(transaction=True)

PROMOTE = {"champion_auc": 0.70, "latest_auc": 0.90}  # the challenger lands within 0.03 of 0.90
HOLD = {"champion_auc": 0.97, "latest_auc": 0.80}


@pytest.fixture(scope="module")
def sim(mlflow_server):
    # ADO's clock starts a while back: the runs the tests play end before the portal's now.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    simulator = AdoSimulator(
        start=start, pats={PAT: PAT_USER}, mlflow_tracking_uri=mlflow_server.url
    ).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def chain(sim, mlflow_server, settings, db):
    return Chain(sim, mlflow_server.url, settings)


@dataclass
class Shape:
    id: str
    slug: str
    fixture: str = ""
    content_type: str | None = None
    rule: tuple[str, str] | None = None  # a match rule the model gets
    rule_kind: str = ""
    kind: str = ""  # the signal's kind in the portal
    trigger: str = ""  # the run's ``trigger`` parameter
    params: dict = field(default_factory=dict)

    def body(self, name: str) -> bytes:
        if self.fixture:
            return fixture_bytes(self.fixture)
        return json.dumps(
            {"model": name, "kind": "drift", "id": unique("gen"), "title": "auc dropped"}
        ).encode()

    def query(self, name: str) -> dict:
        return {k: v.format(model=name) for k, v in self.params.items()}


SHAPES = [
    Shape(
        "azure-monitor-fired",
        "azure-monitor",
        "azure_monitor_metric_fired.json",
        rule=(MatchField.ALERT_RULE, "wcus-r2-gen2"),
        kind="threshold_breach",
        trigger="threshold",
    ),
    Shape(
        "event-grid-blob-created",
        "event-grid",
        "event_grid_blob_created.json",
        rule=(MatchField.BLOB_PREFIX, "testcontainer/"),
        kind="data_arrival",
        trigger="new-data",
    ),
    Shape(
        "cloudevents-blob-created",
        "event-grid",
        "cloudevents_blob_created.json",
        content_type="application/cloudevents+json; charset=utf-8",
        rule=(MatchField.BLOB_PREFIX, "test-container/"),
        kind="data_arrival",
        trigger="new-data",
    ),
    Shape(
        "azure-ml-run-status-changed",
        "event-grid",
        "event_grid_run_status_changed_monitor.json",
        rule=(MatchField.ALERT_RULE, "fraud-detector-monitor"),
        kind="threshold_breach",
        trigger="threshold",
    ),
    Shape(
        "cloudevents-batch-run-status-changed",
        "event-grid",
        "cloudevents_batch_run_status_changed.json",
        content_type="application/cloudevents-batch+json",
        rule=(MatchField.ALERT_RULE, "fraud-detector-monitor"),
        kind="threshold_breach",
        trigger="threshold",
    ),
    Shape(
        "databricks-job-failed",
        "databricks",
        "databricks_on_failure.json",
        rule=(MatchField.JOB_ID, "1098402913431208"),
        rule_kind="drift",
        kind="drift",
        trigger="drift",
    ),
    Shape(
        "evidently-current",
        "evidently",
        "evidently_current_drift.json",
        rule=(MatchField.MODEL_FIELD, "fraud-detector"),  # the report names fraud-detector
        kind="drift",
        trigger="drift",
    ),
    Shape(
        "evidently-legacy",
        "evidently",
        "evidently_legacy_drift.json",
        params={"model": "{model}"},
        kind="drift",
        trigger="drift",
    ),
    Shape("generic", "generic", kind="drift", trigger="drift"),
]


def arrange(chain: Chain, shape: Shape, scores: dict):
    setup = chain.model(**scores)
    if shape.rule:
        chain.rule(*shape.rule, kind=shape.rule_kind)
    return setup


def post(sender, chain: Chain, shape: Shape, body: bytes | None = None, **kwargs):
    return sender.post(
        shape.slug,
        body if body is not None else shape.body(chain.name),
        content_type=shape.content_type,
        params=shape.query(chain.name),
        **kwargs,
    )


def started_episode(response) -> Episode:
    assert response.status_code == 202, response.text
    (item,) = [s for s in response.json()["signals"] if s["disposition"] == Disposition.STARTED]
    return Signal.objects.get(pk=item["id"]).episode


def assert_training_queued_with_the_signal(chain: Chain, setup, episode: Episode, shape: Shape):
    """The simulator holds one run of the training pipeline, with the request's key and the
    signal's id and kind in its template parameters; the episode knows it, at ADO's time."""
    (build,) = chain.ado_runs(setup.train)
    request = episode.run_request
    signal = episode.first_signal
    params = build["templateParameters"]
    assert params["portalRequestId"] == request.key
    assert params["signalId"] == str(signal.pk)
    assert params["signalKind"] == shape.kind == signal.kind
    assert params["trigger"] == shape.trigger
    assert params["modelName"] == chain.name
    assert params["episodeId"] == str(episode.pk)
    run = PipelineRun.objects.get(pipeline__kind=PipelineKind.TRAINING, ado_id=build["id"])
    assert episode.run == run
    queued = episode.events.get(step=EpisodeStep.RUN_QUEUED)
    # ADO's queue time of the run (the simulator's clock is hours behind the portal's).
    assert queued.at == run.queued_at
    assert abs(run.queued_at - datetime.fromisoformat(build["queueTime"])) < timedelta(seconds=1)
    assert run.queued_at < request.sent_at - timedelta(hours=1)
    return build


def assert_version_registered(chain: Chain, setup, episode: Episode, build: dict) -> ModelVersion:
    """The run succeeded, its version is in MLflow (tagged with the build) and in the mirror,
    linked to the run, and the episode took it as the challenger against the champion."""
    assert (build["status"], build["result"]) == ("completed", "succeeded")
    challenger_number = setup.latest_version + 1
    upstream = chain.mlflow.get_model_version(chain.name, str(challenger_number))
    assert upstream.tags["ado.build_id"] == str(build["id"])
    mirrored = ModelVersion.objects.get(
        registered_model__name=chain.name, version=challenger_number
    )
    assert mirrored.run_tags["ado.build_id"] == str(build["id"])
    assert mirrored.metrics["auc"] == pytest.approx(
        chain.mlflow.get_run(upstream.run_id).data.metrics["auc"]
    )
    assert episode.run.model_version == mirrored
    assert episode.run.result == RunResult.SUCCEEDED
    assert episode.challenger == mirrored
    assert episode.champion.version == setup.champion_version
    evaluation = episode.evaluation
    assert evaluation["metric"] == "auc"
    assert evaluation["challenger_version"] == challenger_number
    assert evaluation["champion_version"] == setup.champion_version
    assert evaluation["challenger"] == pytest.approx(mirrored.metrics["auc"])
    assert evaluation["champion"] == pytest.approx(episode.champion.metrics["auc"])
    assert evaluation["absolute_change"] == pytest.approx(
        evaluation["challenger"] - evaluation["champion"]
    )
    return mirrored


def in_qa_or_closed(episode: Episode) -> bool:
    return episode.state in (EpisodeState.IN_QA, EpisodeState.CLOSED)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.id for s in SHAPES])
def test_a_signal_retrains_and_the_better_version_waits_at_qa_with_the_comparison(
    shape, chain, sender, client, make_user
):
    setup = arrange(chain, shape, PROMOTE)

    response = post(sender, chain, shape)
    episode = started_episode(response)
    assert episode.state == EpisodeState.REQUESTED
    assert chain.ado_runs(setup.train) == []  # nothing reaches ADO before the worker sends it

    episode = chain.drive(episode, in_qa_or_closed)
    assert episode.state == EpisodeState.IN_QA, episode.outcome_note

    (build,) = chain.ado_runs(setup.train)
    assert_training_queued_with_the_signal(chain, setup, episode, shape)
    challenger = assert_version_registered(chain, setup, episode, build)
    assert episode.evaluation["verdict"] == "promote"
    assert episode.evaluation["challenger"] - episode.evaluation["champion"] > 0.1

    # The release pipeline was queued for that version, with the signal, and waits at QA.
    (release,) = chain.ado_runs(setup.release)
    assert release["templateParameters"]["modelVersion"] == str(challenger.version)
    assert release["templateParameters"]["signalId"] == str(episode.first_signal_id)
    assert release["templateParameters"]["episodeId"] == str(episode.pk)
    assert episode.release_request.status == RunRequest.Status.SENT
    qa = episode.qa_approval
    assert qa.environment == Environment.QA and qa.status == ApprovalStatus.PENDING
    assert qa.run.ado_id == release["id"] and qa.model_version == challenger
    steps = list(episode.events.order_by("pk").values_list("step", flat=True))
    assert steps == [
        EpisodeStep.SIGNAL,
        EpisodeStep.RUN_REQUESTED,
        EpisodeStep.RUN_QUEUED,
        EpisodeStep.RUN_STARTED,
        EpisodeStep.RUN_FINISHED,
        EpisodeStep.VERSION,
        EpisodeStep.EVALUATED,
        EpisodeStep.RELEASE_REQUESTED,
        EpisodeStep.QA_REQUESTED,
    ]

    # The approver's page says why this version exists, with the numbers.
    client.force_login(make_user(Role.APPROVER))
    page = client.get(reverse("approvals:detail", args=[qa.pk]))
    assert page.status_code == 200
    why = " ".join(page.content.decode().split())  # the template's line breaks as spaces
    assert 'data-testid="approval-why"' in why
    evaluation = episode.evaluation
    assert (
        f"beat the champion v{setup.champion_version} on auc {evaluation['challenger']:.4g} "
        f"vs {evaluation['champion']:.4g} ({evaluation['absolute_change']:+.3g}, "
        f"{evaluation['relative_change']:+.2%})"
    ) in why
    assert f"Episode #{episode.pk}" in why


@pytest.mark.parametrize("shape", [SHAPES[0], SHAPES[-1]], ids=["azure-monitor-fired", "generic"])
def test_a_worse_challenger_holds_the_episode_with_the_numbers(shape, chain, sender):
    setup = arrange(chain, shape, HOLD)

    episode = started_episode(post(sender, chain, shape))
    episode = chain.drive(episode, lambda e: e.state == EpisodeState.CLOSED)

    assert episode.outcome == EpisodeOutcome.HELD
    (build,) = chain.ado_runs(setup.train)
    assert_training_queued_with_the_signal(chain, setup, episode, shape)
    assert_version_registered(chain, setup, episode, build)
    evaluation = episode.evaluation
    assert evaluation["verdict"] == "hold"
    assert evaluation["challenger"] < evaluation["champion"]
    assert f"v{evaluation['challenger_version']} auc {evaluation['challenger']:.4g}" in (
        episode.outcome_note
    )
    assert f"champion v{setup.champion_version}'s {evaluation['champion']:.4g}" in (
        episode.outcome_note
    )
    assert chain.ado_runs(setup.release) == []  # nothing released
    assert episode.release_request is None


def test_azure_monitor_resolved_resolves_the_alert_the_run_goes_on(chain, sender):
    shape = SHAPES[0]
    setup = arrange(chain, shape, PROMOTE)
    episode = started_episode(post(sender, chain, shape))

    resolved = sender.post("azure-monitor", fixture_bytes("azure_monitor_metric_resolved.json"))
    assert resolved.status_code == 202, resolved.text
    (item,) = resolved.json()["signals"]
    closing = Signal.objects.get(pk=item["id"])
    assert closing.kind == "resolved" and closing.disposition == Disposition.RESOLVES
    assert closing.resolves == episode.first_signal and closing.episode == episode

    episode = chain.drive(episode, in_qa_or_closed)
    assert episode.state == EpisodeState.IN_QA
    assert len(chain.ado_runs(setup.train)) == 1


def test_event_grid_handshake_then_deliveries_start_one_run(chain, sender):
    shape = SHAPES[1]
    setup = arrange(chain, shape, PROMOTE)

    handshake = sender.post(
        "event-grid",
        fixture_bytes("event_grid_subscription_validation.json"),
        headers={"aeg-event-type": "SubscriptionValidation"},
    )
    assert handshake.status_code == 200
    assert handshake.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert not Signal.objects.exists() and not RunRequest.objects.exists()

    episode = started_episode(post(sender, chain, shape))
    again = post(sender, chain, shape)  # Event Grid retries a delivery it thinks was lost
    assert again.status_code == 200 and again.json()["duplicates"] == 1

    episode = chain.drive(episode, in_qa_or_closed)
    assert episode.state == EpisodeState.IN_QA
    assert Signal.objects.count() == 1
    assert list(RawSignal.objects.order_by("pk").values_list("outcome", flat=True)) == [
        "handshake",
        "accepted",
        "duplicate",
    ]
    assert len(chain.ado_runs(setup.train)) == 1
    assert RunRequest.objects.filter(pipeline__kind=PipelineKind.TRAINING).count() == 1


@pytest.mark.parametrize("shape", SHAPES, ids=[s.id for s in SHAPES])
def test_duplicate_deliveries_are_one_signal_and_one_run(shape, chain, sender):
    """Senders retry a delivery they think was lost, sometimes at once: every copy after the
    first is a duplicate, and ADO queues one run."""
    setup = arrange(chain, shape, PROMOTE)
    body = shape.body(chain.name)
    episode = started_episode(post(sender, chain, shape, body))
    with ThreadPoolExecutor(max_workers=3) as pool:
        again = list(pool.map(lambda _i: post(sender, chain, shape, body), range(3)))

    assert [r.status_code for r in again] == [200] * 3, [r.text for r in again]
    assert all(
        r.json()["duplicates"] >= 1 and "Already received" in r.json()["detail"] for r in again
    )
    assert Signal.objects.filter(kind=shape.kind).count() == 1
    assert RawSignal.objects.filter(outcome="duplicate").count() == 3
    chain.send_run_requests()
    chain.send_run_requests()  # a redelivered task finds the request sent
    (build,) = chain.ado_runs(setup.train)
    assert build["templateParameters"]["signalId"] == str(episode.first_signal_id)
    assert RunRequest.objects.count() == 1


def test_a_bad_signature_is_a_401_with_a_message_and_the_delivery_is_kept(chain, sender):
    setup = chain.model(**PROMOTE)
    body = json.dumps({"model": chain.name, "kind": "drift", "id": "sig-1"}).encode()

    bad = sender.post(
        "generic",
        body,
        key=False,
        headers={"X-Signal-Signature": signature("not-the-secret", body)},
    )
    assert bad.status_code == 401
    assert bad.json()["detail"]
    assert bad.headers["WWW-Authenticate"]
    raw = RawSignal.objects.get()
    # The delivery is recorded with why it was refused; an unauthenticated body is not stored
    # (docs/operations.md: "never the body or the key").
    assert raw.outcome == "refused" and raw.error and raw.body == ""
    assert "x-signal-signature" not in json.dumps(raw.headers).lower()
    assert not Signal.objects.exists() and not RunRequest.objects.exists()
    chain.send_run_requests()
    assert chain.ado_runs(setup.train) == []

    good = sender.post(
        "generic",
        body,
        key=False,
        headers={"X-Signal-Signature": signature(KEYS["generic"], body)},
    )
    episode = started_episode(good)
    chain.send_run_requests()
    (build,) = chain.ado_runs(setup.train)
    assert build["templateParameters"]["signalId"] == str(episode.first_signal_id)


def test_a_burst_of_alerts_is_one_run(chain, sender):
    setup = chain.model(**PROMOTE)
    bodies = [
        json.dumps({"model": chain.name, "kind": "drift", "id": f"burst-{i}"}).encode()
        for i in range(40)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda b: sender.post("generic", b), bodies))
    assert all(r.status_code == 202 for r in responses), [r.text for r in responses]
    dispositions = [r.json()["signals"][0]["disposition"] for r in responses]
    assert dispositions.count(Disposition.STARTED) == 1
    assert dispositions.count(Disposition.JOINED) == 39
    episode = Episode.objects.get()
    assert Signal.objects.filter(episode=episode).count() == 40

    chain.send_run_requests()
    assert len(chain.ado_runs(setup.train)) == 1
    episode = chain.drive(episode, in_qa_or_closed)
    assert len(chain.ado_runs(setup.train)) == 1
    assert RunRequest.objects.filter(pipeline__kind=PipelineKind.TRAINING).count() == 1


def test_the_cooldown_blocks_a_second_run(chain, sender):
    setup = chain.model(**HOLD, cooldown_minutes=120, dedupe_window_minutes=5)
    now = datetime.now(UTC)

    def alert(minutes_ago: int, id_: str):
        observed = (now - timedelta(minutes=minutes_ago)).isoformat()
        body = {"model": chain.name, "kind": "drift", "id": id_, "observed_at": observed}
        return sender.post("generic", body)

    episode = started_episode(alert(30, "first"))
    episode = chain.drive(episode, lambda e: e.state == EpisodeState.CLOSED)
    assert episode.outcome == EpisodeOutcome.HELD

    # A new drift, outside the dedupe window of the first and after that episode closed.
    second = alert(0, "second")
    assert second.status_code == 202, second.text
    (item,) = second.json()["signals"]
    assert item["disposition"] == Disposition.SUPPRESSED
    note = Signal.objects.get(pk=item["id"]).disposition_note
    assert note.startswith("Cooldown: a run was requested")
    chain.send_run_requests()
    chain.play(60)
    assert len(chain.ado_runs(setup.train)) == 1
    assert Episode.objects.count() == 1
    assert RunRequest.objects.filter(pipeline__kind=PipelineKind.TRAINING).count() == 1

    # Once the cooldown has passed (the last request moved back past it), a signal runs again.
    ModelOperations.objects.filter(catalog_model=setup.catalog).update(
        last_run_requested_at=timezone.now() - timedelta(minutes=121)
    )
    third = started_episode(alert(0, "third"))
    assert third != episode
    chain.send_run_requests()
    assert len(chain.ado_runs(setup.train)) == 2
