"""Who an Entra sign-in is in the portal: the user matched by tenant and object id (never by
e-mail), with names, e-mail and role groups refreshed from the id token's claims.

portal/entra.py talks to Entra and calls ``user_from_claims`` once the claims are checked. The
sign-in's errors live here, the lower of the two modules (portal.entra names them too).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.roles import Role

from .models import EntraAccount
from .services import role_groups_ensure

logger = logging.getLogger("portal.entra")  # the sign-in's log, whichever module writes it


class SignInFailed(Exception):
    """The answer from Entra cannot sign anyone in; ``reason`` is for the person."""

    def __init__(self, reason: str, code: str = "invalid", *, claims=None, user=None):
        super().__init__(reason)
        self.reason = reason
        self.code = code  # short and stable, for the audit trail (core.signals)
        self.claims = claims or {}
        self.user = user


class EntraUnavailable(SignInFailed):
    """Entra could not be reached (or answered nonsense)."""


def roles_from_claims(claims: dict) -> tuple[frozenset[str], list[str]]:
    """The portal roles an id token grants (app roles and mapped groups), and the app roles
    it carried that map to nothing here."""
    valid = set(Role.values)
    granted: set[str] = set()
    unmapped: list[str] = []
    for value in claims.get("roles") or []:
        role = settings.ENTRA_ROLE_CLAIMS.get(value)
        if role in valid:
            granted.add(role)
        else:
            unmapped.append(value)
    group_roles = settings.ENTRA_GROUP_ROLES
    for group_id in claims.get("groups") or []:
        role = group_roles.get(group_id)
        if role in valid:
            granted.add(role)
    if "groups" in (claims.get("_claim_names") or {}) or claims.get("hasgroups"):
        logger.warning(
            "Entra ID left out the groups of %s (too many groups): use app roles instead",
            claims.get("oid"),
        )
    return frozenset(granted), unmapped


def _names(claims: dict) -> tuple[str, str]:
    first, last = claims.get("given_name") or "", claims.get("family_name") or ""
    if not (first or last) and claims.get("name"):
        first, _, last = claims["name"].strip().partition(" ")
    return first[:150], last[:150]


def _email(claims: dict) -> str:
    email = claims.get("email") or ""
    if not email and "@" in (claims.get("preferred_username") or ""):
        email = claims["preferred_username"]
    return email[:254]


def user_from_claims(
    claims: dict, *, sealed_cache: str, home_account_id: str
) -> tuple[object, frozenset[str], list[str]]:
    """The portal user of these claims, matched by tenant and object id (never by e-mail),
    created on a first sign-in; their names, e-mail and role groups refreshed from the claims,
    and the sealed MSAL token cache kept for the worker. Returns (user, roles, unmapped)."""
    tid, oid = claims["tid"].lower(), claims["oid"].lower()
    first, last = _names(claims)
    email = _email(claims)
    roles, unmapped = roles_from_claims(claims)
    user_model = get_user_model()
    for _attempt in range(2):  # a concurrent first sign-in of the same person may win the race
        try:
            with transaction.atomic():
                account = (
                    EntraAccount.objects.select_for_update()
                    .select_related("user")
                    .filter(tenant_id=tid, object_id=oid)
                    .first()
                )
                if account is None:
                    user = user_model(username=_free_username(tid, oid))
                    user.set_unusable_password()
                    user.save()
                    account = EntraAccount(user=user, tenant_id=tid, object_id=oid)
                user = account.user
                if not user.is_active:
                    raise SignInFailed(
                        "your portal account is disabled; ask a portal admin",
                        "inactive",
                        claims=claims,
                        user=user,
                    )
                user.first_name, user.last_name, user.email = first, last, email
                user.last_login = timezone.now()
                user.save(update_fields=["first_name", "last_name", "email", "last_login"])
                role_groups_set(user, roles)
                account.preferred_username = (claims.get("preferred_username") or "")[:254]
                account.home_account_id = home_account_id
                account.token_cache = sealed_cache
                account.roles_from_entra = sorted(roles)
                account.claimed_roles = sorted(claims.get("roles") or []) + sorted(
                    claims.get("groups") or []
                )
                account.last_sign_in_at = timezone.now()
                account.save()
                return user, roles, unmapped
        except IntegrityError:
            continue
    raise SignInFailed("your account could not be recorded", "conflict", claims=claims)


def _free_username(tid: str, oid: str) -> str:
    user_model = get_user_model()
    username = f"entra-{oid}"
    if user_model.objects.filter(username=username).exists():  # same oid in another tenant
        username = f"entra-{tid}-{oid}"
    return username


def role_groups_set(user, roles: frozenset[str]) -> None:
    """The user's role groups become exactly ``roles``; other groups are left alone (the
    Entra sign-in and an Entra access token of a service principal both apply them)."""
    groups = {g.name: g for g in Group.objects.filter(name__in=Role.values)}
    if len(groups) < len(Role.values):
        groups = role_groups_ensure()
    held = set(user.groups.filter(name__in=Role.values).values_list("name", flat=True))
    if extra := held - roles:
        user.groups.remove(*(groups[name] for name in extra))
    if missing := roles - held:
        user.groups.add(*(groups[name] for name in missing))
    user.__dict__.pop("_portal_roles", None)
