"""A data scientist reads a version's "Binary in Artifactory" card, and an approver the flag on
the approval page, in a browser at 1366 and 390 px (the stand-in behind, over real HTTP)."""

import pytest
from django.urls import reverse

from core.roles import Role
from registry import services
from tests.approvals.factories import ApprovalRequestFactory
from tests.e2e.test_sign_in import _sign_in
from tests.registry.conftest import artifactory, artifactory_on  # noqa: F401 - fixtures
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory
from tests.registry.test_artifacts import _deployed_to_prod, _version_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDE = {"width": 1366, "height": 900}
NARROW = {"width": 390, "height": 844}
FITS = "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"


def _differing_version(standin):
    repo_path = "ml-models/fraud-detector/3/model.tar.gz"
    sha = standin.upload(repo_path, b"fraud-detector 3, as registered")
    standin.replace(repo_path, b"fraud-detector 3, overwritten later")
    rm = RegisteredModelFactory(name="fraud-detector")
    version = ModelVersionFactory(
        registered_model=rm,
        version=3,
        tags={"artifactory.path": repo_path, "artifactory.sha256": sha},
    )
    _deployed_to_prod(version)
    services.artifact_check(version=version)
    return version


@pytest.mark.parametrize("viewport", [WIDE, NARROW], ids=["1366", "390"])
def test_the_binary_card_and_the_approval_flag(
    browser,
    live_server,
    make_user,
    screenshot,
    artifactory_on,  # noqa: F811 - the fixture imported above
    viewport,
):
    version = _differing_version(artifactory_on)
    approval = ApprovalRequestFactory(model_version=version, environment_name="PROD")
    make_user(Role.DATA_SCIENTIST, username="e2e-dana")
    make_user(Role.APPROVER, username="e2e-alice")
    width = viewport["width"]

    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    _sign_in(page, live_server.url, "e2e-dana")
    page.goto(live_server.url + _version_url(version))
    card = page.get_by_test_id("binary")
    assert card.get_by_test_id("binary-state").inner_text() == "Checksum differs"
    assert "does not match" in card.get_by_test_id("binary-warning").inner_text()
    assert card.get_by_role("button", name="Check now").is_visible()
    assert page.evaluate(FITS)
    card.scroll_into_view_if_needed()
    screenshot(page, f"artifact-version-{width}")
    page.goto(live_server.url + version.registered_model.catalog_model.get_absolute_url())
    assert page.get_by_test_id("column-flag").inner_text() == "Binary checksum differs"
    context.close()

    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    _sign_in(page, live_server.url, "e2e-alice")
    page.goto(live_server.url + reverse("approvals:detail", args=[approval.pk]))
    warning = page.get_by_test_id("approval-binary-warning")
    assert "Do not approve without checking" in warning.inner_text()
    assert page.evaluate(FITS)
    screenshot(page, f"artifact-approval-{width}")
    context.close()
