"""The simulator's MLflow target: a succeeded live training run registers a model version in a
real `mlflow server` (the session's), over real HTTP on both sides."""

from __future__ import annotations

import json
import logging
import socket
import uuid

import pytest
from mlflow import MlflowClient

from ado_simulator import AdoSimulator, RemoteSimulator
from ado_simulator.cli import add_arguments, build
from ado_simulator.mlflow_sink import DEFAULT_METRICS, generate_metrics, simulated_metrics
from ado_simulator.model import TRAINING_PARAMETERS

from .conftest import PAT, PAT_USER, START, Ado

TRAIN_SECONDS = 3600  # past the Train and Register stages (the demo seed's too)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def train_over_rest(ado: Ado, pipeline_id: int, parameters: dict) -> dict:
    """Queue a training run through the ADO REST API, play it to its end on the simulated clock
    (through the control API) and wait until its registration has been tried."""
    run = ado.ok("POST", f"pipelines/{pipeline_id}/runs", json={"templateParameters": parameters})
    remote = RemoteSimulator(ado.sim.url)
    remote.advance(TRAIN_SECONDS)
    assert remote.wait_for_mlflow(30)
    run = ado.ok("GET", f"pipelines/{pipeline_id}/runs/{run['id']}")
    assert run["state"] == "completed", run
    return run


def registrations(sim: AdoSimulator) -> list[dict]:
    return RemoteSimulator(sim.url).mlflow_registrations()


def test_a_training_run_queued_over_rest_registers_a_version(mlflow_sim, mlflow_server):
    ado = Ado(mlflow_sim)
    model = unique("fraud")
    pipe = mlflow_sim.create_pipeline(f"risk-{model}-train", "training", model=model)
    parameters = {
        "modelName": model,
        "trigger": "drift",
        "signalId": "17",
        "signalKind": "drift",
        "portalRequestId": "req-9",
    }

    run = train_over_rest(ado, pipe.id, parameters)

    assert (run["state"], run["result"]) == ("completed", "succeeded")
    [registration] = registrations(mlflow_sim)
    assert registration["status"] == "registered", registration
    client = MlflowClient(tracking_uri=mlflow_server.url)
    version = client.get_model_version(model, registration["version"])
    assert version.version == "1"
    assert version.source == f"runs:/{version.run_id}/model"
    assert version.tags["ado.build_id"] == str(run["id"])
    mlflow_run = client.get_run(version.run_id)
    assert mlflow_run.data.metrics == registration["metrics"]
    assert set(mlflow_run.data.metrics) == set(DEFAULT_METRICS)
    assert mlflow_run.data.tags["ado.build_id"] == str(run["id"])
    assert mlflow_run.data.tags["ado.pipeline"] == pipe.name
    assert mlflow_run.data.tags["ado.trigger"] == "drift"
    assert mlflow_run.data.tags["portal.signal_id"] == "17"
    assert mlflow_run.data.tags["portal.signal_kind"] == "drift"
    assert mlflow_run.data.tags["portal.request_id"] == "req-9"
    assert mlflow_run.data.params["trigger"] == "drift"
    assert mlflow_run.info.status == "FINISHED"
    experiment = client.get_experiment(mlflow_run.info.experiment_id)
    assert experiment.name == f"/Shared/{model}-training"


def test_simulate_metrics_forces_the_challenger_and_the_rest_follow_the_previous_version(
    mlflow_sim, mlflow_server
):
    ado = Ado(mlflow_sim)
    model = unique("churn")
    pipe = mlflow_sim.create_pipeline(f"growth-{model}-train", "training", model=model)
    client = MlflowClient(tracking_uri=mlflow_server.url)

    first = train_over_rest(ado, pipe.id, {"simulateMetrics": {"auc": 0.8, "f1": 0.7}})
    # ADO passes template parameters as text: the JSON text works too.
    second = train_over_rest(ado, pipe.id, {"simulateMetrics": json.dumps({"auc": 0.95})})

    v1, v2 = (client.get_model_version(model, v) for v in ("1", "2"))
    assert v1.tags["ado.build_id"] == str(first["id"])
    assert v2.tags["ado.build_id"] == str(second["id"])
    m1, m2 = (client.get_run(v.run_id).data.metrics for v in (v1, v2))
    assert (m1["auc"], m1["f1"]) == (0.8, 0.7)
    assert m2["auc"] == 0.95
    # The metrics not forced move at most 0.03 from the previous version's.
    assert abs(m2["f1"] - 0.7) <= 0.03 + 1e-9
    assert abs(m2["rmse"] - m1["rmse"]) <= 0.03 + 1e-9


