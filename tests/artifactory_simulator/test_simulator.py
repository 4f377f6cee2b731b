"""The Artifactory stand-in answers File Info and deploys as JFrog documents them, over HTTP."""

import base64
import hashlib

import requests

from artifactory_simulator import ArtifactorySimulator


def test_deploy_then_file_info_has_the_documented_shape(artifactory):
    content = b"model bytes v1"
    sha = artifactory.upload("ml-models/sim/1/model.tar.gz", content)
    response = requests.get(
        f"{artifactory.url}/api/storage/ml-models/sim/1/model.tar.gz",
        headers=artifactory.headers,
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["X-Simulator"] == "artifactory"
    body = response.json()
    assert body["repo"] == "ml-models"
    assert body["path"] == "/sim/1/model.tar.gz"
    assert body["size"] == str(len(content))
    assert body["checksums"] == {
        "sha1": hashlib.sha1(content).hexdigest(),  # noqa: S324
        "md5": hashlib.md5(content).hexdigest(),  # noqa: S324
        "sha256": sha,
    }
    assert body["originalChecksums"]["sha256"] == sha
    assert body["downloadUri"] == f"{artifactory.url}/ml-models/sim/1/model.tar.gz"
    assert {"created", "lastModified", "createdBy", "uri"} <= set(body)
    download = requests.get(body["downloadUri"], headers=artifactory.headers, timeout=10)
    assert download.content == content


def test_missing_item_is_404_with_errors(artifactory):
    response = requests.get(
        f"{artifactory.url}/api/storage/ml-models/nothing/here.bin",
        headers=artifactory.headers,
        timeout=10,
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["status"] == 404


def test_no_token_or_a_wrong_one_is_401(artifactory):
    url = f"{artifactory.url}/api/storage/ml-models/sim/1/model.tar.gz"
    assert requests.get(url, timeout=10).status_code == 401
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    assert wrong.json()["errors"][0]["message"] == "Bad credentials"


def test_replace_changes_checksums_but_keeps_the_original(artifactory):
    first = artifactory.upload("ml-models/sim/2/model.tar.gz", b"original")
    artifactory.replace("ml-models/sim/2/model.tar.gz", b"tampered")
    body = requests.get(
        f"{artifactory.url}/api/storage/ml-models/sim/2/model.tar.gz",
        headers=artifactory.headers,
        timeout=10,
    ).json()
    assert body["checksums"]["sha256"] == hashlib.sha256(b"tampered").hexdigest()
    assert body["originalChecksums"]["sha256"] == first


def test_basic_auth_users_and_the_context_path():
    sim = ArtifactorySimulator(users={"ci": "secret"}).start()
    try:
        sim.put("repo", "a/b.bin", b"x")
        url = f"{sim.url}/api/storage/repo/a/b.bin"
        good = "Basic " + base64.b64encode(b"ci:secret").decode()
        bad = "Basic " + base64.b64encode(b"ci:wrong").decode()
        assert requests.get(url, headers={"Authorization": good}, timeout=5).status_code == 200
        assert requests.get(url, headers={"Authorization": bad}, timeout=5).status_code == 401
        outside = f"http://127.0.0.1:{sim.port}/api/storage/repo/a/b.bin"
        assert requests.get(outside, headers={"Authorization": good}, timeout=5).status_code == 404
    finally:
        sim.stop()
