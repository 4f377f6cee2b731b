"""manage.py sync_pipelines [--project NAME] [--full]: sync ADO pipelines now, with progress."""

from django.core.management.base import BaseCommand, CommandError

from core.progress import ProgressBar
from pipelines import services
from pipelines.models import AdoProject


class Command(BaseCommand):
    help = "Sync the pipelines, runs and stages of one or all enabled ADO projects."

    def add_arguments(self, parser):
        parser.add_argument(
            "--project", help="name of the ADO project (default: every enabled one)"
        )
        parser.add_argument(
            "--full", action="store_true", help="re-read every run, not just changes"
        )

    def handle(self, *args, project=None, full=False, **options):
        projects = AdoProject.objects.filter(enabled=True)
        if project:
            projects = AdoProject.objects.filter(name=project)
            if not projects.exists():
                known = ", ".join(AdoProject.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No ADO project named '{project}' (known: {known}).")
        if not projects.exists():
            raise CommandError("No enabled ADO project: add one in the admin first.")
        failed = []
        for ado_project in projects:
            self.stdout.write(
                self.style.MIGRATE_HEADING(f"Project {ado_project.name} ({ado_project.base_url})")
            )
            progress = ProgressBar(self)
            result = services.project_sync(project=ado_project, full=full, progress=progress)
            progress.clear()
            self._summary(result)
            if not result.ok:
                failed.append(ado_project.name)
        if failed:
            raise CommandError(f"Sync did not complete for: {', '.join(failed)}")

    def _summary(self, result) -> None:
        if result.skipped:
            self.stdout.write(self.style.WARNING(f"  skipped: {result.skipped}"))
            return
        if result.error:
            self.stdout.write(
                self.style.ERROR(f"  failed: {result.error} (the next sync catches up)")
            )
            return
        for label, c in (
            ("pipelines", result.pipelines),
            ("runs", result.runs),
            ("stages", result.stages),
        ):
            self.stdout.write(
                f"  {label:<10} created {c.created}, updated {c.updated}, unchanged {c.unchanged}"
            )
        self.stdout.write(
            f"  timelines read {result.timelines_read}, ADO requests {result.requests}"
        )
        self.stdout.write(
            self.style.SUCCESS(f"  {result.mode} sync done in {result.duration_seconds:.2f} s")
        )
