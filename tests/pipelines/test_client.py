"""pipelines.client over real HTTP against the in-process ADO simulator (and, for the service
principal, the real msal library against a local HTTPS stand-in of Entra ID's token endpoint).

Nothing is mocked; ``sleep`` is a recorder where a test would otherwise wait.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import socket
import ssl
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from django.core.exceptions import ImproperlyConfigured

from pipelines.client import (
    ADO_SCOPE,
    API_VERSIONS,
    AdoAuthError,
    AdoBadRequest,
    AdoClient,
    AdoCredentials,
    AdoError,
    AdoNotFound,
    AdoThrottled,
    AdoUnavailable,
    credentials_from_settings,
    service_principal_token_provider,
)
from tests.ado_simulator.conftest import PAT, PAT_USER, make_jwt

START = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


class Sleeps(list):
    """A ``sleep`` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(sim, *, pat=PAT, sleeps=None, **kw) -> AdoClient:
    return AdoClient(
        sim.org_url,
        "MLOps",
        AdoCredentials(pat=pat),
        sleep=sleeps if sleeps is not None else Sleeps(),
        **kw,
    )


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sim, sleeps) -> AdoClient:
    with client_for(sim, sleeps=sleeps) as c:
        yield c


def release(sim, name="risk-fraud-detector-release", **kw):
    return sim.create_pipeline(name, "release", model="fraud-detector", **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def user_jwt(**claims) -> str:
    return make_jwt(
        {
            "oid": "6f1e2d3c-0000-4000-8000-00000000a11c",
            "upn": "alice@example.com",
            "name": "Alice Approver",
            "tid": "tenant",
            "exp": int(time.time()) + 3600,
            **claims,
        }
    )


# ==== requests as sent ==========================================================================


class Echo:
    """A local HTTP server that records what a client sends and answers scripted responses
    (``(status, headers, body)``, in order), then an empty collection."""

    def __init__(self):
        self.requests: list[dict] = []
        self.responses: list[tuple[int, dict, bytes]] = []
        echo = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                echo.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
                )
                status, headers, body = (
                    echo.responses.pop(0)
                    if echo.responses
                    else (200, {"Content-Type": "application/json"}, b'{"count": 0, "value": []}')
                )
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo():
    server = Echo()
    yield server
    server.stop()


JSON = {"Content-Type": "application/json; charset=utf-8"}
HTML = {"Content-Type": "text/html; charset=utf-8"}


def test_timeline_not_there_yet_is_an_empty_record_list(echo, sleeps):
    client = AdoClient(f"{echo.url}/org", "p", AdoCredentials(pat="x"), sleep=sleeps)
    echo.responses = [
        (204, {}, b""),
        (200, JSON, b"null"),
        (200, JSON, b'{"records": null, "id": "t"}'),
    ]
    assert client.get_timeline(5) == {"records": []}
    assert client.get_timeline(5) == {"records": []}
    assert client.get_timeline(5) == {"records": [], "id": "t"}
    assert echo.requests[0]["path"] == "/org/p/_apis/build/builds/5/timeline?api-version=7.1"


def test_sign_in_pages_and_redirects_are_auth_errors(echo, sleeps):
    client = AdoClient(f"{echo.url}/org", "p", AdoCredentials(pat="x"), sleep=sleeps)
    page = b"<html><body>Sign in to your account</body></html>"
    echo.responses = [
        (203, HTML, page),
        (302, {"Location": "https://login.example.com/_signin"}, b""),
        (200, HTML, page),
        (403, JSON, b'{"message": "TF401027: You need the Git permission.", "typeKey": "X"}'),
    ]
    for status in (203, 302, 200, 403):
        with pytest.raises(AdoAuthError) as error:
            client.get_build(1)
        assert error.value.status == status
    assert "login.example.com" not in echo.requests[-1]["path"]  # the redirect was not followed
    assert len(echo.requests) == 4 and sleeps == []
    assert error.value.message == "TF401027: You need the Git permission."


def test_retry_after_on_a_200_is_honoured_before_the_next_request(echo, sleeps):
    client = AdoClient(f"{echo.url}/org", "p", AdoCredentials(pat="x"), sleep=sleeps)
    echo.responses = [(200, {**JSON, "Retry-After": "3"}, b'{"id": 1}')]
    assert client.get_build(1) == {"id": 1}
    assert sleeps == []  # nothing more to send yet
    client.get_build(2)
    assert len(sleeps) == 1 and 2.9 < sleeps[0] <= 3.0
    echo.responses = [(429, {**JSON, "Retry-After": "100000"}, b"{}")]
    client.get_build(3)
    assert sleeps[-1] == 300.0  # honoured up to 300 s


