"""Fixtures of the registry tests: the Artifactory stand-in (a process, once per session) and
the portal configured for it."""

import pytest

from tests.artifactory_standin import ArtifactoryProcess


@pytest.fixture(scope="session")
def artifactory():
    standin = ArtifactoryProcess().start()
    yield standin
    standin.stop()


@pytest.fixture
def artifactory_on(settings, artifactory):
    settings.ARTIFACTORY_URL = artifactory.url
    settings.ARTIFACTORY_TOKEN = artifactory.token
    settings.ARTIFACTORY_USERNAME = ""
    settings.ARTIFACTORY_RETRIES = 0
    return artifactory
