"""docker-compose.yml is valid Compose, and the README's service table says what it runs.

Needs Debian's docker-compose package (`make browser-deps` installs it) for its Compose
Specification schema and its `config` command; no Docker engine and no database.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
README = ROOT / "README.md"
DEBIAN_SCHEMA = Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")
WORKERS = ("worker-deliveries", "worker-syncs", "worker-maintenance")
PORTAL_SERVICES = ("web", *WORKERS, "beat", "migrate")
# Services that run until stopped; `migrate` is one-shot.
LONG_RUNNING = ("web", *WORKERS, "beat", "postgres", "redis", "mlflow")
TABLE_HEADER = "| service | command | environment |"
# Values for the variables compose requires with ${VAR:?message}.
REQUIRED_ENV = {
    "DJANGO_SECRET_KEY": "compose-config-check-" + "x" * 40,
    "DJANGO_ALLOWED_HOSTS": "portal.example.com",
    "POSTGRES_PASSWORD": "compose-config-check",
}
INSTALL_HINT = (
    "Debian's docker-compose package is needed to check docker-compose.yml: run "
    "`make browser-deps` (or `sudo apt-get install docker-compose`)."
)
# Compose durations are Go durations: "1m30s", "10s", "500ms".
GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


def _apt_installable() -> bool:
    return shutil.which("apt-get") is not None or shutil.which("apt") is not None


def _schema_path() -> Path:
    if DEBIAN_SCHEMA.is_file():
        return DEBIAN_SCHEMA
    if shutil.which("dpkg"):
        listed = subprocess.run(
            ["dpkg", "-L", "docker-compose"], capture_output=True, text=True, check=False
        )
        for line in listed.stdout.splitlines():
            if line.endswith("/compose_spec.json"):
                return Path(line)
    if not _apt_installable():
        pytest.skip("no Compose schema and no apt to install docker-compose with")
    pytest.fail(f"Compose Specification schema not found at {DEBIAN_SCHEMA}. {INSTALL_HINT}")


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found:
        return found
    if not _apt_installable():
        pytest.skip("no docker-compose and no apt to install it with")
    pytest.fail(f"`docker-compose` is not on PATH. {INSTALL_HINT}")


@pytest.fixture(scope="module")
def compose() -> dict:
    with COMPOSE_FILE.open() as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def command_string(service: dict) -> str | None:
    command = service.get("command")
    if command is None:
        return None
    return " ".join(str(part) for part in command) if isinstance(command, list) else command


def environment_names(service: dict) -> list[str]:
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return list(environment)
    return [item.split("=", 1)[0] for item in environment]


def readme_table() -> dict[str, tuple[str | None, list[str]]]:
    """The rows of the README's service table: {service: (command, [env var names])}."""
    lines = README.read_text().splitlines()
    assert TABLE_HEADER in lines, f"README.md has no table with header {TABLE_HEADER!r}"
    start = lines.index(TABLE_HEADER)
    assert re.fullmatch(r"\|(\s*:?-+:?\s*\|){3}", lines[start + 1]), "table separator row"
    rows: dict[str, tuple[str | None, list[str]]] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"README table row does not have 3 cells: {line!r}"
        name, command_cell, env_cell = cells
        assert name not in rows, f"service {name!r} is listed twice in the README table"
        if command_cell == "—":
            command = None
        else:
            match = re.fullmatch(r"`([^`]+)`", command_cell)
            assert match, f"README command of {name!r} is not one string in backticks"
            command = match.group(1)
        if env_cell == "—":
            names = []
        else:
            names = []
            for item in env_cell.split(","):
                match = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_]*)`", item.strip())
                assert match, f"README environment of {name!r}: {item.strip()!r}"
                names.append(match.group(1))
        rows[name] = (command, names)
    return rows


def test_compose_file_matches_the_compose_specification_schema(compose):
    import json

    schema = json.loads(_schema_path().read_text())
    format_checker = jsonschema.FormatChecker()

    @format_checker.checks("duration")
    def _is_go_duration(value) -> bool:
        return not isinstance(value, str) or bool(GO_DURATION.match(value))

    # The schema names draft 2019-09 by an old URL that jsonschema does not recognise.
    assert "2019-09" in schema["$schema"]
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema, format_checker=format_checker)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )
    assert "version" not in compose, "the Compose Specification has no top-level version"


def test_docker_compose_config_accepts_the_file():
    env = {**os.environ, **REQUIRED_ENV}
    result = subprocess.run(
        [_docker_compose(), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"


@pytest.mark.parametrize("variable", sorted(REQUIRED_ENV))
def test_docker_compose_refuses_to_start_without_a_required_variable(variable):
    env = {**os.environ, **REQUIRED_ENV}
    del env[variable]
    result = subprocess.run(
        [_docker_compose(), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert variable in result.stderr


def test_readme_documents_every_service_and_no_other(services):
    assert sorted(readme_table()) == sorted(services)


@pytest.mark.parametrize(
    "name", ["migrate", "web", *WORKERS, "beat", "postgres", "redis", "mlflow"]
)
def test_readme_row_matches_the_compose_service(services, name):
    assert name in services, f"docker-compose.yml has no service {name!r}"
    rows = readme_table()
    assert name in rows, f"README table has no row for {name!r}"
    command, env_names = rows[name]
    assert command == command_string(services[name]), f"README command of {name!r}"
    assert env_names == environment_names(services[name]), f"README environment of {name!r}"


def test_portal_services_share_one_image_and_environment(services):
    builds = {repr(services[name].get("build")) for name in PORTAL_SERVICES}
    images = {services[name].get("image") for name in PORTAL_SERVICES}
    assert len(builds) == 1 and None not in (services[n].get("build") for n in PORTAL_SERVICES)
    assert len(images) == 1
    assert services["web"]["build"]["dockerfile"] == "Dockerfile"
    environment = environment_names(services["migrate"])
    for name in PORTAL_SERVICES:
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "portal.settings.production"
        assert set(environment) <= set(env), f"{name} lacks part of the shared environment"
        for required in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"):
            assert re.fullmatch(rf"\$\{{{required}:\?[^}}]+\}}", env[required]), (
                f"{name}: {required} must be required from the host with ${{{required}:?...}}"
            )


def test_portal_services_wait_for_migrate(services):
    assert services["migrate"].get("restart") == "no"
    for name in ("web", *WORKERS, "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name


def test_every_long_running_service_has_a_healthcheck_or_a_reason(services):
    for name in LONG_RUNNING:
        service = services[name]
        if "healthcheck" in service:
            assert not service["healthcheck"].get("disable"), name
            assert service["healthcheck"].get("test"), name
        else:
            reason = service.get("x-healthcheck-omitted", "")
            assert len(reason.split()) >= 5, f"{name} has no healthcheck and no reason why"


@pytest.mark.parametrize(
    ("name", "queues", "prefetch"),
    [
        ("worker-deliveries", "deliveries", "1"),
        ("worker-syncs", "syncs", "1"),
        ("worker-maintenance", "maintenance,portal", "4"),
    ],
)
def test_each_worker_consumes_its_queue_group_and_probes_its_heartbeat(
    services, name, queues, prefetch
):
    command = services[name]["command"]
    assert command[:4] == ["celery", "-A", "portal", "worker"]
    assert command[command.index("-Q") + 1] == queues
    assert command[command.index("--prefetch-multiplier") + 1] == prefetch
    assert services[name]["healthcheck"]["test"] == [
        "CMD",
        "python",
        "-m",
        "portal.worker_liveness",
    ]


def test_the_worker_queues_cover_every_routed_queue_and_the_default_one(services):
    from portal.settings import base

    consumed = set()
    for name in WORKERS:
        command = services[name]["command"]
        consumed.update(command[command.index("-Q") + 1].split(","))
    routed = {route["queue"] for route in base.CELERY_TASK_ROUTES.values()}
    assert consumed == routed | {"portal"}  # portal: the default queue (portal.ping)


def test_volumes_are_declared_named_volumes(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":", 1)[0]
            assert not source.startswith((".", "/", "~")), f"{name} bind-mounts {source}"
            assert source in declared, f"{name} uses volume {source!r} that is not declared"
            used.add(source)
    assert used == declared, f"declared but unused volumes: {sorted(declared - used)}"
    metrics_mounts = {
        name
        for name, service in services.items()
        if "portal-metrics:/var/run/portal-metrics" in service.get("volumes", [])
    }
    assert {"web", *WORKERS} <= metrics_mounts
