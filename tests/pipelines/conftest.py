"""The pipelines tests run the ADO client and sync against the simulator's own fixtures."""

from tests.ado_simulator.conftest import receiver, sim  # noqa: F401 - pytest fixtures