def test_headers_auth_and_api_version_as_sent(echo, tmp_path, monkeypatch):
    # A ~/.netrc entry for the host must not replace the PAT (requests applies netrc otherwise).
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    client = AdoClient(
        f"{echo.url}/contoso/", "Data Science", AdoCredentials(pat="my-pat"), user_agent="ua/1"
    )
    assert list(client.list_pipelines()) == []
    assert list(client.list_approvals(state="pending")) == []
    first, second = echo.requests
    assert first["path"] == "/contoso/Data%20Science/_apis/pipelines?%24top=1000&api-version=7.1"
    assert second["path"] == (
        "/contoso/Data%20Science/_apis/pipelines/approvals"
        "?state=pending&%24expand=steps&api-version=7.1"
    )
    expected = "Basic " + base64.b64encode(b":my-pat").decode()
    assert first["headers"]["authorization"] == expected
    assert first["headers"]["user-agent"] == "ua/1"
    assert first["headers"]["accept"] == "application/json"
    assert first["headers"]["x-tfs-fedauthredirect"] == "Suppress"
    assert client.request_count == 2


def test_every_endpoint_uses_its_api_version(sim, client):
    """7.1 everywhere, except connectionData, which ADO has only as a preview, and the two
    calls an automated check makes back on its plan (``PlanClient``, tests/approvals)."""
    assert set(API_VERSIONS.values()) == {"7.1", "7.1-preview.1", "2.0-preview.1", "4.1"}
    assert [k for k, v in API_VERSIONS.items() if v != "7.1"] == [
        "connectionData",
        "plan_events",
        "timeline_feed",
    ]
    pipe = release(sim)
    run = client.queue_run(pipe.id, template_parameters={"modelName": "fraud-detector"})
    sim.advance(130)
    client.get_pipeline(pipe.id)
    client.get_run(pipe.id, run["id"])
    client.get_build(run["id"])
    client.get_timeline(run["id"])
    [approval] = client.list_approvals(state="pending")
    client.get_approval(approval["id"])
    list(client.list_builds())
    list(client.list_pipelines())
    client.get_project()
    log = sim.request_log()
    assert {entry["query"]["api-version"] for entry in log} == {"7.1"}
    client.get_service_identity()
    log = sim.request_log()
    assert log[-1]["query"]["api-version"] == "7.1-preview.1"
    assert all(entry["status"] == 200 for entry in log)


def test_service_identity_is_whom_the_pat_belongs_to(sim, sleeps):
    """``connectionData`` tells the portal its own name in ADO before any approval is sent."""
    sim.add_pat("svc-pat", "svc-mlops@contoso.test", "MLOps Portal Service")
    with client_for(sim, pat="svc-pat", sleeps=sleeps) as client:
        who = client.get_service_identity()
    assert who.display_name == "MLOps Portal Service" and who.name == "MLOps Portal Service"
    assert who.account == "svc-mlops@contoso.test"
    assert who.id == sim.pats["svc-pat"].id
    [call] = sim.request_log()
    assert call["path"].endswith("/_apis/connectionData") and call["method"] == "GET"


def test_service_identity_of_a_service_principal_token(sim, sleeps):
    token = make_jwt({"oid": "0000aaaa-0000-4000-8000-000000000001", "appid": "app-1"})
    client = AdoClient(
        sim.org_url, "MLOps", AdoCredentials(bearer_token_provider=lambda: token), sleep=sleeps
    )
    who = client.get_service_identity()
    assert who.id == "0000aaaa-0000-4000-8000-000000000001" and who.name == "app-1"


def test_service_identity_errors_are_typed(sim, sleeps, echo):
    with pytest.raises(AdoAuthError):
        client_for(sim, pat="wrong", sleeps=sleeps).get_service_identity()
    echo.responses.append((200, JSON, b'{"authenticatedUser": null}'))
    with pytest.raises(AdoError, match="no authenticated user"):
        AdoClient(echo.url, "MLOps", AdoCredentials(pat="p"), sleep=sleeps).get_service_identity()


# ==== reads, paging, shapes =====================================================================


def test_continuation_tokens_of_ten_pages_of_pipelines(sim, client):
    for i in range(9500):
        sim.create_pipeline(f"pipe-{i:05d}", "ci")
    names = [p["name"] for p in client.list_pipelines()]
    assert len(names) == 9500 == len(set(names))
    assert client.request_count == 10
    tokens = [e["query"].get("continuationtoken") for e in sim.request_log()]
    assert tokens[0] is None and all(tokens[1:]) and len(set(tokens[1:])) == 9


