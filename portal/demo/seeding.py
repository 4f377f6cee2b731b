"""What the demo seeds, through each app's own demo data: one user per role, the MLflow
registry mirrored as the source ``central``, the ADO simulator's pipelines, the first approvals
poll and half a year of maturity history. Each step reports on the command's stdout."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from approvals import demo_data as approvals_demo
from maturity import demo_data as maturity_demo
from maturity import services as maturity
from maturity.models import LEVELS, MaturityRecord
from operations import demo_data as operations_demo
from pipelines import demo_data as pipelines_demo
from pipelines.models import AdoProject
from portal import services
from registry import demo_cards as registry_demo_cards
from registry import demo_data as registry_demo
from registry import services as registry
from registry.models import RegistrySource

from .artifacts import artifacts_ready
from .servers import ADO_PAT, DemoAdoSimulator, DemoArtifactory, DemoMlflowServer

CENTRAL_SOURCE = "central"


def seed(
    command,
    *,
    addr: str,
    var_dir: Path,
    mlflow: DemoMlflowServer | None,
    ado: DemoAdoSimulator | None,
    artifactory: DemoArtifactory | None = None,
) -> None:
    """Seed everything, in the order the apps build on each other (the database migrated).

    ``command`` is the management command, whose stdout, stderr and style report progress.
    """
    accounts = seed_users(command, var_dir / "demo-credentials.json")
    print_accounts(command, accounts)
    if mlflow is not None:
        registry_ready(command, mlflow)
    else:
        registry_demo.seed_catalog()
    if ado is not None:
        pipelines_ready(command, ado)
        approvals_ready(command, addr)
    if artifactory is not None and mlflow is not None:
        artifacts_ready(command, mlflow, artifactory, _central_source(mlflow.url))
    operations_ready(command, addr)
    maturity_ready(command, addr)


def seed_users(command, credentials_file: Path) -> list[services.DemoAccount]:
    """One user per role, with the passwords of an earlier run kept in ``credentials_file``."""
    known: dict[str, str] = {}
    if credentials_file.is_file():
        try:
            known = json.loads(credentials_file.read_text())
        except ValueError:
            command.stderr.write(f"Ignoring unreadable {credentials_file}; new passwords follow.")
    accounts = services.demo_users_ensure(passwords=known)
    credentials_file.write_text(json.dumps({a.username: a.password for a in accounts}, indent=2))
    credentials_file.chmod(0o600)
    return accounts


def print_accounts(command, accounts) -> None:
    command.stdout.write("")
    command.stdout.write(
        command.style.MIGRATE_HEADING("Demo users (local accounts, one per role):")
    )
    for account in accounts:
        roles = ", ".join(account.roles)
        command.stdout.write(
            f"  {account.username:<8} password: {account.password:<18} role: {roles}"
        )
    command.stdout.write(f"  (kept in {Path(settings.VAR_DIR) / 'demo-credentials.json'})")
    command.stdout.write("")


def registry_ready(command, mlflow: DemoMlflowServer) -> None:
    """Wait for the server, seed it if it is empty, mirror it as 'central' (full sync)."""
    # mlflow takes seconds to import: only once the server boots in the background
    from mlflow import MlflowClient

    started = time.monotonic()
    mlflow.wait()
    how = "reused from an earlier run" if mlflow.adopted else "started"
    command.stdout.write(
        command.style.SUCCESS(
            f"MLflow server {how} at {mlflow.url} (pid {mlflow.pid}, data in "
            f"{mlflow.workdir}) after {time.monotonic() - started:.1f} s of waiting."
        )
    )
    client = MlflowClient(tracking_uri=mlflow.url)
    if client.search_registered_models(max_results=1):
        command.stdout.write("  it already holds registered models: not seeding it again.")
        registry_demo.seed_catalog()
    else:
        seeded = registry_demo.seed_registry(client)
        command.stdout.write(
            f"  seeded {len(seeded['models_created'])} registered models with "
            f"{seeded['versions_created']} versions (teams: {', '.join(registry_demo.TEAMS)})."
        )
    source = _central_source(mlflow.url)
    result = registry.registry_sync(source=source, full=True)
    if not result.ok:
        raise CommandError(
            f"The first sync of {CENTRAL_SOURCE} failed: {result.error or result.skipped}"
        )
    registry_demo.catalog_owners_from_tags()
    cards = registry_demo_cards.seed_model_cards()
    if cards:
        command.stdout.write(f"  model cards written for {', '.join(cards)}.")
    m, v = result.models, result.versions
    command.stdout.write(
        command.style.SUCCESS(
            f"Synced source '{source.name}' ({result.mode} sync, "
            f"{result.duration_seconds:.2f} s): "
            f"models {m.created} created, {m.updated} updated, {m.deleted} deleted, "
            f"{m.unchanged} unchanged; versions {v.created} created, {v.updated} updated, "
            f"{v.deleted} deleted, {v.unchanged} unchanged; {result.runs_read} runs read."
        )
    )
    command.stdout.write("")


def _central_source(url: str) -> RegistrySource:
    """The demo's MLflow server as the central registry source."""
    source, _ = RegistrySource.objects.update_or_create(
        name=CENTRAL_SOURCE,
        defaults={
            "tracking_uri": url,
            "registry_uri": "",
            "ui_url": url,
            "is_central": True,
            "enabled": True,
        },
        # the demo's registry changes when people try things: mirror it often
        create_defaults={
            "tracking_uri": url,
            "ui_url": url,
            "is_central": True,
            "sync_interval_seconds": 60,
            "full_sync_interval_seconds": 900,
        },
    )
    return source


