"""``manage.py run_ado_simulator``: run the ADO simulator standalone until SIGTERM / Ctrl-C.

Dev tooling beside ``demo`` (which starts the simulator through this command): no app imports
the simulator, only the tests, bench/ and the demo here in portal/.
"""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand

from ado_simulator import cli


class Command(BaseCommand):
    help = (
        "Run the ADO simulator (a stand-in for the Azure DevOps REST API, not Azure DevOps) on "
        "127.0.0.1:8090 until SIGTERM or Ctrl-C. Script it through /_simulator/... "
        "(docs/ado-simulator.md)."
    )
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        cli.add_arguments(parser)

    def handle(self, *args, **options):
        logger = logging.getLogger("ado_simulator")
        logger.setLevel(logging.INFO)
        if not logging.getLogger().handlers and not logger.handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        cli.serve(cli.build(options), options.get("speed") or 0.0)
