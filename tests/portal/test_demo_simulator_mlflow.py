"""The demo's ADO simulator registers the model versions of live training runs in the demo's
MLflow: the real `manage.py run_ado_simulator` process, seeded, against a real `mlflow server`."""

import uuid

import requests
from mlflow import MlflowClient

from ado_simulator import RemoteSimulator
from portal.demo.servers import ADO_PAT, DemoAdoSimulator
from registry.devserver import free_port
from tests.ado_simulator.conftest import receiver  # noqa: F401 - pytest fixture


def test_a_training_run_queued_over_rest_in_the_demo_registers_a_version(
    tmp_path,
    mlflow_server,
    receiver,  # noqa: F811 - the service hooks' stand-in portal
):
    portal_addr = receiver.url.split("/")[2]
    ado = DemoAdoSimulator(tmp_path, free_port(), portal_addr, mlflow_url=mlflow_server.url)
    ado.boot()
    try:
        ado.wait()
        remote = RemoteSimulator(ado.url)
        train = next(p for p in remote.pipelines() if p["name"] == "risk-fraud-detector-train")
        model = f"fraud-detector-{uuid.uuid4().hex[:8]}"
        response = requests.post(
            f"{ado.org_url}/MLOps/_apis/pipelines/{train['id']}/runs",
            params={"api-version": "7.1"},
            json={"templateParameters": {"modelName": model, "trigger": "drift"}},
            auth=("", ADO_PAT),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        remote.advance(3600)
        assert remote.wait_for_mlflow(30)

        [registration] = [r for r in remote.mlflow_registrations() if r["model"] == model]
        assert registration["status"] == "registered", registration
        version = MlflowClient(tracking_uri=mlflow_server.url).get_model_version(model, "1")
        assert version.tags["ado.build_id"] == str(response.json()["id"])
        assert version.tags["ado.trigger"] == "drift"
    finally:
        ado.stop()
