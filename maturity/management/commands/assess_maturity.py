"""manage.py assess_maturity [--model NAME ...] [--snapshot] [--backfill-weeks N]

Assess the maturity of every catalog model (or the named ones) now, the way the nightly job
does (``services.models_assess``): a record is appended only for a model whose level or a
criterion's result changed. ``--snapshot`` also refreshes this week's portfolio snapshot and
prunes old ones; ``--backfill-weeks`` fills in missing weekly snapshots from the records.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from maturity import services
from maturity.models import LEVELS, ModelMaturity
from registry.models import CatalogModel

MADE_BY = "assessment by manage.py assess_maturity"
LISTED = 20  # changed models named in the output; the rest are counted


class Command(BaseCommand):
    help = (
        "Assess the maturity of all (or the named) catalog models now and print what changed; "
        "optionally refresh this week's snapshot and fill in missing weekly snapshots."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--model",
            dest="models",
            action="extend",
            nargs="+",
            default=[],
            metavar="NAME",
            help="catalog model name (repeat or list several; default: every model)",
        )
        parser.add_argument(
            "--snapshot",
            action="store_true",
            help="also refresh this week's snapshot and prune snapshots past retention",
        )
        parser.add_argument(
            "--backfill-weeks",
            type=int,
            default=None,
            metavar="N",
            help="fill in the missing weekly snapshots of the last N weeks from the records",
        )

    def handle(self, *args, models=(), snapshot=False, backfill_weeks=None, **options):
        if backfill_weeks is not None and backfill_weeks < 1:
            raise CommandError("--backfill-weeks must be 1 or more.")
        ids = None
        if models:
            found = dict(CatalogModel.objects.filter(name__in=models).values_list("name", "pk"))
            unknown = [name for name in dict.fromkeys(models) if name not in found]
            if unknown:
                raise CommandError(
                    f"No catalog model named {', '.join(repr(n) for n in unknown)}; "
                    "give names as the catalog spells them (the model pages show them)."
                )
            ids = list(found.values())

        stats = services.models_assess(catalog_model_ids=ids, made_by=MADE_BY)
        self.stdout.write(
            f"Assessed {stats.assessed} model{'' if stats.assessed == 1 else 's'}: "
            f"{stats.written} written (level or a result changed), {stats.unchanged} unchanged."
        )
        levels = ", ".join(f"L{level} {stats.levels.get(level, 0)}" for level in LEVELS)
        if stats.levels.get(0):
            levels += f", below L1 {stats.levels[0]}"
        self.stdout.write(f"  models per level: {levels}")
        changed = (
            ModelMaturity.objects.filter(pk__in=stats.written_ids)
            .select_related("catalog_model")
            .order_by("catalog_model__name")
        )
        for status in changed[:LISTED]:
            level = f"L{status.assessed_level}" if status.assessed_level else "below L1"
            self.stdout.write(f"  written: {status.catalog_model.name} at {level}")
        if stats.written > LISTED:
            self.stdout.write(f"  … and {stats.written - LISTED} more written.")

        if snapshot:
            taken = services.snapshot_take()
            pruned = services.snapshots_prune()
            self.stdout.write(
                f"Snapshot of this week refreshed: {taken} models ({pruned} old rows pruned)."
            )
        if backfill_weeks is not None:
            filled = services.snapshots_backfill(weeks=backfill_weeks)
            self.stdout.write(
                f"Backfilled {filled} missing snapshot rows of the last {backfill_weeks} weeks."
            )
        self.stdout.write(self.style.SUCCESS("Maturity assessment done."))