def test_continuation_tokens_of_ten_pages_of_builds(sim, client):
    a = sim.create_pipeline("a", "ci", stage_seconds=30)
    b = sim.create_pipeline("b", "ci", stage_seconds=30)
    for i in range(50):
        sim.queue_run(a if i % 2 else b)
        sim.advance(61)
    builds = list(client.list_builds(top=5))
    assert len(builds) == 50 == len({b["id"] for b in builds})
    assert client.request_count == 10
    queued = [b["queueTime"] for b in builds]
    assert queued == sorted(queued, reverse=True)  # queueTimeDescending, the default

    before = client.request_count
    only_a = list(client.list_builds(definitions=[a.id], top=5))
    assert len(only_a) == 25 and {x["definition"]["id"] for x in only_a} == {a.id}
    assert client.request_count - before == 5


def test_build_filters(sim, client):
    pipe = sim.create_pipeline("p", "ci", stage_seconds=30)
    runs = []
    for _ in range(6):
        runs.append(sim.queue_run(pipe))
        sim.advance(61)
    running = sim.queue_run(pipe)
    cutoff = START + dt.timedelta(seconds=61 * 4 - 30)  # between the 4th and the 5th run
    recent = list(client.list_builds(min_time=cutoff, query_order="queueTimeAscending"))
    assert [b["id"] for b in recent] == [r.id for r in runs[4:]] + [running.id]
    assert [b["id"] for b in client.list_builds(status_filter="inProgress")] == [running.id]
    wanted = [runs[0].id, runs[2].id]
    assert sorted(b["id"] for b in client.list_builds(build_ids=wanted)) == wanted
    assert list(client.list_builds(build_ids=[])) == []
    assert list(client.list_builds(definitions=[])) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        list(client.list_builds(min_time=dt.datetime(2025, 1, 1)))  # noqa: DTZ001


def test_build_ids_are_asked_for_a_hundred_at_a_time(sim, client):
    pipe = sim.create_pipeline("p", "ci", stage_seconds=1)
    ids = [sim.queue_run(pipe).id for _ in range(150)]
    assert sorted(b["id"] for b in client.list_builds(build_ids=ids)) == ids
    assert client.request_count == 2


def test_runs_timeline_and_approvals(sim, client):
    pipe = release(sim)
    run = client.queue_run(
        pipe.id,
        template_parameters={"modelName": "fraud-detector", "modelVersion": 7},
        branch="release/1.4",
        variables={"RELEASE_TAG": "1.4.2"},
    )
    assert run["state"] == "inProgress"
    assert run["templateParameters"] == {"modelName": "fraud-detector", "modelVersion": "7"}
    assert run["resources"]["repositories"]["self"]["refName"] == "refs/heads/release/1.4"
    assert client.get_run(pipe.id, run["id"])["id"] == run["id"]
    assert client.get_build(run["id"])["sourceBranch"] == "refs/heads/release/1.4"
    sim.advance(130)
    records = client.get_timeline(run["id"])["records"]
    qa = next(r for r in records if r["type"] == "Stage" and r["identifier"] == "Deploy_QA")
    checkpoint = next(r for r in records if r["parentId"] == qa["id"] and r["type"] == "Checkpoint")
    [gate] = [r for r in records if r["type"] == "Checkpoint.Approval"]
    assert gate["parentId"] == checkpoint["id"]

    [approval] = client.list_approvals(state="pending")
    assert approval["id"] == gate["id"]
    assert approval["pipeline"]["owner"]["id"] == run["id"]
    assert approval["steps"]  # $expand=steps by default
    assert next(iter(client.list_approvals(state="pending", expand_steps=False)))["steps"] == []
    assert client.get_approval(approval["id"])["steps"][0]["status"] == "pending"
    assert [a["id"] for a in client.list_approvals(approval_ids=[approval["id"]])] == [
        approval["id"]
    ]
    assert list(client.list_approvals(approval_ids=[])) == []


def test_timeline_records_are_a_list_even_when_ado_sends_none(sim, client):
    pipe = sim.create_pipeline("p", "ci")
    run = sim.queue_run(pipe)
    timeline = client.get_timeline(run.id)
    assert isinstance(timeline["records"], list)


# ==== errors ====================================================================================


def test_401_is_an_auth_error_without_retries(sim, sleeps):
    client = client_for(sim, pat="wrong-pat", sleeps=sleeps)
    with pytest.raises(AdoAuthError) as error:
        client.get_pipeline(1)
    assert error.value.status == 401
    assert "ADO simulator" in error.value.message  # the 401 page's text, tags stripped
    assert client.request_count == 1 and sleeps == []


def test_404_carries_ados_message_and_type_key(sim, client):
    with pytest.raises(AdoNotFound) as error:
        client.get_build(999)
    assert error.value.status == 404
    assert error.value.message == "The requested build 999 could not be found."
    assert error.value.type_key == "BuildNotFoundException"
    assert "GET " in error.value.request and "build/builds/999" in error.value.request
    assert "HTTP 404" in str(error.value)

    other = AdoClient(sim.org_url, "Nope", AdoCredentials(pat=PAT), sleep=Sleeps())
    with pytest.raises(AdoNotFound) as error:
        list(other.list_pipelines())
    assert error.value.message.startswith("TF200016")
    assert error.value.type_key == "ProjectDoesNotExistWithNameException"