def pipelines_ready(command, ado: DemoAdoSimulator) -> None:
    """Wait for the simulator (it seeds four weeks of runs), mirror it as project 'demo'."""
    ado.wait()
    command.stdout.write(
        command.style.SUCCESS(
            f"ADO simulator (not Azure DevOps) running at {ado.url} (pid {ado.pid}), "
            "seeded with the demo pipelines and four weeks of runs."
        )
    )
    settings.AZURE_DEVOPS_PAT = ADO_PAT
    project, result = pipelines_demo.mirror_simulator(ado.org_url)
    if not result.ok:
        raise CommandError(f"The first pipelines sync failed: {result.error or result.skipped}")
    command.stdout.write(
        command.style.SUCCESS(
            f"Synced ADO project '{project.name}' ({result.duration_seconds:.2f} s): "
            f"{result.pipelines.created} pipelines, {result.runs.created} runs, "
            f"{result.stages.created} stages created; {result.requests} ADO requests."
        )
    )
    command.stdout.write("")


def approvals_ready(command, addr: str) -> None:
    """The first approvals poll (beat repeats it every minute), so the inbox is full
    when the portal starts: releases wait at QA and PROD for the demo approver."""
    project = AdoProject.objects.get(name=pipelines_demo.PROJECT_NAME)
    result = approvals_demo.first_poll(project)
    if not result.ok:
        raise CommandError(f"The first approvals poll failed: {result.error}")
    qa, prod = approvals_demo.pending_counts(project)
    command.stdout.write(
        command.style.SUCCESS(
            f"Polled the approvals of '{project.name}': {qa} pending at QA, {prod} pending "
            f"at PROD ({result.created - result.imported} new)"
            + (
                f", and {result.imported} decided in ADO earlier for the Decided tab"
                if result.imported
                else ""
            )
            + ". Sign in as alice to decide them at "
            f"http://{addr}/approvals/; notices are printed by the worker (EMAIL_URL)."
        )
    )
    manager = get_user_model().objects.get(username="maya")
    policies, windows = approvals_demo.release_rules_ensure(user=manager)
    if policies or windows:
        command.stdout.write(
            "  Release rules: a PROD policy (a day in QA first, as a warning; a sign-off after "
            f"each PROD deployment) and a freeze window ahead: http://{addr}/approvals/freeze/"
        )
    earlier = approvals_demo.decided_in_earlier_demo(project)
    if earlier:
        database = settings.DATABASES["default"]
        where = (
            f"delete {database['NAME']}"
            if database["ENGINE"].endswith("sqlite3")
            else "empty the portal's database"
        )
        command.stdout.write(
            f"  {earlier} waiting approval(s) of the fresh simulator were decided in an "
            f"earlier demo and stay decided here; to start afresh, stop the demo and {where}."
        )
    command.stdout.write("")


def operations_ready(command, addr: str) -> None:
    """The operations history (operations/demo_data.py): policies, signals of every kind of
    outcome and episodes in every state; and which model runs the whole loop on a signal."""
    written = operations_demo.seed_history()
    if written["written"] or written["trigger_policies"]:
        what = (
            f"wrote {written['written']} part(s) of the operations history "
            f"({written['trigger_policies']} trigger and {written['promotion_policies']} "
            "promotion policies)"
        )
    else:
        what = "the operations history is there from an earlier start"
    command.stdout.write(
        command.style.SUCCESS(
            f"Operations: {what}; {written['episodes']} seeded episodes. Inbox: "
            f"http://{addr}/operations/"
        )
    )
    command.stdout.write(
        f"  Send a drift signal for {operations_demo.LOOP_MODEL} to watch the loop (training, "
        "new MLflow version, evaluation, release waiting at QA): "
        f"manage.py send_signal {operations_demo.LOOP_MODEL} --url http://{addr}, or the "
        "inbox's demo button (admins: oscar)."
    )
    command.stdout.write("")


def maturity_ready(command, addr: str) -> None:
    """Half a year of maturity history on the first start (maturity/demo_data.py), the
    demo monitoring job's clean report, then an assessment of what the demo holds now, and
    this week's snapshot."""
    maturity_demo.monitoring_report()  # fraud-detector's monitoring job: level 5's heartbeat
    maturity_demo.seed_history()
    stats = maturity.models_assess(made_by="assessment at demo start")
    maturity.snapshot_take()
    levels = ", ".join(f"L{level} {stats.levels.get(level, 0)}" for level in LEVELS)
    if stats.levels.get(0):
        levels += f", below L1 {stats.levels[0]}"
    first = MaturityRecord.objects.order_by("created_at").values_list("created_at", flat=True)
    oldest = first.first()
    weeks = round((time.time() - oldest.timestamp()) / (7 * 86400)) if oldest else 0
    command.stdout.write(
        command.style.SUCCESS(
            f"Assessed the maturity of {stats.assessed} model"
            f"{'' if stats.assessed == 1 else 's'}: {levels} ({weeks} weeks of history). "
            f"Managers: http://{addr}/maturity/"
        )
    )
    command.stdout.write("")
