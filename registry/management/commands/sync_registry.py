"""manage.py sync_registry [--source NAME] [--full]: sync MLflow registries now, with progress."""

import sys

from django.core.management.base import BaseCommand, CommandError

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
            result = services.registry_sync(source=src, full=full, progress=self._progress)
            self._clear_line()
            self._summary(result)
            if not result.ok:
                failed.append(src.name)
        if failed:
            raise CommandError(f"Sync did not complete for: {', '.join(failed)}")

    def _progress(self, stage: str, done: int, total: int | None) -> None:
        stream = self.stderr._out if hasattr(self.stderr, "_out") else sys.stderr
        if total:
            width = 30
            filled = int(width * min(done, total) / total)
            bar = "#" * filled + "-" * (width - filled)
            text = f"  {stage:<9} [{bar}] {done}/{total}"
        else:
            text = f"  {stage:<9} {done} read..."
        if stream.isatty():
            stream.write("\r" + text.ljust(70))
        else:
            stream.write(text + "\n")
        stream.flush()

    def _clear_line(self) -> None:
        stream = self.stderr._out if hasattr(self.stderr, "_out") else sys.stderr
        if stream.isatty():
            stream.write("\r" + " " * 70 + "\r")

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
        self.stdout.write(
            self.style.SUCCESS(f"  {result.mode} sync done in {result.duration_seconds:.2f} s")
        )