def test_other_4xx_is_a_bad_request(sim, client):
    pipe = release(sim)
    run = sim.queue_run(pipe)
    sim.advance(130)
    [approval] = client.list_approvals(state="pending")
    update = [{"approvalId": approval["id"], "status": "approved", "comment": "ok"}]
    assert client.update_approvals(update)[0]["status"] == "approved"
    with pytest.raises(AdoBadRequest) as error:
        client.update_approvals(update)
    assert error.value.status == 400
    assert error.value.type_key == "ApprovalAlreadyCompletedException"
    assert sim.run(run.id).stage("QA").approval.status == "approved"


# ==== retries, backoff, throttling ==============================================================


def test_429_with_retry_after_is_honoured_then_success(sim, client, sleeps):
    sim.create_pipeline("p", "ci")
    sim.throttle_next(1, retry_after=2)
    assert [p["name"] for p in client.list_pipelines()] == ["p"]
    assert sleeps == [2.0]
    assert client.request_count == 2
    assert client.rate_limit.remaining == 0 and client.rate_limit.limit == 200


def test_429_beyond_the_retries_is_throttled_and_the_next_call_still_waits(sim, sleeps):
    client = client_for(sim, sleeps=sleeps, max_retries=2)
    sim.throttle_next(3, retry_after=7)
    with pytest.raises(AdoThrottled) as error:
        client.get_pipeline(1)
    assert (error.value.status, error.value.retry_after) == (429, 7.0)
    assert error.value.type_key == "RequestBlockedException"
    assert error.value.message.startswith("TF400733")
    assert sleeps == [7.0, 7.0] and client.request_count == 3
    with pytest.raises(AdoNotFound):  # the simulator has no pipeline 1; but first, wait
        client.get_pipeline(1)
    assert len(sleeps) == 3 and 6.5 < sleeps[2] <= 7.0


def test_a_real_one_second_retry_after(sim):
    client = AdoClient(sim.org_url, "MLOps", AdoCredentials(pat=PAT))  # real time.sleep
    sim.create_pipeline("p", "ci")
    sim.throttle_next(1, retry_after=1)
    started = time.monotonic()
    assert len(list(client.list_pipelines())) == 1
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5, elapsed
    assert client.request_count == 2
    assert client.waited_seconds == 1.0


def test_503_with_retry_after_waits_as_told(sim, client, sleeps):
    sim.create_pipeline("p", "ci")
    sim.fail_next(1, 503)  # the simulator's 503 carries Retry-After: 1
    assert len(list(client.list_pipelines())) == 1
    assert sleeps == [1.0]


def test_500s_are_retried_with_growing_backoff_and_full_jitter(sim):
    sim.create_pipeline("p", "ci")
    per_attempt: list[list[float]] = [[], [], [], []]
    for _ in range(40):
        sleeps = Sleeps()
        client = client_for(sim, sleeps=sleeps, backoff_base=1.0, backoff_max=30.0)
        sim.fail_next(4, 500)
        assert len(list(client.list_pipelines())) == 1
        assert client.request_count == 5
        assert len(sleeps) == 4
        for attempt, seconds in enumerate(sleeps):
            assert 0 <= seconds <= 2**attempt  # ceilings 1, 2, 4, 8
            per_attempt[attempt].append(seconds)
    means = [statistics.mean(values) for values in per_attempt]
    assert means[0] < means[1] < means[2] < means[3], means
    assert len({round(s, 6) for s in per_attempt[3]}) > 30  # jittered, not fixed


def test_backoff_is_capped(sim):
    sleeps = Sleeps()
    client = client_for(sim, sleeps=sleeps, backoff_base=10.0, backoff_max=12.0, max_retries=4)
    sim.fail_next(4, 502)
    list(client.list_pipelines())
    assert all(s <= 12.0 for s in sleeps) and len(sleeps) == 4


def test_500s_beyond_max_retries_are_unavailable_with_the_status(sim, sleeps):
    client = client_for(sim, sleeps=sleeps, max_retries=3)
    sim.fail_next(10, 500)
    with pytest.raises(AdoUnavailable) as error:
        list(client.list_pipelines())
    assert error.value.status == 500
    assert error.value.message == "VS30063: simulated server error."
    assert error.value.type_key == "SimulatedServerException"
    assert client.request_count == 4 == sim.request_count
    assert len(sleeps) == 3


def test_501_is_not_retried(sim, client, sleeps):
    sim.fail_next(1, 501)
    with pytest.raises(AdoUnavailable) as error:
        client.get_pipeline(1)
    assert error.value.status == 501
    assert client.request_count == 1 and sleeps == []


