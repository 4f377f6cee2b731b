"""Seed the embedded demo and run web, worker, beat and a local MLflow server until Ctrl-C.

The MLflow server (SQLite under var/mlflow, loopback, port 5000 unless --mlflow-port) is started
first, in its own session, so it boots while the database migrates; it is seeded with the demo
models only when it holds no registered model yet, mirrored as the source ``central`` by a full
sync, and stopped by its pid with the other processes. A server an earlier demo left running on
the same port and folder (its pid is in var/mlflow/server.pid) is reused.

The pieces live in portal/demo/: servers (MLflow, the ADO simulator), processes (web, worker
and beat) and seeding (each app's demo data).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from portal.demo import seeding
from portal.demo.processes import (
    demo_commands,
    demo_process_env,
    run_processes,
    wait_until_portal_answers,
)
from portal.demo.servers import (
    DEFAULT_ADO_PORT,
    DEFAULT_ARTIFACTORY_PORT,
    DEFAULT_MLFLOW_PORT,
    DemoAdoSimulator,
    DemoArtifactory,
    DemoMlflowServer,
)

# demo_commands, demo_process_env and wait_until_portal_answers: the tests start the demo's
# web process the way the demo does, by these names.
__all__ = ["Command", "demo_commands", "demo_process_env", "wait_until_portal_answers"]


class Command(BaseCommand):
    help = (
        "Migrate, create one demo user per role (printing their passwords), start a local MLflow "
        "server seeded with demo models and mirrored as the source 'central', and run the web "
        "server, a Celery worker and Celery beat together until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="host:port of the web server")
        parser.add_argument(
            "--seed-only",
            action="store_true",
            help="migrate, create users, seed and sync MLflow, stop the MLflow server, then exit",
        )
        parser.add_argument(
            "--mlflow-port",
            type=int,
            default=DEFAULT_MLFLOW_PORT,
            help=f"port of the local MLflow server on 127.0.0.1 (default {DEFAULT_MLFLOW_PORT})",
        )
        parser.add_argument(
            "--no-mlflow",
            action="store_true",
            help="do not start, seed or sync a local MLflow server",
        )
        parser.add_argument(
            "--ado-port",
            type=int,
            default=DEFAULT_ADO_PORT,
            help=f"port of the ADO simulator on 127.0.0.1 (default {DEFAULT_ADO_PORT})",
        )
        parser.add_argument(
            "--no-ado",
            action="store_true",
            help="do not start the ADO simulator or sync demo pipelines",
        )
        parser.add_argument(
            "--artifactory-port",
            type=int,
            default=DEFAULT_ARTIFACTORY_PORT,
            help="port of the Artifactory stand-in on 127.0.0.1 "
            f"(default {DEFAULT_ARTIFACTORY_PORT})",
        )
        parser.add_argument(
            "--no-artifactory",
            action="store_true",
            help="do not start the Artifactory stand-in (also when ARTIFACTORY_URL is set)",
        )

    def handle(
        self,
        *args,
        addr: str,
        seed_only: bool,
        mlflow_port: int,
        no_mlflow: bool,
        ado_port: int = DEFAULT_ADO_PORT,
        no_ado: bool = False,
        artifactory_port: int = DEFAULT_ARTIFACTORY_PORT,
        no_artifactory: bool = False,
        **options,
    ):
        if not settings.DEBUG:
            raise CommandError(
                "The demo runs only with the local settings (DJANGO_SETTINGS_MODULE="
                "portal.settings.local); it creates accounts with printed passwords."
            )
        var_dir = Path(settings.VAR_DIR)
        var_dir.mkdir(parents=True, exist_ok=True)
        # Boots in the background (it takes seconds) while the database migrates.
        mlflow = None if no_mlflow else DemoMlflowServer(var_dir / "mlflow", mlflow_port).boot()
        # Live training runs register their model versions in the demo's MLflow.
        mlflow_url = mlflow.url if mlflow else None
        ado = None if no_ado else DemoAdoSimulator(var_dir, ado_port, addr, mlflow_url).boot()
        # A real Artifactory the environment names is left alone.
        artifactory = None
        if not (no_artifactory or settings.ARTIFACTORY_URL or mlflow is None):
            artifactory = DemoArtifactory(var_dir, artifactory_port).boot()
        try:
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write(self.style.SUCCESS("Database migrated."))
            seeding.seed(
                self, addr=addr, var_dir=var_dir, mlflow=mlflow, ado=ado, artifactory=artifactory
            )
            if seed_only:
                return
            stopped_cleanly = run_processes(self, addr, var_dir, mlflow, ado)
        except KeyboardInterrupt:  # Ctrl-C before web, worker and beat ran
            raise CommandError("Interrupted while setting up the demo.", returncode=130) from None
        finally:
            if artifactory is not None:
                artifactory.stop()
                self.stdout.write(f"Artifactory stand-in (pid {artifactory.pid}) stopped.")
            if ado is not None:
                ado.stop()
                self.stdout.write(f"ADO simulator (pid {ado.pid}) stopped.")
            if mlflow is not None:
                mlflow.stop()
                self.stdout.write(f"MLflow server (pid {mlflow.pid}) stopped.")
        if not stopped_cleanly:
            raise CommandError("The demo stopped because one of its processes exited.")
        self.stdout.write("Demo stopped.")
