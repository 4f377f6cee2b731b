"""The ADO project the environment declares (``manage.py bootstrap_from_env``).

``AZURE_DEVOPS_ORG_URL`` and ``AZURE_DEVOPS_PROJECT`` declare one project, so a fresh
production start mirrors its pipelines with no admin clicks. The credentials are not part of
the row: ``AZURE_DEVOPS_PAT`` or the ``ENTRA_*`` service principal stay in the settings
(``pipelines.client.credentials_from_settings``) and never reach the database. The
environment owns the organisation URL and the project; "enabled" and the interval stay the
admin's. A project made in the admin is never edited or deleted here."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.text import slugify

from core import environment
from core.environment import EnvironmentInvalid, Outcome

from ..client import credentials_from_settings
from ..models import AdoProject
from .schedules import project_schedule_ensure

ORG_VARIABLE = "AZURE_DEVOPS_ORG_URL"
PROJECT_VARIABLE = "AZURE_DEVOPS_PROJECT"
DECLARED_BY = {"organization_url": ORG_VARIABLE, "project": PROJECT_VARIABLE}
# What ADO refuses in a project name (learn.microsoft.com, "Naming restrictions").
PROJECT_FORBIDDEN = set("\\/:*?\"'<>;#$*{},+=[]|")
PROJECT_MAX_LENGTH = 64


def _org_url_problem(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (
            f"{ORG_VARIABLE} is “{value}”: it needs an http(s) URL of the organisation, "
            "e.g. https://dev.azure.com/contoso."
        )
    if parts.query or parts.fragment or any(c.isspace() for c in value):
        return f"{ORG_VARIABLE} is “{value}”: write the organisation's URL alone, no query."
    return ""


def _project_problem(value: str) -> str:
    bad = sorted(set(value) & PROJECT_FORBIDDEN) or [c for c in value if ord(c) < 32]
    if bad:
        return (
            f"{PROJECT_VARIABLE} is “{value}”: ADO project names cannot contain {''.join(bad)!r}."
        )
    if value.startswith(("_", ".")) or value.endswith("."):
        return f"{PROJECT_VARIABLE} is “{value}”: ADO project names cannot start with _ or ."
    if len(value) > PROJECT_MAX_LENGTH:
        return f"{PROJECT_VARIABLE} is longer than ADO's {PROJECT_MAX_LENGTH} characters."
    return ""


def _wanted() -> tuple[dict | None, list[str]]:
    """The organisation URL and project the variables ask for (None: not declared) and the
    problems of each variable that is set but unusable."""
    org, org_set = environment.variable(ORG_VARIABLE)
    project, project_set = environment.variable(PROJECT_VARIABLE)
    problems = []
    for name, value, was_set in (
        (ORG_VARIABLE, org, org_set),
        (PROJECT_VARIABLE, project, project_set),
    ):
        if was_set and not value:
            problems.append(f"{name} is set but blank: give it a value or unset it.")
    if org and not project_set:
        problems.append(f"{PROJECT_VARIABLE} is unset but {ORG_VARIABLE} is set: name the project.")
    if project and not org_set:
        problems.append(
            f"{ORG_VARIABLE} is unset but {PROJECT_VARIABLE} is set: give the organisation's URL."
        )
    if org and (problem := _org_url_problem(org)):
        problems.append(problem)
    if project and (problem := _project_problem(project)):
        problems.append(problem)
    if problems or not (org and project):
        return None, problems
    wanted = {"organization_url": org.rstrip("/"), "project": project}
    return wanted, environment.field_problems(AdoProject(name="x", **wanted), DECLARED_BY)


def _declared_project() -> AdoProject | None:
    """The project the environment declared earlier, if any (read in Python, not by a JSON
    lookup, so SQLite and PostgreSQL agree; there are a handful of projects)."""
    return next((p for p in AdoProject.objects.order_by("pk") if p.from_environment), None)


def _name_for(project: str) -> str:
    return slugify(project)[:64].strip("-") or "ado"


def _declare(wanted: dict) -> Outcome:
    what = f"ADO project '{wanted['project']}'"
    project = _declared_project()
    if project is None:
        twin = AdoProject.objects.filter(**wanted).first()
        clash = AdoProject.objects.filter(name=_name_for(wanted["project"])).first()
        if twin or clash:
            row = twin or clash
            reason = "mirrors this project" if twin else "has the name this one would take"
            return Outcome(
                what,
                environment.LEFT_ALONE,
                f"the ADO project '{row.name}', made in the admin, {reason}, so "
                f"{ORG_VARIABLE} and {PROJECT_VARIABLE} declare nothing; rename or delete "
                "it in the admin to let the environment declare it",
            )
        project = AdoProject(name=_name_for(wanted["project"]), declared_by=DECLARED_BY, **wanted)
        project.save()
        project_schedule_ensure(project=project)
        return Outcome(
            what, environment.CREATED, f"{wanted['organization_url']}, as '{project.name}'"
        )
    changes = {field: value for field, value in wanted.items() if getattr(project, field) != value}
    if changes and AdoProject.objects.filter(**wanted).exclude(pk=project.pk).exists():
        return Outcome(
            what,
            environment.LEFT_ALONE,
            f"another ADO project, made in the admin, mirrors it already; the project "
            f"'{project.name}' the environment declared stays as it was",
        )
    if project.declared_by != DECLARED_BY:
        changes["declared_by"] = DECLARED_BY
    if "organization_url" in changes or "project" in changes:
        # Another project: what the cursor says about the old one means nothing there.
        changes["cursor"] = None
    for field, value in changes.items():
        setattr(project, field, value)
    if changes:
        project.save()
    project_schedule_ensure(project=project)
    if not changes:
        return Outcome(what, environment.UNCHANGED, f"'{project.name}'")
    return Outcome(what, environment.UPDATED, ", ".join(sorted(changes)))


def _release() -> Outcome:
    """Both variables are unset now: the project they declared stays (pipelines hang on it)
    and becomes the admin's to edit, disable or delete."""
    project = _declared_project()
    if project is None:
        return Outcome("ADO project", environment.NOT_DECLARED, f"{ORG_VARIABLE} unset")
    AdoProject.objects.filter(pk=project.pk).update(declared_by={})
    return Outcome(
        f"ADO project '{project.project}'",
        environment.RELEASED,
        f"{ORG_VARIABLE} is unset now: the project '{project.name}' stays and is edited in "
        "the admin from now on (disable or delete it there)",
    )


def _credentials_note() -> str:
    """Why syncs will fail when the credentials are missing (a warning, not a refusal: the
    credentials may be fixed without touching the rows)."""
    try:
        credentials_from_settings()
    except ImproperlyConfigured as error:
        return f"warning: {error}"
    return ""


def ado_project_bootstrap() -> list[Outcome]:
    """Create or update the ADO project the environment declares; raise
    ``EnvironmentInvalid`` (naming each bad variable) before writing anything."""
    wanted, problems = _wanted()
    if problems:
        raise EnvironmentInvalid(problems)
    with transaction.atomic():
        if wanted is None:
            return [_release()]
        outcomes = [_declare(wanted)]
    if note := _credentials_note():
        outcomes.append(Outcome("ADO credentials", "missing", note))
    return outcomes