def test_connection_refused_is_unavailable_after_retries(sim, sleeps):
    client = client_for(sim, sleeps=sleeps, max_retries=2)
    sim.create_pipeline("p", "ci")
    assert len(list(client.list_pipelines())) == 1  # a pooled keep-alive connection exists
    sim.go_down("refuse")
    try:
        with pytest.raises(AdoUnavailable) as error:
            list(client.list_pipelines())
    finally:
        sim.come_up()
    assert error.value.status is None
    assert "connection failed" in error.value.message
    assert client.request_count == 1  # nothing reached ADO while it was down
    assert len(sleeps) == 2


def test_a_closed_port_is_unavailable(sleeps):
    client = AdoClient(
        f"http://127.0.0.1:{free_port()}/org",
        "p",
        AdoCredentials(pat="x"),
        sleep=sleeps,
        max_retries=1,
    )
    with pytest.raises(AdoUnavailable) as error:
        client.get_build(1)
    assert error.value.status is None and client.request_count == 0 and len(sleeps) == 1


def test_down_then_up_between_retries_recovers(sim, sleeps):
    sim.create_pipeline("p", "ci")

    def sleep(seconds):
        sleeps.append(seconds)
        sim.come_up()

    client = client_for(sim, sleeps=sleep)
    sim.go_down("refuse")
    assert len(list(client.list_pipelines())) == 1
    assert len(sleeps) == 1 and client.request_count == 1


def test_low_rate_limit_remaining_triggers_a_proactive_pause(sim, client, sleeps):
    sim.create_pipeline("p", "ci")
    sim.set_rate_limit(limit=50, window=60, warn_below=10)
    remaining = []
    for _ in range(46):
        client.get_pipeline(1)
        remaining.append(client.rate_limit.remaining if client.rate_limit else None)
    # Headers appear at 10 left; below 10 % of 50 (4 left and fewer) each request is paced.
    assert remaining[:39] == [None] * 39
    assert remaining[39:] == [10, 9, 8, 7, 6, 5, 4]
    assert sleeps == []  # the pause comes before the next request, not after the last
    client.get_pipeline(1)
    [pause] = sleeps
    # The ~60 s to the reset (an epoch second, rounded up) spread over the 4 requests left.
    assert 60 / 4 - 1 <= pause <= 61 / 4
    assert client.rate_limit.remaining == 3 and client.rate_limit.resource == "ATCPU"
    client.get_pipeline(1)
    assert len(sleeps) == 2 and 60 / 3 - 1 <= sleeps[1] <= 61 / 3
    capped = client_for(sim, sleeps=sleeps, backoff_max=5.0)
    capped.get_pipeline(1)  # another client of the same identity: 1 left
    capped.get_pipeline(1)
    assert sleeps[2] == pytest.approx(5.0, abs=0.05)  # never longer than backoff_max


# ==== writes: queue a run, act on approvals =====================================================


def test_queue_run_is_not_retried_on_a_500(sim, client, sleeps):
    pipe = sim.create_pipeline("p", "training")
    sim.fail_next(1, 500, path="/runs", method="POST")
    with pytest.raises(AdoUnavailable) as error:
        client.queue_run(pipe.id)
    assert error.value.status == 500
    assert client.request_count == 1 == sim.request_count
    assert sleeps == []
    assert sim.runs == {}


def test_queue_run_is_retried_on_429(sim, client, sleeps):
    pipe = sim.create_pipeline("p", "training")
    sim.throttle_next(1, retry_after=3, method="POST")
    run = client.queue_run(pipe.id, template_parameters={"modelName": "m"})
    assert sleeps == [3.0]
    assert client.request_count == 2
    assert list(sim.runs) == [run["id"]]


def test_queue_run_is_retried_on_503_with_retry_after(sim, client, sleeps):
    pipe = sim.create_pipeline("p", "training")
    sim.fail_next(1, 503, path="/runs", method="POST")
    client.queue_run(pipe.id)
    assert sleeps == [1.0] and len(sim.runs) == 1


def test_queue_run_is_retried_when_the_connection_was_refused(sim, sleeps):
    pipe = sim.create_pipeline("p", "training")

    def sleep(seconds):
        sleeps.append(seconds)
        sim.come_up()

    client = client_for(sim, sleeps=sleep)
    sim.go_down("refuse")
    run = client.queue_run(pipe.id)
    assert len(sleeps) == 1 and client.request_count == 1
    assert list(sim.runs) == [run["id"]]


def test_queue_run_is_not_retried_after_a_read_timeout(sim, sleeps):
    """The ambiguous case: the request reached ADO, no answer came; the run was queued."""
    pipe = sim.create_pipeline("p", "training")
    sim.set_rate_limit(limit=1000, window=60, warn_below=1000, delay=1.0)  # slow answers
    client = client_for(sim, sleeps=sleeps, timeout=(2, 0.3))
    with pytest.raises(AdoUnavailable) as error:
        client.queue_run(pipe.id)
    assert "may have taken effect" in error.value.message
    assert client.request_count == 1 and sleeps == []
    deadline = time.monotonic() + 5
    while not sim.runs and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sim.runs) == 1  # which is why it was not sent again
    sim.clear_rate_limit()


