"""Where each version's binary is in Artifactory, checked against the stand-in over real HTTP:
ok, missing, differs (flagged on the version page, the approval page and the model page),
no location, unreachable, a refused token, and "not configured"; the check's scope, the
periodic task, "Check now" and the API."""

import hashlib
import uuid

import pytest
from bs4 import BeautifulSoup
from django.urls import reverse

from approvals.services.mirror import SyncResult
from approvals.services.sync import _notify_new
from core.roles import Role
from pipelines.models import PipelineKind
from registry import selectors, services, tasks
from registry.artifactory_client import ArtifactoryClient, ArtifactoryNotFound
from registry.devserver import free_port
from registry.models import ArtifactCheck, ArtifactState
from tests.approvals.factories import ApprovalRequestFactory
from tests.pipelines.factories import PipelineFactory, PipelineRunFactory, RunStageFactory
from tests.registry.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


def _soup(response) -> BeautifulSoup:
    assert response.status_code == 200, response.status_code
    return BeautifulSoup(response.content.decode(), "html.parser")


def _repo_path() -> str:
    return f"ml-models/fraud-{uuid.uuid4().hex[:8]}/3/model.tar.gz"


def _version(repo_path: str | None, sha: str = "", *, on_run: bool = False, **kwargs):
    tags = {}
    if repo_path:
        tags["artifactory.path"] = repo_path
    if sha:
        tags["artifactory.sha256"] = sha
    field = "run_tags" if on_run else "tags"
    return ModelVersionFactory(**{field: tags}, **kwargs)


def _version_url(version) -> str:
    rm = version.registered_model
    return reverse(
        "registry:version-detail",
        kwargs={"source": rm.source.name, "name": rm.name, "version": version.version},
    )


def _binary(client, version):
    return _soup(client.get(_version_url(version))).select_one("[data-testid=binary]")


def _deployed_to_prod(version):
    run = PipelineRunFactory(
        pipeline=PipelineFactory(
            catalog_model=version.registered_model.catalog_model, kind=PipelineKind.RELEASE
        ),
        model_version=version,
    )
    RunStageFactory(run=run, environment="PROD")
    return run


# --- The states, against the stand-in --------------------------------------------------------


def test_ok_when_present_and_matching(artifactory_on, role_client):
    repo_path = _repo_path()
    sha = artifactory_on.upload(repo_path, b"fraud-detector v3")
    version = _version(repo_path, sha)

    check = services.artifact_check(version=version)

    assert check.state == ArtifactState.OK
    assert (check.repo, check.path) == ("ml-models", repo_path.partition("/")[2])
    assert check.found_sha256 == sha and check.size == len(b"fraud-detector v3")
    binary = _binary(role_client(Role.DATA_SCIENTIST), version)
    assert binary.select_one("[data-testid=binary-state]")["data-state"] == "ok"
    assert "text-bg-success" in binary.select_one("[data-testid=binary-state]")["class"]
    found = binary.select_one("[data-testid=binary-found]")
    assert found["title"] == sha and found.get_text().startswith(sha[:12])
    assert "17 bytes" in binary.select_one("[data-testid=binary-size]").get_text()
    assert binary.select_one("[data-testid=binary-checked] time")["title"]
    assert binary.select_one("[data-testid=binary-warning]") is None


def test_location_from_the_source_runs_tags(artifactory_on):
    repo_path = _repo_path()
    sha = artifactory_on.upload(repo_path, b"from the run")
    version = _version(repo_path, sha, on_run=True)

    check = services.artifact_check(version=version)

    assert check.state == ArtifactState.OK
    assert check.location_source == "run_tags"


def test_version_tags_win_over_run_tags(artifactory_on):
    ours, theirs = _repo_path(), _repo_path()
    version = ModelVersionFactory(
        tags={"artifactory.path": ours}, run_tags={"artifactory.path": theirs}
    )
    location = selectors.artifact_location(version)
    assert location.repo_path == ours and location.source == "version_tags"


