"""State changes owned by the portal app: role groups and demo accounts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from core.environment import EnvironmentInvalid, Outcome
from core.roles import Role
from core.signals import sign_in_denied
from pipelines import services as pipelines_services
from registry import services as registry_services


def role_groups_ensure() -> dict[str, Group]:
    """Create one group per role; the admin group gets every model permission for the admin."""
    groups = {}
    for role in Role:
        group, _ = Group.objects.get_or_create(name=role.value)
        groups[role.value] = group
    groups[Role.ADMIN].permissions.set(Permission.objects.all())
    return groups


def role_groups_ensure_after_migrate(*, apps=None, using="default", **kwargs) -> None:
    """Fill the role groups once every app's permissions exist.

    ``post_migrate`` reaches the portal app before the apps listed after it, whose content
    types and permissions would not exist yet on a fresh database; create them all first
    (both steps are idempotent) so the admin group holds every permission after one migrate.
    """
    from django.apps import apps as app_registry
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes

    for app_config in app_registry.get_app_configs():
        if app_config.models_module is None:
            continue
        create_contenttypes(app_config, verbosity=0, using=using, apps=apps or app_registry)
        create_permissions(app_config, verbosity=0, using=using, apps=apps or app_registry)
    role_groups_ensure()


def sign_in_lockout_announce(sender, request=None, username=None, **kwargs) -> None:
    """django-axes' ``user_locked_out``: tell the listeners of ``sign_in_denied`` (the audit
    trail) that sign-in is locked for this account or address, as ``locked_out``."""
    user = None
    if username:
        model = get_user_model()
        user = model.objects.filter(**{model.USERNAME_FIELD: username}).first()
    sign_in_denied.send(
        sender=__name__,
        request=request,
        user=user,
        reason="locked_out",
        claims={"preferred_username": str(username or "")[:150]},
        method="local",
    )


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    roles: tuple[str, ...]
    created: bool


DEMO_USERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # username: (first name, last name, roles)
    "alice": ("Alice", "Approver", (Role.APPROVER,)),
    "dana": ("Dana", "Scientist", (Role.DATA_SCIENTIST,)),
    "maya": ("Maya", "Manager", (Role.MANAGER,)),
    "oscar": ("Oscar", "Operator", (Role.ADMIN,)),
}


@transaction.atomic
def demo_users_ensure(*, passwords: dict[str, str] | None = None) -> list[DemoAccount]:
    """Create one demo user per role, keeping a known password for each.

    ``passwords`` holds the passwords of earlier runs; users missing from it get a new one.
    """
    passwords = dict(passwords or {})
    groups = role_groups_ensure()
    user_model = get_user_model()
    accounts = []
    for username, (first, last, role_names) in DEMO_USERS.items():
        password = passwords.get(username) or secrets.token_urlsafe(12)
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@example.com"},
        )
        if created or not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
        user.groups.add(*(groups[r] for r in role_names))
        accounts.append(DemoAccount(username, password, tuple(role_names), created))
    return accounts


def environment_bootstrap() -> list[Outcome]:
    """Declare the registry sources and the ADO project the environment names
    (``manage.py bootstrap_from_env``), all or nothing: every app's variables are checked and
    one ``EnvironmentInvalid`` names each bad one, and then nothing is written."""
    outcomes, problems = [], []
    with transaction.atomic():
        for bootstrap in (
            registry_services.registry_sources_bootstrap,
            pipelines_services.ado_project_bootstrap,
        ):
            try:
                outcomes += bootstrap()
            except EnvironmentInvalid as error:
                problems += error.problems
        if problems:
            raise EnvironmentInvalid(problems)
    return outcomes