def test_gets_are_retried_after_a_read_timeout(sim, sleeps):
    sim.create_pipeline("p", "ci")
    sim.set_rate_limit(limit=1000, window=60, warn_below=1000, delay=1.0)
    client = client_for(sim, sleeps=sleeps, timeout=(2, 0.3), max_retries=1)
    with pytest.raises(AdoUnavailable) as error:
        client.get_pipeline(1)
    assert "timed out" in error.value.message
    assert client.request_count == 2 and len(sleeps) == 1
    sim.clear_rate_limit()


def test_update_approvals_is_not_retried_on_a_500(sim, client, sleeps):
    pipe = release(sim)
    sim.queue_run(pipe)
    sim.advance(130)
    [approval] = client.list_approvals(state="pending")
    sim.fail_next(1, 500, path="/pipelines/approvals", method="PATCH")
    before = sim.request_count
    with pytest.raises(AdoUnavailable):
        client.update_approvals([{"approvalId": approval["id"], "status": "approved"}])
    assert sim.request_count - before == 1 and sleeps == []


def test_update_approvals_with_a_users_token_records_that_user(sim, client):
    pipe = release(sim)
    first, second = sim.queue_run(pipe), sim.queue_run(pipe)
    sim.advance(130)
    approvals = {a["pipeline"]["owner"]["id"]: a["id"] for a in client.list_approvals()}

    by_pat = client.update_approvals(
        [{"approvalId": approvals[first.id], "status": "approved", "comment": "pat"}]
    )
    token = user_jwt()
    by_user = client.update_approvals(
        [{"approvalId": approvals[second.id], "status": "rejected", "comment": "no"}],
        bearer_token=token,
    )
    assert by_pat[0]["steps"][0]["actualApprover"]["uniqueName"] == PAT_USER
    assert by_user[0]["status"] == "rejected"
    assert by_user[0]["steps"][0]["actualApprover"]["displayName"] == "Alice Approver"

    pat_entry, user_entry = sim.patch_log
    assert (pat_entry["scheme"], pat_entry["identity"]["uniqueName"]) == ("Basic", PAT_USER)
    assert user_entry["scheme"] == "Bearer"
    assert user_entry["identity"] == {
        "id": "6f1e2d3c-0000-4000-8000-00000000a11c",
        "displayName": "Alice Approver",
        "uniqueName": "alice@example.com",
    }
    assert user_entry["body"] == [
        {"approvalId": approvals[second.id], "status": "rejected", "comment": "no"}
    ]
    assert user_entry["apiVersion"] == "7.1"
    # The override is for that call only: the client goes on with its PAT.
    client.get_pipeline(pipe.id)
    assert sim.request_log()[-1]["identity"] == PAT_USER


def test_an_expired_user_token_is_an_auth_error_not_refreshed(sim, client):
    pipe = release(sim)
    sim.queue_run(pipe)
    sim.advance(130)
    [approval] = client.list_approvals()
    before = sim.request_count
    with pytest.raises(AdoAuthError):
        client.update_approvals(
            [{"approvalId": approval["id"], "status": "approved"}],
            bearer_token=user_jwt(exp=int(time.time()) - 60),
        )
    assert sim.request_count - before == 1


# ==== credentials ===============================================================================


def test_credentials_take_exactly_one_kind_and_hide_the_pat():
    with pytest.raises(ValueError, match="exactly one"):
        AdoCredentials()
    with pytest.raises(ValueError, match="exactly one"):
        AdoCredentials(pat="x", bearer_token_provider=lambda: "t")
    credentials = AdoCredentials(pat="super-secret-pat")
    assert "super-secret-pat" not in repr(credentials)
    assert "super-secret-pat" not in repr(AdoClient("https://dev.azure.com/o", "p", credentials))


def test_neither_pat_nor_tokens_are_logged(sim, caplog):
    caplog.set_level(logging.DEBUG)
    pipe = release(sim)
    sim.queue_run(pipe)
    sim.advance(130)
    client = client_for(sim)
    sim.throttle_next(1, retry_after=1)
    sim.fail_next(1, 500)
    [approval] = client.list_approvals()
    token = user_jwt()
    client.update_approvals(
        [{"approvalId": approval["id"], "status": "approved"}], bearer_token=token
    )
    with pytest.raises(AdoError):
        client_for(sim, pat="another-secret-pat").get_pipeline(pipe.id)
    text = caplog.text
    assert "pipelines.client" in text  # it did log (retries, waits, requests)
    for secret in (PAT, "another-secret-pat", token, base64.b64encode(f":{PAT}".encode()).decode()):
        assert secret not in text