def test_url_tag_under_artifactory_url_names_the_location(artifactory_on):
    repo_path = _repo_path()
    artifactory_on.upload(repo_path, b"linked")
    url = f"{artifactory_on.url}/{repo_path}"
    version = ModelVersionFactory(tags={"artifactory.url": url})

    check = services.artifact_check(version=version)

    assert check.state == ArtifactState.OK
    assert check.message == "The tags name no sha256: only its presence is checked."
    assert selectors.binary_status(version).link == url


def test_missing_when_artifactory_has_no_such_item(artifactory_on, role_client):
    version = _version(_repo_path(), "a" * 64)

    check = services.artifact_check(version=version)

    assert check.state == ArtifactState.MISSING
    binary = _binary(role_client(Role.DATA_SCIENTIST), version)
    assert binary.select_one("[data-testid=binary-state]")["data-state"] == "missing"
    assert "not in Artifactory" in binary.select_one("[data-testid=binary-warning]").get_text()


def test_differs_is_flagged_on_the_version_approval_and_model_pages(artifactory_on, role_client):
    repo_path = _repo_path()
    sha = artifactory_on.upload(repo_path, b"the registered binary")
    artifactory_on.replace(repo_path, b"someone overwrote it")
    version = _version(repo_path, sha)
    _deployed_to_prod(version)
    approval = ApprovalRequestFactory(model_version=version, environment_name="PROD")

    check = services.artifact_check(version=version)

    assert check.state == ArtifactState.DIFFERS
    assert check.expected_sha256 == sha
    assert check.found_sha256 == hashlib.sha256(b"someone overwrote it").hexdigest()
    # the version page
    binary = _binary(role_client(Role.DATA_SCIENTIST), version)
    badge = binary.select_one("[data-testid=binary-state]")
    assert badge["data-state"] == "differs" and "text-bg-danger" in badge["class"]
    assert "does not match" in binary.select_one("[data-testid=binary-warning]").get_text()
    assert binary.select_one("[data-testid=binary-expected]")["title"] == sha
    # the approval page of that version
    page = _soup(role_client(Role.APPROVER).get(reverse("approvals:detail", args=[approval.pk])))
    warning = page.select_one("[data-testid=approval-binary-warning]")
    assert warning is not None
    assert "does not match" in warning.get_text() and repo_path in warning.get_text()
    # the model page's versions table (the version is in PROD)
    model_page = _soup(
        role_client(Role.DATA_SCIENTIST).get(
            version.registered_model.catalog_model.get_absolute_url()
        )
    )
    flags = [f.get_text(strip=True) for f in model_page.select("[data-testid=column-flag]")]
    assert flags == ["Binary checksum differs"]


def test_approval_page_says_ok_without_a_warning(artifactory_on, role_client):
    repo_path = _repo_path()
    version = _version(repo_path, artifactory_on.upload(repo_path, b"fine"))
    approval = ApprovalRequestFactory(model_version=version)
    services.artifact_check(version=version)

    page = _soup(role_client(Role.APPROVER).get(reverse("approvals:detail", args=[approval.pk])))

    section = page.select_one("[data-testid=approval-binary]")
    assert "in Artifactory and matches" in section.get_text()
    assert page.select_one("[data-testid=approval-binary-warning]") is None


def test_no_location_when_no_tag_names_one(artifactory_on, role_client):
    version = ModelVersionFactory(tags={"other": "x"}, run_tags={})

    check = services.artifact_check(version=version)

    assert check.state == ArtifactState.NO_LOCATION
    binary = _binary(role_client(Role.DATA_SCIENTIST), version)
    assert binary.select_one("[data-testid=binary-state]")["data-state"] == "no_location"
    assert "names no binary" in binary.select_one("[data-testid=binary-no-location]").get_text()


