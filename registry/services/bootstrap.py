"""The registry sources the environment declares (``manage.py bootstrap_from_env``).

``MLFLOW_TRACKING_URI`` (with ``MLFLOW_REGISTRY_URI`` when the registry differs) declares the
central source, ``DATA_DISCOVERY_MLFLOW_TRACKING_URI`` / ``..._REGISTRY_URI`` a second one, so a
fresh production start mirrors the registry with no admin clicks. The environment owns the
URIs and the central flag of those rows; interval, UI link and "enabled" stay the admin's.
A source made in the admin is never edited or deleted here."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from core import environment
from core.environment import EnvironmentInvalid, Outcome

from ..models import RegistrySource
from .schedules import source_schedule_ensure


@dataclass(frozen=True)
class Declaration:
    """One source the environment may declare: its fixed name and its two variables."""

    name: str
    tracking_variable: str
    registry_variable: str
    is_central: bool

    def declared_by(self) -> dict[str, str]:
        return {
            "tracking_uri": self.tracking_variable,
            "registry_uri": self.registry_variable,
            "is_central": self.tracking_variable,
        }


DECLARATIONS = (
    Declaration("central", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", True),
    Declaration(
        "data-discovery",
        "DATA_DISCOVERY_MLFLOW_TRACKING_URI",
        "DATA_DISCOVERY_MLFLOW_REGISTRY_URI",
        False,
    ),
)

# A changed URI points the source at another registry: its cursor means nothing there.
URI_FIELDS = ("tracking_uri", "registry_uri")


def _wanted(declaration: Declaration) -> tuple[dict | None, list[str]]:
    """The field values the variables ask for (None: not declared) and their problems."""
    tracking, tracking_set = environment.variable(declaration.tracking_variable)
    registry, registry_set = environment.variable(declaration.registry_variable)
    problems = []
    for name, value, was_set in (
        (declaration.tracking_variable, tracking, tracking_set),
        (declaration.registry_variable, registry, registry_set),
    ):
        if was_set and not value:
            problems.append(f"{name} is set but blank: give it a URI or unset it.")
    if registry and not tracking:
        problems.append(
            f"{declaration.registry_variable} is set but {declaration.tracking_variable} is "
            "not: the registry URI needs the tracking URI beside it (e.g. 'databricks')."
        )
    if problems or not tracking:
        return None, problems
    wanted = {
        "tracking_uri": tracking,
        "registry_uri": registry,
        "is_central": declaration.is_central,
    }
    candidate = RegistrySource(name=declaration.name, **wanted)
    return wanted, environment.field_problems(candidate, declaration.declared_by())


def _declare(declaration: Declaration, wanted: dict) -> Outcome:
    what = f"registry source '{declaration.name}'"
    variable = declaration.tracking_variable
    declared_by = declaration.declared_by()
    source = RegistrySource.objects.filter(name=declaration.name).first()
    if source is not None and not source.from_environment:
        return Outcome(
            what,
            environment.LEFT_ALONE,
            f"a source of that name was made in the admin, so {variable} declares nothing; "
            "rename or delete that source in the admin to let the environment declare it",
        )
    if source is None:
        twin = RegistrySource.objects.filter(
            tracking_uri=wanted["tracking_uri"], registry_uri=wanted["registry_uri"]
        ).first()
        if twin is not None:
            return Outcome(
                what,
                environment.LEFT_ALONE,
                f"the source '{twin.name}', made in the admin, already mirrors "
                f"{wanted['tracking_uri']}, so {variable} declares nothing (a second source "
                "would mirror the same registry twice)",
            )
        source = RegistrySource(name=declaration.name, declared_by=declared_by, **wanted)
        source.save()
        source_schedule_ensure(source=source)
        return Outcome(what, environment.CREATED, wanted["tracking_uri"])
    changes = {field: value for field, value in wanted.items() if getattr(source, field) != value}
    if source.declared_by != declared_by:
        changes["declared_by"] = declared_by
    if any(field in changes for field in URI_FIELDS):
        changes.update(cursor_ms=None, last_full_sync_at=None)
    for field, value in changes.items():
        setattr(source, field, value)
    if changes:
        source.save()
    source_schedule_ensure(source=source)
    if not changes:
        return Outcome(what, environment.UNCHANGED, wanted["tracking_uri"])
    return Outcome(what, environment.UPDATED, ", ".join(sorted(changes)))


def _release(declaration: Declaration) -> Outcome:
    """The variable is unset now: the row it declared stays (models hang on it) and becomes
    the admin's to edit, disable or delete."""
    what = f"registry source '{declaration.name}'"
    source = RegistrySource.objects.filter(name=declaration.name).first()
    if source is None or not source.from_environment:
        return Outcome(what, environment.NOT_DECLARED, f"{declaration.tracking_variable} unset")
    source.declared_by = {}
    source.save(update_fields=["declared_by", "updated_at"])
    return Outcome(
        what,
        environment.RELEASED,
        f"{declaration.tracking_variable} is unset now: the source stays and is edited in "
        "the admin from now on (disable or delete it there)",
    )


def registry_sources_bootstrap() -> list[Outcome]:
    """Create or update the sources the environment declares; raise ``EnvironmentInvalid``
    (naming every bad variable) before writing anything when a variable is unusable."""
    plans, problems = [], []
    for declaration in DECLARATIONS:
        wanted, found = _wanted(declaration)
        plans.append((declaration, wanted))
        problems += found
    if problems:
        raise EnvironmentInvalid(problems)
    with transaction.atomic():
        return [
            _declare(declaration, wanted) if wanted is not None else _release(declaration)
            for declaration, wanted in plans
        ]