def test_a_failed_or_canceled_training_run_registers_nothing(mlflow_sim, mlflow_server):
    model = unique("demand")
    pipe = mlflow_sim.create_pipeline(f"ops-{model}-train", "training", model=model)
    remote = RemoteSimulator(mlflow_sim.url)

    failed = remote.queue_run(pipe.id, fail_stage="Train")
    canceled = remote.queue_run(pipe.id)
    remote.cancel_run(canceled["id"])
    remote.advance(TRAIN_SECONDS)
    assert remote.wait_for_mlflow(10)

    assert remote.run(failed["id"])["result"] == "failed"
    assert remote.run(canceled["id"])["result"] == "canceled"
    assert remote.mlflow_registrations() == []
    client = MlflowClient(tracking_uri=mlflow_server.url)
    assert client.search_model_versions(f"name='{model}'") == []


def test_only_training_pipelines_register(mlflow_sim):
    remote = RemoteSimulator(mlflow_sim.url)
    for kind in ("ci", "data-cleansing", "scoring"):
        pipe = mlflow_sim.create_pipeline(unique(kind), kind, model=unique("m"))
        remote.queue_run(pipe.id)
    remote.advance(3600)
    assert remote.wait_for_mlflow(10)
    assert remote.mlflow_registrations() == []


def test_the_seeded_history_registers_nothing_a_live_run_on_a_seeded_pipeline_does(
    mlflow_sim, mlflow_server
):
    remote = RemoteSimulator(mlflow_sim.url)
    remote.seed("demo")
    # The seed leaves one training running (queued quietly 5 minutes ago): let it finish.
    remote.advance(3600)
    assert remote.wait_for_mlflow(10)
    assert mlflow_sim.summary()["runs"]["inProgress"] == 3  # the releases at approvals
    assert remote.mlflow_registrations() == []

    train = next(p for p in remote.pipelines() if p["name"] == "risk-fraud-detector-train")
    model = unique("fraud-detector")
    run = train_over_rest(
        Ado(mlflow_sim), train["id"], {"modelName": model, "trigger": "drift", "signalId": "3"}
    )

    [registration] = remote.mlflow_registrations()
    assert registration["buildId"] == run["id"]
    assert registration["model"] == model
    version = MlflowClient(tracking_uri=mlflow_server.url).get_model_version(model, "1")
    assert version.tags["ado.pipeline"] == "risk-fraud-detector-train"


