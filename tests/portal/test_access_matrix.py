"""Every URL pattern x every role (and anonymous): the outcome each view declares.

A new view must be added to EXPECTED, or this test fails: that is the point.
"""

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from portal.access import access_rule_of
from portal.roles import Role

pytestmark = pytest.mark.django_db

ANONYMOUS = "anonymous"
NO_ROLE = "no_role"
ROLES = [r.value for r in Role]
PRINCIPALS = [ANONYMOUS, NO_ROLE, *ROLES]
EVERY_ROLE = frozenset(ROLES)
SIGNED_IN = frozenset([NO_ROLE, *ROLES])
EVERYONE = frozenset(PRINCIPALS)

# url name -> (HTTP method, principals that may use it)
EXPECTED: dict[str, tuple[str, frozenset[str]]] = {
    "home": ("get", EVERY_ROLE),  # a user without a role gets the "ask for a role" page (403)
    "login": ("get", EVERYONE),
    "logout": ("post", EVERYONE),
    "healthz": ("get", EVERYONE),
    "readyz": ("get", EVERYONE),
    "metrics": ("get", frozenset([Role.ADMIN.value])),
    "api:me": ("get", EVERY_ROLE),
    "api-schema": ("get", EVERY_ROLE),
    "api-docs": ("get", EVERY_ROLE),
}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            namespace = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            yield from _walk(entry.url_patterns, namespace)
        elif isinstance(entry, URLPattern):
            yield prefix, (f"{prefix}{entry.name}" if entry.name else None), entry


def _portal_patterns():
    """Every pattern outside the Django admin (which has its own check, tested below)."""
    return [
        (n, p) for ns, n, p in _walk(get_resolver().url_patterns) if not ns.startswith("admin:")
    ]


def test_every_view_is_in_the_matrix_and_declares_a_rule():
    found = {}
    for name, pattern in _portal_patterns():
        assert name, f"URL pattern {pattern.pattern} has no name, so the matrix cannot cover it"
        found[name] = pattern
        assert access_rule_of(pattern.callback) is not None, f"view {name} declares no access rule"
    assert set(found) == set(EXPECTED), (
        f"views missing from EXPECTED: {sorted(set(found) - set(EXPECTED))}; "
        f"stale entries: {sorted(set(EXPECTED) - set(found))}"
    )


def _client_for(principal, client, make_user):
    if principal == ANONYMOUS:
        return client
    user = make_user() if principal == NO_ROLE else make_user(principal)
    client.force_login(user)
    return client


def _assert_outcome(response, *, allowed: bool, principal: str, label: str):
    status = response.status_code
    location = response.headers.get("Location", "")
    login_paths = (reverse("login"), reverse("admin:login"))
    to_login = status == 302 and "next=" in location and any(p in location for p in login_paths)
    if allowed:
        assert status < 400 and not to_login, f"{label}: {principal} should be let in, got {status}"
    elif principal == ANONYMOUS:
        assert to_login or status in (401, 403), (
            f"{label}: anonymous should be refused, got {status}"
        )
    else:
        assert status == 403, f"{label}: {principal} should get 403, got {status} {location}"


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("url_name", sorted(EXPECTED))
def test_matrix(url_name, principal, client, make_user):
    method, allowed = EXPECTED[url_name]
    client = _client_for(principal, client, make_user)
    response = getattr(client, method)(reverse(url_name))
    _assert_outcome(response, allowed=principal in allowed, principal=principal, label=url_name)


def _admin_urls():
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        opts = model._meta
        urls.append(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    return urls


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_admin_is_for_the_admin_role_only(principal, client, make_user):
    client = _client_for(principal, client, make_user)
    for url in _admin_urls():
        response = client.get(url)
        _assert_outcome(
            response, allowed=principal == Role.ADMIN.value, principal=principal, label=url
        )


def test_admin_login_sends_people_to_the_portal_sign_in(client):
    response = client.get(reverse("admin:login") + "?next=/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("login"))
    assert b'name="password"' in response.content


def test_a_view_without_a_rule_is_refused_to_everyone(rf, make_user):
    from django.http import HttpResponse

    from portal.middleware import AccessMiddleware

    def undeclared(request):
        return HttpResponse("secret")

    request = rf.get("/somewhere")
    request.user = make_user(Role.ADMIN)
    request.resolver_match = None
    response = AccessMiddleware(lambda r: HttpResponse()).process_view(request, undeclared, (), {})
    assert response is not None and response.status_code == 403


def test_an_api_view_without_a_rule_is_refused(rf, make_user):
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class Undeclared(APIView):
        def get(self, request):
            return Response({"secret": True})

    request = rf.get("/api/v1/undeclared")
    request.user = make_user(Role.ADMIN)
    request._dont_enforce_csrf_checks = True
    from rest_framework.test import force_authenticate

    force_authenticate(request, user=request.user)
    response = Undeclared.as_view()(request)
    assert response.status_code == 403
