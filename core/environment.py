"""What the bootstrap from environment variables (``manage.py bootstrap_from_env``) shares.

Each app that owns rows the environment can declare (registry sources, the ADO project) has a
service that validates its variables, then creates or updates its rows and reports an
``Outcome`` per row; a variable that is set but unusable is an ``EnvironmentInvalid`` naming
it, raised before anything is written."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from .errors import PortalError

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
LEFT_ALONE = "left alone"
RELEASED = "released"
NOT_DECLARED = "not declared"


class EnvironmentInvalid(PortalError):
    """One or more variables are set but unusable; ``problems`` has one sentence each, every
    sentence starting with the variable's name."""

    code = "environment_invalid"

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Outcome:
    """What the bootstrap did with one row (or one declaration): ``what`` names the row."""

    what: str
    action: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.what}: {self.action}" + (f" ({self.detail})" if self.detail else "")


def variable(name: str) -> tuple[str, bool]:
    """The setting ``name`` (settings load each variable under its own name), stripped, and
    whether it was set to something: a value of spaces only is set but blank."""
    raw = getattr(settings, name, "") or ""
    return str(raw).strip(), bool(str(raw))


def field_problems(instance, declared_by: dict[str, str], *, exclude=()) -> list[str]:
    """The model's own validation of the fields the environment sets (lengths, URL syntax,
    ``clean()``), each message in the name of the variable that set the field."""
    owned = set(declared_by)
    others = [f.name for f in instance._meta.fields if f.name not in owned]
    try:
        instance.full_clean(
            exclude=[*others, *exclude], validate_unique=False, validate_constraints=False
        )
    except ValidationError as error:
        problems = []
        for field, messages in error.message_dict.items():
            name = declared_by.get(field) or " / ".join(dict.fromkeys(declared_by.values()))
            problems += [f"{name}: {message}" for message in messages]
        return problems
    return []
