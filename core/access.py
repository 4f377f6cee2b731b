"""Every view declares who may use it; anything undeclared is refused.

HTML views use the ``access`` decorator (or the ``portal_access`` attribute on a class),
checked by ``portal.middleware.AccessMiddleware``. DRF views set ``portal_access`` and are
checked by ``HasPortalAccess``, the API's default permission class. The Django admin
keeps its own check (``PortalAdminSite.has_permission``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission

from .machine_access import READ_ONLY_MESSAGE, ScopeRefused, machine_credential
from .roles import Role, user_roles


@dataclass(frozen=True)
class AccessRule:
    """Who may call a view: anyone, any signed-in user, or holders of one of ``roles``."""

    public: bool = False
    signed_in: bool = False  # any signed-in user, even one without a role
    roles: frozenset[str] | None = None  # None: any signed-in user with at least one role
    bearer_token_setting: str | None = None  # e.g. a scraper's token, as an alternative

    def allows_user(self, user) -> bool:
        if self.public:
            return True
        if self.signed_in:
            return bool(user.is_authenticated and user.is_active)
        held = user_roles(user)
        if not held:
            return False
        return self.roles is None or bool(held & self.roles)

    def allows_bearer(self, request) -> bool:
        if not self.bearer_token_setting:
            return False
        expected = getattr(settings, self.bearer_token_setting, "")
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not expected or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header.removeprefix("Bearer ").encode(), expected.encode())

    def describe(self) -> str:
        if self.public:
            return "public"
        if self.signed_in:
            return "signed-in users"
        if self.roles is None:
            return "any role"
        return ", ".join(sorted(self.roles))


PUBLIC = AccessRule(public=True)
SIGNED_IN = AccessRule(signed_in=True)
ANY_ROLE = AccessRule()


def roles(*names: Role | str, bearer_token_setting: str | None = None) -> AccessRule:
    return AccessRule(
        roles=frozenset(str(n) for n in names), bearer_token_setting=bearer_token_setting
    )


def access(rule: AccessRule):
    """Declare the access rule of a function view."""

    def decorate(view):
        view.portal_access = rule
        return view

    return decorate


def access_rule_of(view_func) -> AccessRule | None:
    """Find the rule declared on a resolved view (function, CBV or DRF view)."""
    rule = getattr(view_func, "portal_access", None)
    if rule is None:
        view_class = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None)
        rule = getattr(view_class, "portal_access", None)
    return rule


def is_api_view(view_func) -> bool:
    return getattr(view_func, "cls", None) is not None


class HasPortalAccess(BasePermission):
    """DRF permission: the view's ``portal_access`` rule, refusing views that declare none; a
    read-only API token (core.machine_access) is refused every write, whatever its roles."""

    message = "You do not have a role that may use this endpoint."

    def has_permission(self, request, view) -> bool:
        rule = getattr(view, "portal_access", None)
        if rule is None:
            return False
        allowed = rule.allows_bearer(request) or rule.allows_user(request.user)
        credential = machine_credential(request)
        writes = request.method not in SAFE_METHODS
        if allowed and writes and credential is not None and not credential.may_write:
            raise ScopeRefused(READ_ONLY_MESSAGE)
        return allowed
