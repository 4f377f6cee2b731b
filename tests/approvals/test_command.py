"""manage.py sync_approvals against the ADO simulator: a summary per project, an unknown
project named, an unreachable ADO reported with exit code 1."""

import os
import socket
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from approvals.models import ApprovalRequest, ApprovalStatus, ApprovalSync
from pipelines.models import AdoProject
from tests.approvals.conftest import wait_at

pytestmark = pytest.mark.django_db


def sync(*args) -> str:
    out = StringIO()
    call_command("sync_approvals", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def waiting_run(sim, project, fraud, release):
    """A release of fraud-detector v2 waiting at QA in the simulator (not mirrored yet): the
    approval's id."""
    run = sim.queue_run(
        release, template_parameters={"modelName": "fraud-detector", "modelVersion": "2"}
    )
    return wait_at(sim, run, "QA")


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_command_mirrors_approvals_and_prints_a_summary(sim, project, waiting_run):
    approval_id = waiting_run
    out = sync()
    assert f"Project mlops ({project.base_url})" in out
    assert "approvals  created 1, updated 0, unchanged 0" in out
    assert "approvals sync done" in out
    approval = ApprovalRequest.objects.get(ado_id=approval_id)
    assert approval.environment == "QA" and approval.status == ApprovalStatus.PENDING
    assert approval.catalog_model.name == "fraud-detector"
    assert ApprovalSync.objects.get(project=project).last_succeeded_at is not None
    # again: nothing new
    assert "approvals  created 0, updated 0, unchanged 1" in sync("--project", "mlops")
    # decided in ADO itself: the next run reflects it
    sim.decide(approval_id, "approved", "bob@example.com", "QA ok in ADO")
    out = sync()
    assert "closed in ADO (decided, canceled, timed out…) 1" in out
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.decided_in == "ado"


def test_only_the_named_project_or_the_enabled_ones_are_polled(sim, project, waiting_run):
    AdoProject.objects.create(
        name="paused", organization_url=f"http://127.0.0.1:{closed_port()}/x", enabled=False
    )
    out = sync()
    assert "Project mlops" in out and "paused" not in out
    with pytest.raises(CommandError) as refused:
        sync("--project", "paused", "--max-retries", "0")  # named: polled even if disabled
    assert "did not complete for: paused" in str(refused.value)


def test_an_unknown_project_is_named(project):
    with pytest.raises(CommandError) as refused:
        sync("--project", "nope")
    assert str(refused.value) == "No ADO project named 'nope' (known: mlops)."
    assert refused.value.returncode == 1


def test_without_an_enabled_project_it_says_what_to_do(db):
    with pytest.raises(CommandError, match="No enabled ADO project: add one in the admin"):
        sync()


def test_an_unreachable_ado_is_reported_and_the_others_still_sync(sim, project, waiting_run):
    AdoProject.objects.create(
        name="offline",
        organization_url=f"http://127.0.0.1:{closed_port()}/simorg",
        project="MLOps",
    )
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("sync_approvals", "--max-retries", "0", stdout=out)
    assert str(refused.value) == "Approvals sync did not complete for: offline"
    assert refused.value.returncode == 1
    text = out.getvalue()
    offline_part = text.split("Project offline", 1)[1].split("Project mlops", 1)[0]
    assert "failed: ADO connection failed" in offline_part
    assert "(the next sync catches up)" in offline_part
    assert "approvals  created 1" in text.split("Project mlops", 1)[1]
    failed = ApprovalSync.objects.get(project__name="offline")
    assert failed.last_error_at is not None and "connection failed" in failed.last_error


def test_bad_credentials_are_reported(sim, project, settings):
    settings.AZURE_DEVOPS_PAT = "not-the-pat"
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("sync_approvals", stdout=out)
    assert "failed: 401" in out.getvalue()


def test_a_negative_retry_count_is_refused(project):
    with pytest.raises(CommandError, match="--max-retries must be 0 or more"):
        sync("--max-retries", "-1")


def test_manage_py_exits_with_1_and_the_message(db):
    """The real process: a CommandError is exit code 1 with the message on stderr."""
    test_db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        "TEST_DATABASE_URL": (
            f"postgres://{test_db['USER']}@{test_db['HOST']}:{test_db['PORT']}/"
            f"{connection.settings_dict['NAME']}"
        ),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "sync_approvals", "--project", "nope"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "CommandError: No ADO project named 'nope'" in done.stderr
