import pytest


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` (SQLite, loopback, free port) shared by the registry tests.

    Tests add models with unique names; each test mirrors it through its own RegistrySource.
    """
    from registry.devserver import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("mlflow")).start()
    yield server
    server.stop()


@pytest.fixture
def mlflow_client(mlflow_server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.url)
