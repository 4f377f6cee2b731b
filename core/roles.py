"""The portal's roles. Each is a Django group; a user may hold several."""

from django.db import models


class Role(models.TextChoices):
    APPROVER = "approver", "Approver"
    DATA_SCIENTIST = "data_scientist", "Data scientist"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin / operator"


def user_roles(user) -> frozenset[str]:
    """Return the role names a user holds (superusers count as admin)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_portal_roles", None)
    if cached is None:
        names = set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
        if user.is_superuser:
            names.add(Role.ADMIN)
        cached = frozenset(names)
        user._portal_roles = cached
    return cached


def user_has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
