"""Create or update, from environment variables, what a fresh production start needs to mirror
anything: the central MLflow registry source (``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI``),
an optional Data Discovery source (``DATA_DISCOVERY_MLFLOW_TRACKING_URI``,
``DATA_DISCOVERY_MLFLOW_REGISTRY_URI``) and the ADO project (``AZURE_DEVOPS_ORG_URL``,
``AZURE_DEVOPS_PROJECT``), each with its beat schedule.

Idempotent: compose's and Kubernetes' migrate step runs it on every start; a second run
changes nothing. Rows made in the admin are never edited or deleted. A variable that is set
but unusable stops it before anything is written, with a line naming the variable, exit 1.
Credentials (``AZURE_DEVOPS_PAT``, ``ENTRA_*``) stay in the settings, never in the database.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from core.environment import EnvironmentInvalid
from portal import services


class Command(BaseCommand):
    help = (
        "Create or update the registry sources and the ADO project the environment declares "
        "(MLFLOW_*, DATA_DISCOVERY_MLFLOW_*, AZURE_DEVOPS_*); idempotent, leaves admin rows alone."
    )

    def handle(self, *args, **options):
        try:
            outcomes = services.environment_bootstrap()
        except EnvironmentInvalid as error:
            # CommandError: one message on stderr and exit code 1, no traceback.
            raise CommandError(
                "The environment is not usable, nothing was changed:\n  "
                + "\n  ".join(error.problems),
                returncode=1,
            ) from None
        for outcome in outcomes:
            self.stdout.write(f"bootstrap_from_env: {outcome}")