def test_unreachable_when_nothing_listens(settings, role_client):
    settings.ARTIFACTORY_URL = f"http://127.0.0.1:{free_port()}/artifactory"
    settings.ARTIFACTORY_RETRIES = 1
    version = _version(_repo_path(), "b" * 64)

    check = services.artifact_check(version=version)

    assert check.state == ArtifactState.UNREACHABLE
    assert "could not be reached" in check.message
    binary = _binary(role_client(Role.DATA_SCIENTIST), version)
    badge = binary.select_one("[data-testid=binary-state]")
    assert badge["data-state"] == "unreachable" and "text-bg-warning" in badge["class"]
    assert (
        "could not be reached" in binary.select_one("[data-testid=binary-unreachable]").get_text()
    )


def test_a_refused_token_is_unreachable_with_the_reason(artifactory_on, settings):
    settings.ARTIFACTORY_TOKEN = "not-the-token"
    repo_path = _repo_path()
    version = _version(repo_path, artifactory_on.upload(repo_path, b"x"))

    check = services.artifact_check(version=version)

    assert check.state == ArtifactState.UNREACHABLE
    assert "refused the credentials" in check.message and "HTTP 401" in check.message


def test_basic_auth_from_user_and_password(artifactory):
    # The session's stand-in takes only its token: basic credentials are refused...
    client = ArtifactoryClient(artifactory.url, username="ci", password="pw", retries=0)
    with pytest.raises(Exception, match="refused the credentials"):
        client.file_info("ml-models", "x.bin")
    # ...and a bearer token is sent as one.
    with pytest.raises(ArtifactoryNotFound):
        ArtifactoryClient(artifactory.url, token=artifactory.token).file_info("ml-models", "x.bin")


def test_not_configured_says_so_and_checks_nothing(settings, role_client):
    settings.ARTIFACTORY_URL = ""
    version = _version(_repo_path(), "c" * 64)
    ApprovalRequestFactory(model_version=version)

    assert tasks.check_artifacts() == {"skipped": "Artifactory is not configured (ARTIFACTORY_URL)"}
    assert not ArtifactCheck.objects.exists()
    client = role_client(Role.DATA_SCIENTIST)
    binary = _binary(client, version)
    assert binary.select_one("[data-testid=binary-state]")["data-state"] == "not_configured"
    assert "Artifactory is not configured" in binary.get_text()
    assert binary.select_one("[data-testid=binary-check-now]") is None
    # the location the tags name is still shown
    assert (
        version.tags["artifactory.path"]
        in binary.select_one("[data-testid=binary-location]").get_text()
    )


def test_not_checked_yet_and_a_changed_tag_asks_again(artifactory_on, role_client):
    repo_path = _repo_path()
    version = _version(repo_path, artifactory_on.upload(repo_path, b"v"))
    assert selectors.binary_status(version).state == ""
    services.artifact_check(version=version)
    assert selectors.binary_status(version).state == ArtifactState.OK
    version.tags = {"artifactory.path": _repo_path()}
    version.save()
    assert selectors.binary_status(version).state == ""  # not checked at the new location
    assert "Not checked yet" in _binary(role_client(Role.DATA_SCIENTIST), version).get_text()


# --- Scope, the periodic task, "Check now", the API -----------------------------------------


def test_sweep_checks_versions_in_prod_or_waiting_for_approval_only(artifactory_on):
    in_prod = _version(_repo_path(), "d" * 64)
    _deployed_to_prod(in_prod)
    waiting = _version(_repo_path(), "e" * 64)
    ApprovalRequestFactory(model_version=waiting)
    decided = _version(_repo_path(), "f" * 64)
    ApprovalRequestFactory(model_version=decided, status="approved")
    elsewhere = _version(_repo_path(), "0" * 64)

    assert set(services.artifact_check_scope()) >= {in_prod.pk, waiting.pk}
    assert not {decided.pk, elsewhere.pk} & set(services.artifact_check_scope())
    result = tasks.check_artifacts()

    assert result["states"] == {"missing": 2}
    checked = set(ArtifactCheck.objects.values_list("model_version_id", flat=True))
    assert checked == {in_prod.pk, waiting.pk}