def test_mlflow_down_the_run_still_completes_and_the_error_is_logged(caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    sim = AdoSimulator(
        start=START, pats={PAT: PAT_USER}, mlflow_tracking_uri=f"http://127.0.0.1:{closed_port}"
    ).start()
    try:
        pipe = sim.create_pipeline("risk-fraud-detector-train", "training", model="fraud-detector")
        with caplog.at_level(logging.INFO, logger="ado_simulator"):
            run = train_over_rest(Ado(sim), pipe.id, {"trigger": "drift"})
        assert (run["state"], run["result"]) == ("completed", "succeeded")
        [registration] = registrations(sim)
        assert registration["status"] == "failed"
        assert registration["error"].startswith("no answer UNREACHABLE")
        assert any(
            r.getMessage().startswith("[ADO simulator] could not register a version of")
            for r in caplog.records
        )
        # The simulator still answers.
        assert Ado(sim).ok("GET", f"pipelines/{pipe.id}")["id"] == pipe.id
    finally:
        sim.stop()


def test_a_training_pipeline_that_declares_parameters_accepts_the_operations_ones(mlflow_sim):
    ado = Ado(mlflow_sim)
    pipe = mlflow_sim.create_pipeline(unique("t"), "training", parameters=["dataDate"])
    assert set(TRAINING_PARAMETERS) <= set(pipe.parameters)
    body = {"templateParameters": {name: "x" for name in (*TRAINING_PARAMETERS, "dataDate")}}
    assert ado.post(f"pipelines/{pipe.id}/runs", json=body).status_code == 200
    refused = ado.post(f"pipelines/{pipe.id}/runs", json={"templateParameters": {"other": "1"}})
    assert refused.status_code == 400
    assert "Unexpected parameter 'other'" in refused.json()["message"]
    release = mlflow_sim.create_pipeline(unique("r"), "release", parameters=["modelName"])
    assert release.parameters == ("modelName",)


def test_a_release_queued_over_rest_with_a_model_version_waits_at_qa(mlflow_sim):
    ado = Ado(mlflow_sim)
    pipe = mlflow_sim.create_pipeline(
        unique("release"), "release", parameters=["modelName", "modelVersion", "deployTarget"]
    )
    parameters = {"modelName": "fraud-detector", "modelVersion": "7", "deployTarget": "aks"}
    run = ado.ok("POST", f"pipelines/{pipe.id}/runs", json={"templateParameters": parameters})
    RemoteSimulator(mlflow_sim.url).advance(600)

    pending = ado.ok("GET", "pipelines/approvals", params={"state": "pending"})["value"]
    [approval] = [a for a in pending if a["pipeline"]["owner"]["id"] == run["id"]]
    build = ado.ok("GET", f"build/builds/{run['id']}")
    assert build["templateParameters"] == parameters
    assert approval["status"] == "pending"
    assert registrations(mlflow_sim) == []


def test_the_command_line_flag_sets_the_target():
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = vars(parser.parse_args(["--port", "0", "--mlflow-tracking-uri", "http://m:5000/"]))
    sim = build(options)
    assert sim.mlflow is not None
    assert sim.mlflow.tracking_uri == "http://m:5000"
    assert build(vars(parser.parse_args(["--port", "0"]))).mlflow is None


def test_generated_metrics_are_deterministic_and_bounded():
    first = generate_metrics("fraud-detector", 12, DEFAULT_METRICS)
    assert first == generate_metrics("fraud-detector", 12, DEFAULT_METRICS)
    assert first != generate_metrics("fraud-detector", 13, DEFAULT_METRICS)
    for key, value in first.items():
        assert abs(value - DEFAULT_METRICS[key]) <= 0.03 + 1e-9
    for build_id in range(20):  # scores stay within 0..1, errors above 0
        capped = generate_metrics("m", build_id, {"auc": 1.0, "rmse": 0.0})
        assert capped["auc"] <= 1.0
        assert capped["rmse"] >= 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ("", {}),
        ({"auc": 0.9}, {"auc": 0.9}),
        ('{"auc": "0.91", "f1": 0.5}', {"auc": 0.91, "f1": 0.5}),
        ("not json", {}),
        ("[1, 2]", {}),
        ({"auc": "high", "f1": 0.4}, {"f1": 0.4}),
    ],
)
def test_simulate_metrics_parsing(value, expected):
    assert simulated_metrics(value) == expected


def test_the_demo_loop_models_training_defaults_a_better_challenger_and_runs_at_demo_speed(
    mlflow_sim, mlflow_server
):
    """credit-scoring's seeded training pipeline defaults simulateMetrics (a YAML parameter
    default), so a live retraining registers a challenger better than its champion; live runs
    take LIVE_STAGE_SECONDS, not the history's durations; a passed simulateMetrics wins."""
    from ado_simulator.seed import LIVE_STAGE_SECONDS, LOOP_METRICS, LOOP_MODEL

    remote = RemoteSimulator(mlflow_sim.url)
    remote.seed("demo")
    train = next(p for p in remote.pipelines() if p["name"] == f"risk-{LOOP_MODEL}-train")
    ado = Ado(mlflow_sim)
    model = unique(LOOP_MODEL)
    queued = ado.ok(
        "POST", f"pipelines/{train['id']}/runs", json={"templateParameters": {"modelName": model}}
    )
    remote.advance(LIVE_STAGE_SECONDS["Train"] + LIVE_STAGE_SECONDS["Register"] + 1)
    assert remote.wait_for_mlflow(30)
    run = ado.ok("GET", f"pipelines/{train['id']}/runs/{queued['id']}")
    assert (run["state"], run["result"]) == ("completed", "succeeded")  # within 76 s
    assert run["templateParameters"]["simulateMetrics"] == LOOP_METRICS
    [registration] = [r for r in remote.mlflow_registrations() if r["model"] == model]
    assert registration["metrics"]["auc"] == 0.8012

    again = train_over_rest(
        ado, train["id"], {"modelName": model, "simulateMetrics": '{"auc": 0.7}'}
    )
    [second] = [r for r in remote.mlflow_registrations() if r["buildId"] == again["id"]]
    assert second["metrics"]["auc"] == 0.7
