"""The stand-in's own tests start it as a process, like the registry's tests."""

from tests.registry.conftest import artifactory  # noqa: F401 - a pytest fixture
