"""manage.py sync_approvals [--project NAME] [--max-retries N] [--history]: poll ADO's
approvals now.

The same poll beat runs every minute (``services.project_approvals_sync``): pending approvals
with their steps, then the ones the portal still holds open, to learn how they ended.
``--history`` also imports what ADO decided in the last APPROVALS_HISTORY_DAYS days, as a
project's first sync does (for a project first synced before the portal imported history).
"""

from django.core.management.base import BaseCommand, CommandError

from approvals import client as ado
from approvals import services
from pipelines.models import AdoProject


class Command(BaseCommand):
    help = "Poll the approvals of one or all enabled ADO projects and print what changed."

    def add_arguments(self, parser):
        parser.add_argument(
            "--project", help="name of the ADO project (default: every enabled one)"
        )
        parser.add_argument(
            "--max-retries",
            type=int,
            default=None,
            help="retries of a failed ADO request before the project counts as failed "
            "(default: the client's; 0 fails fast when ADO is unreachable)",
        )
        parser.add_argument(
            "--history",
            action="store_true",
            help="also import the approvals ADO decided in the last APPROVALS_HISTORY_DAYS "
            "days (a project's first sync does this by itself)",
        )

    def handle(self, *args, project=None, max_retries=None, history=False, **options):
        if max_retries is not None and max_retries < 0:
            raise CommandError("--max-retries must be 0 or more.")
        projects = AdoProject.objects.filter(enabled=True)
        if project:
            projects = AdoProject.objects.filter(name=project)
            if not projects.exists():
                known = ", ".join(AdoProject.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No ADO project named '{project}' (known: {known}).")
        if not projects.exists():
            raise CommandError("No enabled ADO project: add one in the admin first.")
        failed = []
        for ado_project in projects.order_by("name"):
            self.stdout.write(
                self.style.MIGRATE_HEADING(f"Project {ado_project.name} ({ado_project.base_url})")
            )
            client = ado.sync_client(ado_project)
            if max_retries is not None:
                client.max_retries = max_retries
            result = services.project_approvals_sync(
                project=ado_project, client=client, history=history
            )
            self._summary(result)
            if not result.ok:
                failed.append(ado_project.name)
        if failed:
            raise CommandError(f"Approvals sync did not complete for: {', '.join(failed)}")

    def _summary(self, result) -> None:
        if result.error:
            self.stdout.write(
                self.style.ERROR(f"  failed: {result.error} (the next sync catches up)")
            )
            return
        self.stdout.write(
            f"  approvals  created {result.created}, updated {result.updated}, "
            f"unchanged {result.unchanged}"
        )
        self.stdout.write(f"  closed in ADO (decided, canceled, timed out…) {result.closed_in_ado}")
        if result.imported:
            self.stdout.write(f"  decided in ADO before the first sync, imported {result.imported}")
        self.stdout.write(self.style.SUCCESS("  approvals sync done"))
