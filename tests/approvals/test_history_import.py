"""A project's first approvals sync also imports what ADO decided in the last 90 days, so the
"Decided" tab starts with the project's history (marked as decided in ADO); later syncs do not
import it again. Against the ADO simulator over real HTTP, its clock started 100 days ago."""

import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from ado_simulator.auth import Identity
from approvals import selectors
from approvals.models import ApprovalRequest, ApprovalStatus, AuditEvent, DecidedIn
from tests.approvals import conftest as approvals_fixtures
from tests.approvals import test_pages
from tests.approvals.conftest import mirror, wait_at

# The simulator's clock starts 100 days ago, so ADO has a history older than 90 days too.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.parametrize("sim", [timedelta(days=100)], indirect=True),
]

project = approvals_fixtures.project
approver = test_pages.approver
approver_client = test_pages.approver_client
ado_client = approvals_fixtures.ado_client
release = approvals_fixtures.release

OLGA = Identity.user("olga@example.com", "Olga Approver")
PARAMETERS = {"modelName": "fraud-detector", "modelVersion": "2", "deployTarget": "aks"}


def _decided_in_ado(sim, release, status: str, comment: str) -> str:
    run = sim.queue_run(release, template_parameters=PARAMETERS)
    approval_id = wait_at(sim, run, "QA")
    sim.decide(approval_id, status, OLGA, comment)
    sim.cancel_run(run.id)  # no later stage waits for an approval of its own
    return approval_id


@pytest.fixture
def history(sim, release):
    """ADO's history: one approval decided 100 days ago, two in the last two weeks, and one
    still pending now."""
    too_old = _decided_in_ado(sim, release, "approved", "long ago")
    sim.advance_to(datetime.now(UTC) - timedelta(days=14))
    approved = _decided_in_ado(sim, release, "approved", "QA looked fine")
    sim.advance_to(datetime.now(UTC) - timedelta(days=3))
    rejected = _decided_in_ado(sim, release, "rejected", "drift too high")
    sim.advance_to(datetime.now(UTC) - timedelta(hours=2))
    pending = wait_at(sim, sim.queue_run(release, template_parameters=PARAMETERS), "QA")
    return {"too_old": too_old, "approved": approved, "rejected": rejected, "pending": pending}


def _decided_tab() -> list[ApprovalRequest]:
    return list(selectors.approval_list(filters=selectors.ApprovalFilters(tab="decided")))


def test_the_first_sync_imports_the_last_90_days_decided_in_ado(sim, project, ado_client, history):
    before = sim.request_count
    mirror(project, ado_client)

    decided = {a.ado_id: a for a in _decided_tab()}
    assert set(decided) == {history["approved"], history["rejected"]}  # not the 100-day-old one
    rejected = decided[history["rejected"]]
    assert rejected.status == rejected.ado_status == ApprovalStatus.REJECTED
    assert rejected.decided_in == DecidedIn.ADO
    assert rejected.decided_by == "Olga Approver"
    assert timezone.now() - rejected.decided_at < timedelta(days=4)
    assert rejected.steps[0]["comment"] == "drift too high"
    assert rejected.environment == "QA" and rejected.run is not None
    assert ApprovalRequest.objects.get(ado_id=history["pending"]).status == "pending"
    assert not ApprovalRequest.objects.filter(ado_id=history["too_old"]).exists()
    stats = project.approval_sync.last_stats
    assert stats["imported"] == 2

    history_reads = [
        r
        for r in sim.request_log(before)
        if r["path"].endswith("/_apis/pipelines/approvals") and "state" not in r["query"]
    ]
    assert len(history_reads) == 1 and history_reads[0]["query"]["$expand"] == "steps"


def test_the_decided_tab_counts_the_approvals_ado_recorded_for_imported_rows(
    sim, project, ado_client, history, approver_client
):
    """An imported approval has no portal decision: its Approvals column counts the steps
    ADO recorded approved ("1 / 1" for Olga's approval), not the portal's ("0 / 1")."""
    from django.urls import reverse

    from tests.approvals.test_pages import _soup

    mirror(project, ado_client)
    approved = ApprovalRequest.objects.get(ado_id=history["approved"])
    rejected = ApprovalRequest.objects.get(ado_id=history["rejected"])
    assert not approved.decisions.exists() and approved.decided_in == DecidedIn.ADO

    page = _soup(approver_client.get(reverse("approvals:inbox"), {"tab": "decided"}))
    counts = {
        int(row["data-approval"]): row.select_one("[data-testid=approvals-count]").get_text()
        for row in page.select("[data-testid=approval-table] tbody tr")
    }
    assert counts == {approved.pk: "1 / 1", rejected.pk: "0 / 1"}
    detail = _soup(approver_client.get(reverse("approvals:detail", kwargs={"pk": approved.pk})))
    assert "1 of 1 required" in detail.select_one("[data-testid=approvers]").get_text()
    listed = approver_client.get("/api/v1/approvals/", {"tab": "decided"}).json()["results"]
    assert {r["id"]: r["approvals_so_far"] for r in listed} == {approved.pk: 1, rejected.pk: 0}


def test_syncing_again_imports_nothing_and_changes_nothing(sim, project, ado_client, history):
    mirror(project, ado_client)
    rows = sorted(ApprovalRequest.objects.values_list("ado_id", "status", "decided_at"))
    audit_rows = AuditEvent.objects.count()

    before = sim.request_count
    mirror(project, ado_client)
    assert sorted(ApprovalRequest.objects.values_list("ado_id", "status", "decided_at")) == rows
    assert AuditEvent.objects.count() == audit_rows
    project.approval_sync.refresh_from_db()
    assert project.approval_sync.last_stats["imported"] == 0
    assert all(
        r["query"].get("state") == "pending"
        for r in sim.request_log(before)
        if r["path"].endswith("/_apis/pipelines/approvals") and "approvalIds" not in r["query"]
    )


def test_a_failed_first_sync_imports_the_history_on_the_next_one(sim, project, ado_client, history):
    from approvals import services

    sim.fail_next(1, 400, path="/_apis/pipelines/approvals")
    failed = services.project_approvals_sync(project=project, client=ado_client)
    assert not failed.ok
    mirror(project, ado_client)
    assert {a.ado_id for a in _decided_tab()} == {history["approved"], history["rejected"]}


def test_sync_approvals_history_imports_it_for_a_project_synced_before(
    sim, project, ado_client, history
):
    """A project whose first sync happened before the portal imported history gets it from
    ``sync_approvals --history``; a plain sync never does."""
    from django.core.management import call_command

    from approvals.models import ApprovalSync

    ApprovalSync.objects.create(project=project, last_succeeded_at=timezone.now())
    mirror(project, ado_client)
    assert _decided_tab() == []

    out = io.StringIO()
    call_command("sync_approvals", "--project", project.name, "--history", stdout=out)
    assert {a.ado_id for a in _decided_tab()} == {history["approved"], history["rejected"]}
    assert "imported 2" in out.getvalue()