def test_credentials_from_settings(settings):
    settings.AZURE_DEVOPS_PAT = "pat-from-settings"
    settings.ENTRA_TENANT_ID = settings.ENTRA_CLIENT_ID = settings.ENTRA_CLIENT_SECRET = ""
    assert credentials_from_settings().pat == "pat-from-settings"

    settings.AZURE_DEVOPS_PAT = ""
    settings.ENTRA_TENANT_ID = "tenant"
    settings.ENTRA_CLIENT_ID = "client"
    settings.ENTRA_CLIENT_SECRET = "secret"
    credentials = credentials_from_settings()
    assert credentials.pat == "" and callable(credentials.bearer_token_provider)
    assert credentials_from_settings().bearer_token_provider is credentials.bearer_token_provider
    assert "secret" not in repr(credentials.bearer_token_provider)

    settings.ENTRA_CLIENT_SECRET = ""
    with pytest.raises(ImproperlyConfigured, match=r"ENTRA_CLIENT_SECRET missing"):
        credentials_from_settings()
    settings.ENTRA_TENANT_ID = settings.ENTRA_CLIENT_ID = ""
    with pytest.raises(ImproperlyConfigured) as error:
        credentials_from_settings()
    for name in ("AZURE_DEVOPS_PAT", "ENTRA_TENANT_ID", "ENTRA_CLIENT_ID", "ENTRA_CLIENT_SECRET"):
        assert name in str(error.value)
    assert "missing" not in str(error.value)


def test_a_plain_callable_provider_is_called_per_request_and_again_after_a_401(sim, sleeps):
    tokens = [user_jwt(exp=int(time.time()) - 5), user_jwt(upn="svc@example.com")]
    calls = []

    def provider():
        calls.append(1)
        return tokens[min(len(calls), len(tokens)) - 1]

    sim.create_pipeline("p", "ci")
    client = AdoClient(
        sim.org_url, "MLOps", AdoCredentials(bearer_token_provider=provider), sleep=sleeps
    )
    assert client.get_pipeline(1)["name"] == "p"  # 401 with the expired one, then the new one
    assert len(calls) == 2 and client.request_count == 2
    client.get_pipeline(1)
    assert len(calls) == 3 and sleeps == []
    assert sim.request_log()[-1]["identity"] == "svc@example.com"


# ==== a service principal through the real msal, against a local Entra ID stand-in ==============


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA for the Entra stand-in")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


class EntraStandIn:
    """HTTPS stand-in for Entra ID: OIDC discovery and the v2.0 token endpoint (client
    credentials). Tokens are unsigned JWTs for the service principal; ``expired`` says which
    token numbers (1-based) come with an ``exp`` in the past (while ``expires_in`` says an
    hour, so msal caches them)."""

    TENANT = "11111111-2222-3333-4444-555555555555"
    CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    SECRET = "sp-secret-value"
    SP_OID = "99999999-8888-7777-6666-555555555555"

    def __init__(self, directory: Path):
        self.ca_path, cert_path, key_path = _certificates(directory)
        self.token_requests: list[dict] = []
        self.discovery_requests = 0
        self.expired: set[int] = set()
        self.issued: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.startswith(
                    f"/{stand_in.TENANT}/v2.0/.well-known/openid-configuration"
                ):
                    stand_in.discovery_requests += 1
                    base = f"{stand_in.url}/{stand_in.TENANT}"
                    self._send(
                        200,
                        {
                            "issuer": f"{base}/v2.0",
                            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                            "token_endpoint": f"{base}/oauth2/v2.0/token",
                            "jwks_uri": f"{base}/discovery/v2.0/keys",
                            "response_types_supported": ["code", "token"],
                        },
                    )
                else:
                    self._send(
                        400,
                        {
                            "error": "invalid_tenant",
                            "error_description": f"AADSTS90002: Tenant not found ({self.path}).",
                        },
                    )

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[-1] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path != f"/{stand_in.TENANT}/oauth2/v2.0/token":
                    self._send(404, {"error": "not_found"})
                    return
                stand_in.token_requests.append(form)
                if form.get("client_secret") != stand_in.SECRET:
                    self._send(
                        401,
                        {
                            "error": "invalid_client",
                            "error_description": "AADSTS7000215: Invalid client secret "
                            "provided. Ensure the secret being sent in the request is the "
                            "client secret value, not the client secret ID.",
                            "error_codes": [7000215],
                        },
                    )
                    return
                number = len(stand_in.token_requests)
                exp = int(time.time()) + (-60 if number in stand_in.expired else 3600)
                token = make_jwt(
                    {
                        "aud": "499b84ac-1321-427f-aa17-267ca6975798",
                        "oid": stand_in.SP_OID,
                        "appid": form.get("client_id"),
                        "app_displayname": "mlops-portal-sync",
                        "tid": stand_in.TENANT,
                        "exp": exp,
                        "n": number,
                    }
                )
                stand_in.issued.append(token)
                self._send(
                    200,
                    {
                        "token_type": "Bearer",
                        "expires_in": 3599,
                        "ext_expires_in": 3599,
                        "access_token": token,
                    },
                )

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"

    def provider(self, secret: str | None = None):
        return service_principal_token_provider(
            self.TENANT,
            self.CLIENT_ID,
            secret or self.SECRET,
            authority_host=self.url,
            verify=str(self.ca_path),
        )

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def entra(tmp_path, monkeypatch):
    import certifi

    # requests lets $REQUESTS_CA_BUNDLE replace a Session's verify (which is how msal's own
    # verify= works): set it, so the stand-in's CA must come through per request.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    stand_in = EntraStandIn(tmp_path)
    yield stand_in
    stand_in.stop()