def test_check_now_queues_the_check(
    artifactory_on, role_client, django_capture_on_commit_callbacks
):
    repo_path = _repo_path()
    version = _version(repo_path, artifactory_on.upload(repo_path, b"now"))
    rm = version.registered_model
    url = reverse(
        "registry:version-artifact-check",
        kwargs={"source": rm.source.name, "name": rm.name, "version": version.version},
    )
    client = role_client(Role.DATA_SCIENTIST)
    assert _binary(client, version).select_one("[data-testid=binary-check-now] button")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url)

    assert response.status_code == 302 and response["Location"] == _version_url(version)
    assert len(callbacks) == 1
    assert tasks.check_artifact(version.pk) == {"checked": 1, "states": {"ok": 1}}
    assert client.get(url).status_code == 405
    approver = role_client(Role.APPROVER)
    assert approver.post(url).status_code == 403
    assert _binary(approver, version).select_one("[data-testid=binary-check-now]") is None


def test_check_now_of_an_unknown_version_is_404(artifactory_on, role_client):
    version = ModelVersionFactory()
    rm = version.registered_model
    url = reverse(
        "registry:version-artifact-check",
        kwargs={"source": rm.source.name, "name": rm.name, "version": 999},
    )
    assert role_client(Role.ADMIN).post(url).status_code == 404


def test_api_artifact(artifactory_on, role_client):
    repo_path = _repo_path()
    sha = artifactory_on.upload(repo_path, b"api")
    artifactory_on.replace(repo_path, b"api changed")
    version = _version(repo_path, sha)
    services.artifact_check(version=version)
    rm = version.registered_model
    url = reverse(
        "api:registry:version-artifact",
        kwargs={"source": rm.source.name, "name": rm.name, "version": version.version},
    )

    body = role_client(Role.MANAGER).get(url).json()

    assert body["state"] == "differs" and body["flagged"] is True
    assert body["repo"] == "ml-models" and body["expected_sha256"] == sha
    assert body["found_sha256"] == hashlib.sha256(b"api changed").hexdigest()
    assert body["size"] == len(b"api changed") and body["checked_at"]
    missing = url.replace(f"/{version.version}/", "/999/")
    assert role_client(Role.MANAGER).get(missing).status_code == 404


def test_a_new_approval_requests_version_is_checked_at_once(
    artifactory_on, settings, django_capture_on_commit_callbacks
):
    settings.APPROVALS_NOTIFY = False
    approval = ApprovalRequestFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _notify_new(SyncResult(project="mlops", mode="poll", new_ids=[approval.pk]))
    assert len(callbacks) == 1
    settings.ARTIFACTORY_URL = ""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _notify_new(SyncResult(project="mlops", mode="poll", new_ids=[approval.pk]))
    assert callbacks == []


def test_the_admin_lists_the_checks_read_only(artifactory_on, admin_client):
    version = _version(_repo_path(), "1" * 64)
    services.artifact_check(version=version)
    page = admin_client.get(reverse("admin:registry_artifactcheck_changelist"))
    assert page.status_code == 200 and "missing" in page.content.decode().lower()
    assert admin_client.get(reverse("admin:registry_artifactcheck_add")).status_code == 403


def test_api_artifact_not_configured_and_no_location(settings, role_client):
    settings.ARTIFACTORY_URL = ""
    version = ModelVersionFactory(tags={}, run_tags={})
    rm = version.registered_model
    url = reverse(
        "api:registry:version-artifact",
        kwargs={"source": rm.source.name, "name": rm.name, "version": version.version},
    )
    body = role_client(Role.APPROVER).get(url).json()
    assert body["state"] == "not_configured" and body["label"] == "Not configured"
    assert (body["repo"], body["path"], body["flagged"]) == ("", "", False)
    assert body["checked_at"] is None
