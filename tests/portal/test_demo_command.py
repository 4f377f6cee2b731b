import contextlib
import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from approvals import services as approvals
from approvals.models import (
    ApprovalPolicy,
    ApprovalRequest,
    ApprovalStatus,
    AuditAction,
    AuditEvent,
    FreezeWindow,
)
from core.roles import Role, user_roles
from maturity.models import MaturityRecord, MaturitySnapshot, ModelMaturity
from maturity.selectors import dropped_models
from maturity.services import week_of
from pipelines.models import AdoProject, Pipeline, PipelineRun, RunStage
from registry import demo_data
from registry.devserver import free_port
from registry.models import (
    ArtifactCheck,
    CatalogModel,
    ModelVersion,
    RegisteredModel,
    RegistrySource,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_settings(settings, tmp_path):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    return settings


def test_demo_seed_creates_one_user_per_role_and_prints_passwords(demo_settings, capsys):
    call_command("demo", "--seed-only", "--no-mlflow", "--no-ado")
    out = capsys.readouterr().out
    credentials = json.loads((demo_settings.VAR_DIR / "demo-credentials.json").read_text())
    users = get_user_model().objects.filter(username__in=credentials)
    assert {next(iter(user_roles(u))) for u in users} == set(Role.values)
    for username, password in credentials.items():
        assert f"{username:<8} password: {password}" in out
        assert get_user_model().objects.get(username=username).check_password(password)
    assert oct((demo_settings.VAR_DIR / "demo-credentials.json").stat().st_mode)[-3:] == "600"
    assert CatalogModel.objects.filter(name="credit-limit-rules").exists()
    assert not RegistrySource.objects.exists()
    # no source was read: the one catalog model gets its history, the assessment measures nothing
    assert "Assessed the maturity of 1 model: L1 0, L2 0, L3 0, L4 0, L5 0, below L1 1" in out


def test_demo_keeps_the_same_passwords_on_a_second_run(demo_settings, capsys):
    call_command("demo", "--seed-only", "--no-mlflow", "--no-ado")
    first = (demo_settings.VAR_DIR / "demo-credentials.json").read_text()
    call_command("demo", "--seed-only", "--no-mlflow", "--no-ado")
    assert (demo_settings.VAR_DIR / "demo-credentials.json").read_text() == first


def test_demo_refuses_to_run_outside_the_local_settings(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with the local settings"):
        call_command("demo", "--seed-only")


def test_demo_refuses_an_mlflow_port_another_program_holds(demo_settings):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(CommandError, match=rf"Port {port} .*--mlflow-port {port + 1}"):
            call_command("demo", "--seed-only", "--mlflow-port", str(port), "--no-ado")
    assert not get_user_model().objects.exists()  # it failed before doing anything


@pytest.mark.django_db(transaction=True)  # the scheduler closes a connection left in a transaction
def test_demo_beat_picks_up_the_approvals_poll_and_the_outbox_sweep():
    """The demo's `celery beat` uses the DatabaseScheduler, which copies the fixed schedule of
    the settings into its tables at start: the approvals poll and the outbox sweep run."""
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    from portal.celery import app

    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"
    DatabaseScheduler(app=app)  # what beat builds when it starts
    every = {
        task.task: task.interval.every
        for task in PeriodicTask.objects.filter(task__startswith="approvals.", enabled=True)
    }
    assert every == {
        "approvals.sync_all_projects": 60,
        "approvals.sweep_outbox": 30,
        "approvals.sweep_checks": 30,
        "approvals.notify_expiring": 15 * 60,
    }


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_seed_only_starts_seeds_and_syncs_mlflow_then_stops_it(demo_settings, capsys):
    """The real thing: an `mlflow server` on the given port, seeded, mirrored, stopped."""
    port, ado_port, artifactory_port = free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    call_command(
        "demo", "--seed-only", "--mlflow-port", str(port), "--ado-port", str(ado_port),
        "--artifactory-port", str(artifactory_port),
    )  # fmt: skip
    out = capsys.readouterr().out

    pid = int(re.search(rf"MLflow server started at {url} \(pid (\d+)", out).group(1))
    assert "seeded 9 registered models" in out
    assert re.search(r"Synced source 'central' \(full sync.*models 9 created", out)
    source = RegistrySource.objects.get(name="central")
    assert (source.tracking_uri, source.ui_url, source.is_central) == (url, url, True)
    assert source.last_full_sync_at is not None and source.last_sync_error == ""
    live = RegisteredModel.objects.filter(source=source, deleted_upstream_at__isnull=True)
    assert set(live.values_list("name", flat=True)) == {s.name for s in demo_data.DEMO_MODELS}
    versions = ModelVersion.objects.filter(registered_model__source=source)
    assert versions.count() == sum(s.versions for s in demo_data.DEMO_MODELS)
    assert CatalogModel.objects.get(name="fraud-detector").owners == ["dana@example.com"]
    assert CatalogModel.objects.filter(name="credit-limit-rules").exists()
    assert _gone(pid) and not _listening(port)
    assert not (demo_settings.VAR_DIR / "mlflow" / "server.pid").exists()
    assert (demo_settings.VAR_DIR / "mlflow" / "mlflow.db").is_file()
    # The ADO simulator ran, its demo pipelines were mirrored, and it was stopped.
    ado_pid = int(
        re.search(r"ADO simulator \(not Azure DevOps\) running at .* \(pid (\d+)\)", out).group(1)
    )
    project = AdoProject.objects.get(name="demo")
    assert project.last_sync_error == "" and project.last_sync_succeeded_at is not None
    assert PipelineRun.objects.filter(pipeline__project=project).count() > 100
    fraud_release = Pipeline.objects.get(name="risk-fraud-detector-release")
    assert fraud_release.kind == "release" and fraud_release.catalog_model.name == "fraud-detector"
    assert RunStage.objects.filter(waiting_for_approval=True).exists()
    assert _gone(ado_pid) and not _listening(ado_port)
    # The first approvals poll mirrored the releases waiting at QA and PROD; the demo approver
    # may decide every one (the portal's PAT identity queued them; QA passed before PROD).
    assert "Polled the approvals of 'demo': 2 pending at QA, 1 pending at PROD (3 new)" in out
    pending = ApprovalRequest.objects.filter(project=project, status=ApprovalStatus.PENDING)
    assert sorted(pending.values_list("environment", "catalog_model__name")) == [
        ("PROD", "churn-predictor"),
        ("QA", "credit-limit-rules"),
        ("QA", "fraud-detector"),
    ]
    assert {(a.requested_by_id, a.run.pipeline.kind) for a in pending} == {
        ("portal-demo@example.com", "release")
    }
    assert all(a.assigned_approvers[0]["is_group"] for a in pending)
    alice = get_user_model().objects.get(username="alice")
    for approval in pending:
        rules = approvals.decision_rules(
            approval=approval, user=alice, authenticated_at=timezone.now()
        )
        assert all(rule.ok for rule in rules), (approval, rules)
    prod = pending.get(environment="PROD")
    assert prod.model_version.version == 4 and approvals.qa_succeeded(prod)
    # the demo's release rules: a PROD policy whose soak time only warns (so the rules above
    # all pass) and a freeze window ahead, both audited as the demo manager's edits
    assert "Release rules: a PROD policy" in out
    policy = ApprovalPolicy.objects.get(environment="PROD", scope="global")
    assert policy.soak_mode == "warn" and policy.signoff_required
    window = FreezeWindow.objects.get(name="Data-centre move")
    assert window.dtstart > timezone.now() + dt.timedelta(days=9)
    assert (
        AuditEvent.objects.filter(
            action__in=["policy.changed", "freeze.created"], actor__username="maya"
        ).count()
        == 2
    )
    # that first poll also imported what ADO decided in the last 90 days, as decided in ADO
    history = ApprovalRequest.objects.filter(project=project).exclude(status=ApprovalStatus.PENDING)
    assert history.exists() and {a.decided_in for a in history} == {"ado"}
    assert f"and {history.count()} decided in ADO earlier for the Decided tab" in out
    requested = AuditEvent.objects.filter(action=AuditAction.APPROVAL_REQUESTED)
    assert set(requested.values_list("approval_id", flat=True)) == {
        a.pk for a in [*pending, *history]
    }
    # The Artifactory stand-in held every demo version's binary, named by its version tags
    # (set in MLflow, mirrored); one PROD version's was overwritten: flagged "differs".
    artifactory_pid = int(re.search(r"Artifactory stand-in .* \(pid (\d+)\)", out).group(1))
    checks = ArtifactCheck.objects.filter(model_version__registered_model__source=source)
    assert checks.count() == versions.count()
    differs = checks.filter(state="differs")
    assert differs.count() == 1 and checks.filter(state="ok").count() == versions.count() - 1
    assert differs.get().model_version.tags["artifactory.path"].startswith("ml-models/")
    assert "was overwritten after registration" in out
    assert _gone(artifactory_pid) and not _listening(artifactory_port)
    # Maturity: half a year of history on the first start, then the live assessment of the
    # demo, which finds every level and agrees with where that history ended.
    assert (
        "Assessed the maturity of 10 models: L1 1, L2 1, L3 4, L4 3, L5 1 (26 weeks of "
        "history). Managers: http://127.0.0.1:8000/maturity/"
    ) in out
    assessed = dict(ModelMaturity.objects.values_list("catalog_model__name", "assessed_level"))
    assert assessed == {
        "fraud-detector": 5,
        "churn-predictor": 4,
        "credit-scoring": 4,
        "transaction-screening-rules": 4,
        "demand-forecast": 3,
        "marketing-uplift": 3,
        "inventory-anomaly": 3,
        "credit-limit-rules": 3,
        "customer-lifetime-value": 2,
        "claims-triage-rules": 1,
    }
    assert not MaturityRecord.objects.filter(made_by="assessment at demo start").exists()
    assert MaturitySnapshot.objects.filter(week=week_of(timezone.localdate())).count() == 10
    assert {s.catalog_model.name for s in dropped_models()} == {"demand-forecast"}
    disagreeing = ModelMaturity.objects.get(disagreement=True)
    assert disagreeing.catalog_model.name == "marketing-uplift"
    records = MaturityRecord.objects.count()

    # An earlier demo's server still running on the same port and folder is reused, not
    # seeded again, and stopped at the end like one the demo started.
    # It is started by a process that then exits, like a demo that was killed.
    workdir = demo_settings.VAR_DIR / "mlflow"
    starter = subprocess.run(
        [sys.executable, "-c", LEFTOVER_SERVER, str(workdir), str(port)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=settings.BASE_DIR,
    )
    assert starter.returncode == 0, starter.stderr
    leftover_pid = int(starter.stdout.split()[-1])
    (workdir / "server.pid").write_text(f"{leftover_pid}\n")
    try:
        call_command("demo", "--seed-only", "--mlflow-port", str(port), "--no-ado")
        out = capsys.readouterr().out
        assert f"MLflow server reused from an earlier run at {url} (pid {leftover_pid}" in out
        assert "not seeding it again" in out
        assert re.search(r"models 0 created, 0 updated, 0 deleted, 9 unchanged", out)
        # no second history, and nothing changed since the first assessment
        assert "Assessed the maturity of 10 models" in out
        assert MaturityRecord.objects.count() == records
        assert not _listening(port) and not (workdir / "server.pid").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(leftover_pid, signal.SIGKILL)
    assert versions.count() == sum(s.versions for s in demo_data.DEMO_MODELS)


LEFTOVER_SERVER = """
import sys
from registry.devserver import MlflowServer
server = MlflowServer(sys.argv[1], port=int(sys.argv[2])).start()
print(server.process.pid)
"""


@pytest.fixture
def demo_web(tmp_path):
    """The demo's web process, started with the command and environment the demo uses, on the
    local settings and this test run's (already migrated) database."""
    from portal.management.commands import demo

    db = settings.DATABASES["default"]
    addr = f"127.0.0.1:{free_port()}"
    env = demo.demo_process_env(
        {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "TEST_"))},
            "DJANGO_SETTINGS_MODULE": "portal.settings.local",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        },
        addr=addr,
        metrics_dir=tmp_path / "metrics",
    )
    process = subprocess.Popen(
        demo.demo_commands(addr, tmp_path)["web"],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield addr, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


def _get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_demo_says_the_portal_runs_only_once_it_answers(demo_web):
    from portal.management.commands import demo

    addr, process = demo_web
    assert demo.wait_until_portal_answers(addr, {"web": process}, timeout=120) is None
    status, body = _get(f"http://{addr}/healthz")
    assert status == 200 and json.loads(body) == {"status": "ok"}


def test_the_demo_shows_the_portals_own_error_pages_and_still_serves_static_files(demo_web):
    from portal.management.commands import demo

    addr, process = demo_web
    assert demo.wait_until_portal_answers(addr, {"web": process}, timeout=120) is None
    status, body = _get(f"http://{addr}/accounts/login/mistyped/")
    assert status == 404
    assert "Page not found" in body and "There is nothing at this address" in body
    assert "Django" not in body and "URLconf" not in body  # not the debug page
    status, css = _get(f"http://{addr}/static/css/portal.css")
    assert status == 200 and css


def test_the_demo_tells_which_process_exited_before_the_portal_answered(tmp_path):
    from portal.management.commands import demo

    addr = f"127.0.0.1:{free_port()}"
    failing = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    failing.wait(timeout=30)
    problem = demo.wait_until_portal_answers(addr, {"web": failing}, timeout=30)
    assert problem == "web exited with code 3 before the portal answered"


class _Output:
    """The management command's stderr, as the supervisor writes to it."""

    def __init__(self):
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)