def sp_client(sim, provider, sleeps) -> AdoClient:
    return AdoClient(
        sim.org_url, "MLOps", AdoCredentials(bearer_token_provider=provider), sleep=sleeps
    )


def test_msal_refuses_an_http_authority():
    """Why the stand-in speaks HTTPS: msal accepts only https authorities."""
    import msal

    with pytest.raises(ValueError, match="https"):
        msal.ConfidentialClientApplication(
            "client", client_credential="s", authority="http://127.0.0.1:9/tenant"
        )


def test_service_principal_token_is_cached_across_calls_and_clients(sim, entra, sleeps):
    sim.create_pipeline("p", "ci")
    provider = entra.provider()
    client = sp_client(sim, provider, sleeps)
    for _ in range(3):
        client.get_pipeline(1)
    list(client.list_builds())
    sp_client(sim, entra.provider(), sleeps).get_pipeline(1)  # same provider, same cache
    assert entra.provider() is provider
    assert len(entra.token_requests) == 1
    assert entra.discovery_requests == 1
    [form] = entra.token_requests
    assert form["grant_type"] == "client_credentials"
    assert form["client_id"] == entra.CLIENT_ID
    assert form["scope"] == ADO_SCOPE
    assert {e["identity"] for e in sim.request_log()} == {entra.CLIENT_ID}
    assert all(e["status"] == 200 for e in sim.request_log())


def test_service_principal_401_refreshes_the_token_once(sim, entra, sleeps):
    sim.create_pipeline("p", "ci")
    entra.expired = {1}  # ADO refuses the first token (401); msal still has it cached
    client = sp_client(sim, entra.provider(), sleeps)
    assert client.get_pipeline(1)["name"] == "p"
    assert len(entra.token_requests) == 2
    assert [e["status"] for e in sim.request_log()] == [401, 200]
    assert client.request_count == 2 and sleeps == []
    client.get_pipeline(1)
    assert len(entra.token_requests) == 2  # the new token is cached


def test_service_principal_401_after_the_refresh_is_an_auth_error(sim, entra, sleeps):
    entra.expired = {1, 2, 3}
    client = sp_client(sim, entra.provider(), sleeps)
    with pytest.raises(AdoAuthError) as error:
        client.get_pipeline(1)
    assert error.value.status == 401
    assert len(entra.token_requests) == 2 and client.request_count == 2


def test_service_principal_refused_by_entra_is_an_auth_error_with_msals_description(
    sim, entra, sleeps
):
    client = sp_client(sim, entra.provider(secret="wrong-secret"), sleeps)
    with pytest.raises(AdoAuthError) as error:
        client.get_pipeline(1)
    assert error.value.message.startswith("AADSTS7000215: Invalid client secret provided.")
    assert error.value.type_key == "invalid_client"
    assert error.value.status is None
    assert client.request_count == 0 and sim.request_count == 0


def test_service_principal_with_entra_unreachable_is_unavailable(sim, sleeps):
    provider = service_principal_token_provider(
        "tenant", "client", "secret", authority_host=f"https://127.0.0.1:{free_port()}"
    )
    with pytest.raises(AdoUnavailable, match="could not be reached"):
        sp_client(sim, provider, sleeps).get_pipeline(1)
    assert sim.request_count == 0


def test_for_project_uses_the_project_and_the_settings(sim, settings):
    from pipelines.models import AdoProject

    settings.AZURE_DEVOPS_PAT = PAT
    sim.create_pipeline("p", "ci")
    project = AdoProject(name="mlops", organization_url=sim.org_url + "/", project="MLOps")
    with AdoClient.for_project(project) as client:
        assert [p["name"] for p in client.list_pipelines()] == ["p"]
        assert client.credentials.pat == PAT
    assert sim.request_log()[-1]["identity"] == PAT_USER
