"""manage.py sync_registry [--source NAME] [--full]: sync MLflow registries now, with progress."""

from django.core.management.base import BaseCommand, CommandError

from core.progress import ProgressBar
from registry import services
from registry.models import RegistrySource


class Command(BaseCommand):
    help = "Sync the mirror of one or all enabled MLflow registry sources, showing progress."

    def add_arguments(self, parser):
        parser.add_argument("--source", help="name of the source (default: every enabled one)")
        parser.add_argument(
            "--full", action="store_true", help="full sweep: re-read everything, mark deletions"
        )

    def handle(self, *args, source=None, full=False, **options):
        sources = RegistrySource.objects.filter(enabled=True)
        if source:
            sources = RegistrySource.objects.filter(name=source)
            if not sources.exists():
                known = ", ".join(RegistrySource.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No registry source named '{source}' (known: {known}).")
        if not sources.exists():
            raise CommandError("No enabled registry source: add one in the admin first.")
        failed = []
        for src in sources:
            self.stdout.write(self.style.MIGRATE_HEADING(f"Source {src.name} ({src.tracking_uri})"))
            progress = ProgressBar(self)
            result = services.registry_sync(source=src, full=full, progress=progress)
            progress.clear()
            self._summary(result)
            if not result.ok:
                failed.append(src.name)
        if failed:
            raise CommandError(f"Sync did not complete for: {', '.join(failed)}")

    def _summary(self, result) -> None:
        if result.skipped:
            self.stdout.write(self.style.WARNING(f"  skipped: {result.skipped}"))
            return
        if result.error:
            self.stdout.write(
                self.style.ERROR(f"  failed: {result.error} (the mirror is unchanged)")
            )
            return
        for label, counts in (("models", result.models), ("versions", result.versions)):
            c = counts
            self.stdout.write(
                f"  {label:<9} created {c.created}, updated {c.updated}, deleted {c.deleted}, "
                f"unchanged {c.unchanged}"
            )
        runs = f", {result.run_errors} unreadable" if result.run_errors else ""
        self.stdout.write(f"  runs read {result.runs_read}{runs}")
        self.stdout.write(f"  history  {result.events} events recorded")
        self.stdout.write(
            self.style.SUCCESS(f"  {result.mode} sync done in {result.duration_seconds:.2f} s")
        )