def test_the_demo_supervisor_restarts_a_dead_worker_and_says_so():
    import subprocess
    import sys
    from types import SimpleNamespace

    from portal.demo.processes import MAX_RESTARTS_PER_MINUTE, supervise

    started: list[subprocess.Popen] = []

    def launch(name):
        code = "import time; time.sleep(60)" if name != "dies" else "raise SystemExit(3)"
        process = subprocess.Popen([sys.executable, "-c", code])
        started.append(process)
        return process

    command = SimpleNamespace(stderr=_Output())
    try:
        worker = launch("dies")
        worker.wait(timeout=10)
        processes = {"web": launch("web"), "worker": worker}
        restarts: list[float] = []
        assert supervise(command, processes, launch, restarts) is None
        assert processes["worker"] is not worker and processes["worker"].poll() is None
        assert command.stderr.lines == [
            "worker exited with code 3; restarting it (the outbox sweep delivers what it held)"
        ]
        # A worker that keeps dying stops the demo instead of looping.
        restarts[:] = [restarts[0]] * MAX_RESTARTS_PER_MINUTE
        processes["worker"].kill()
        processes["worker"].wait(timeout=10)
        assert "times in a minute" in supervise(command, processes, launch, restarts)
        # web (or beat) exiting is not restarted.
        processes["worker"] = launch("worker")
        processes["web"].kill()
        processes["web"].wait(timeout=10)
        assert supervise(command, processes, launch, []) == "web exited with code -9"
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_the_demos_processes_get_demo_mode_and_a_generic_signal_secret_kept_in_var(tmp_path):
    from portal.demo.processes import demo_process_env, demo_signal_key

    key = demo_signal_key(tmp_path)
    assert demo_signal_key(tmp_path) == key == demo_signal_key(tmp_path, create=False)
    assert oct((tmp_path / "demo-signal-key").stat().st_mode)[-3:] == "600"
    assert demo_signal_key(tmp_path / "elsewhere", create=False) is None

    env = demo_process_env(
        {"OPERATIONS_SIGNAL_SECRETS": "azure-monitor=a1,generic=mine"},
        addr="127.0.0.1:8000",
        metrics_dir=tmp_path,
        signal_key=key,
    )
    assert env["PORTAL_DEMO"] == "true"
    # the operator's secrets stay; the demo's key is one more generic secret
    assert env["OPERATIONS_SIGNAL_SECRETS"] == f"azure-monitor=a1,generic=mine|{key}"
    plain = demo_process_env({}, addr="127.0.0.1:8000", metrics_dir=tmp_path, signal_key=key)
    assert plain["OPERATIONS_SIGNAL_SECRETS"] == f"generic={key}"


def test_the_demos_processes_get_the_artifactory_stand_in_unless_one_is_set(settings, tmp_path):
    from portal.demo.processes import demo_process_env

    settings.ARTIFACTORY_URL = ""
    assert "ARTIFACTORY_URL" not in demo_process_env({}, addr="a:1", metrics_dir=tmp_path)
    settings.ARTIFACTORY_URL = "http://127.0.0.1:8091/artifactory"
    settings.ARTIFACTORY_TOKEN = "demo-token"
    env = demo_process_env({}, addr="a:1", metrics_dir=tmp_path)
    assert (env["ARTIFACTORY_URL"], env["ARTIFACTORY_TOKEN"]) == (
        "http://127.0.0.1:8091/artifactory",
        "demo-token",
    )
    real = {"ARTIFACTORY_URL": "https://artifactory.example.com/artifactory"}
    env = demo_process_env(real, addr="a:1", metrics_dir=tmp_path)
    assert env["ARTIFACTORY_URL"] == real["ARTIFACTORY_URL"] and "ARTIFACTORY_TOKEN" not in env
