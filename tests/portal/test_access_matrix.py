"""Every URL pattern x every role (and anonymous): the outcome each view declares.

A new view must be added to EXPECTED, or this test fails: that is the point.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from core.access import access_rule_of
from core.roles import Role

pytestmark = pytest.mark.django_db

ANONYMOUS = "anonymous"
NO_ROLE = "no_role"
ROLES = [r.value for r in Role]
PRINCIPALS = [ANONYMOUS, NO_ROLE, *ROLES]
EVERY_ROLE = frozenset(ROLES)
SIGNED_IN = frozenset([NO_ROLE, *ROLES])
EVERYONE = frozenset(PRINCIPALS)

EDITORS = frozenset([Role.ADMIN.value, Role.DATA_SCIENTIST.value])
APPROVERS = frozenset([Role.APPROVER.value])
ADMINS = frozenset([Role.ADMIN.value])
AUDITORS = frozenset([Role.APPROVER.value, Role.MANAGER.value, Role.ADMIN.value])
MANAGERS = frozenset([Role.MANAGER.value])
ASSESSORS = frozenset([Role.MANAGER.value, Role.ADMIN.value])
CONFIRMERS = frozenset([Role.DATA_SCIENTIST.value, Role.APPROVER.value, Role.ADMIN.value])

# The sample data every matrix run has (built by the ``sample`` fixture), so URLs with kwargs
# resolve to real rows: a Unity Catalog style name with dots, two versions in "central".
SAMPLE_SOURCE = "central"
SAMPLE_MODEL = "main.risk.fraud_detector"


@dataclass(frozen=True)
class Target:
    """How to reach a view when ``reverse(name)`` alone cannot.

    ``kwargs`` are its URL kwargs; ``url``, called once the sample data exists, builds the
    whole URL (e.g. with a query string); ``let_in`` lists statuses that are the view's own
    answer past the access layer (e.g. a webhook refusing an unsigned call), so still "let in".
    """

    kwargs: dict = field(default_factory=dict)
    url: Callable[[], str] | None = None
    let_in: frozenset[int] = frozenset()

    def resolve(self, url_name: str) -> str:
        return self.url() if self.url else reverse(url_name, kwargs=self.kwargs)


MODEL = {"name": SAMPLE_MODEL}
VERSION = {"source": SAMPLE_SOURCE, "name": SAMPLE_MODEL, "version": 1}
COMPARE = "?v=central:1&v=central:2"

# url name -> (HTTP method, principals that may use it[, Target])
# A row that does not exist: past the access layer, the view answers 404.
MISSING = Target({"pk": 999999}, let_in=frozenset({404}))

EXPECTED: dict[str, tuple] = {
    "home": ("get", EVERY_ROLE),  # a user without a role gets the "ask for a role" page (403)
    "login": ("get", EVERYONE),
    "logout": ("post", EVERYONE),
    # Entra ID sign-in: public; 404 while Entra is not configured (as here), and the
    # callback's own 400 for an answer that belongs to no sign-in started in this session
    "entra-sign-in": ("get", EVERYONE, Target(let_in=frozenset({404}))),
    "entra-callback": ("get", EVERYONE, Target(let_in=frozenset({400, 404}))),
    "entra-front-channel-logout": ("get", EVERYONE),
    "healthz": ("get", EVERYONE),
    "favicon": ("get", EVERYONE),
    "readyz": ("get", EVERYONE),
    "metrics": ("get", frozenset([Role.ADMIN.value])),
    "api:me": ("get", EVERY_ROLE),
    "api-schema": ("get", EVERY_ROLE),
    "api-docs": ("get", EVERY_ROLE),
    # API tokens: any role makes and revokes its own (someone else's token is a 404)
    "api-tokens": ("get", EVERY_ROLE),
    "api-token-revoke": ("post", EVERY_ROLE, Target({"pk": 999999}, let_in=frozenset({404}))),
    # registry pages
    "registry:model-list": ("get", EVERY_ROLE),
    "registry:model-create": ("get", EDITORS),
    "registry:model-detail": ("get", EVERY_ROLE, Target(MODEL)),
    "registry:model-edit": ("get", EDITORS, Target(MODEL)),
    "registry:model-compare": (
        "get",
        EVERY_ROLE,
        Target(url=lambda: reverse("registry:model-compare", kwargs=MODEL) + COMPARE),
    ),
    "registry:version-detail": ("get", EVERY_ROLE, Target(VERSION)),
    # model cards: every role reads; the services refuse an edit or a review by role (403)
    "registry:model-card": ("get", EVERY_ROLE, Target(MODEL)),
    # "Check now" of a version's binary: editors (data scientists, admins) only
    "registry:version-artifact-check": ("post", EDITORS, Target(VERSION)),
    "registry:model-metrics": ("get", EVERY_ROLE, Target(MODEL)),
    # each team's headline alias: managers and admins set it
    "registry:team-preferences": ("get", ASSESSORS),
    # MLflow webhooks: public, the HMAC signature is the authentication (unsigned: refused)
    "registry:mlflow-webhook": (
        "post",
        EVERYONE,
        Target({"source": SAMPLE_SOURCE}, let_in=frozenset({400, 401, 503})),
    ),
    # The automated ADO check: public, the shared APPROVALS_CHECK_SECRET is the authentication
    # (503 while it is unset, 401 without it)
    "api:approvals:check-ado": ("post", EVERYONE, Target(let_in=frozenset({401, 503}))),
    # ADO service hooks: public, basic auth with ADO_HOOK_SECRET is the authentication
    "pipelines:ado-hook": (
        "post",
        EVERYONE,
        Target({"project": "mlops"}, let_in=frozenset({401, 503})),
    ),
    **{
        f"api:operations:signals-{slug}": ("post", EDITORS, Target(let_in=frozenset({400})))
        for slug in ("azure-monitor", "event-grid", "databricks", "evidently", "generic")
    },
    # registry API
    "api:registry:source-list": ("get", EVERY_ROLE),
    "api:registry:model-list": ("get", EVERY_ROLE),
    "api:registry:model-detail": ("get", EVERY_ROLE, Target(MODEL)),
    "api:registry:version-list": ("get", EVERY_ROLE, Target(MODEL)),
    "api:registry:model-compare": (
        "get",
        EVERY_ROLE,
        Target(url=lambda: reverse("api:registry:model-compare", kwargs=MODEL) + COMPARE),
    ),
    "api:registry:version-detail": ("get", EVERY_ROLE, Target(VERSION)),
    # the sample model has no card yet (400); a review without a body is bad input (400)
    "api:registry:model-card": ("get", EVERY_ROLE, Target(MODEL, let_in=frozenset({400}))),
    "api:registry:model-card-review": (
        "post",
        EVERY_ROLE,
        Target(MODEL, let_in=frozenset({400})),
    ),
    "api:registry:model-card-revisions": ("get", EVERY_ROLE, Target(MODEL)),
    "api:registry:version-artifact": ("get", EVERY_ROLE, Target(VERSION)),
    "api:registry:model-metric-series": ("get", EVERY_ROLE, Target(MODEL)),
    "api:registry:model-events": ("get", EVERY_ROLE, Target(MODEL)),
    "api:registry:model-alias-at": (
        "get",
        EVERY_ROLE,
        Target(
            url=lambda: (
                reverse("api:registry:model-alias-at", kwargs=MODEL)
                + "?alias=champion&at=2026-10-03T14:00:00Z"
            )
        ),
    ),
    # pipelines pages: everyone reads; only editors (data scientists, admins) queue a run
    "pipelines:run-list": ("get", EVERY_ROLE),
    "pipelines:run-detail": ("get", EVERY_ROLE, Target(url=lambda: _run_url("run-detail"))),
    "pipelines:run-row": ("get", EVERY_ROLE, Target(url=lambda: _run_url("run-row"))),
    "pipelines:trigger": ("get", EDITORS, Target(url=lambda: _pipeline_url("trigger"))),
    "pipelines:model-history": ("get", EVERY_ROLE, Target(MODEL)),
    "pipelines:model-history-csv": ("get", EVERY_ROLE, Target(MODEL)),
    # rollback: editors only; without a version the page answers 400, the API too
    "pipelines:rollback-request": ("get", EDITORS, Target(MODEL, let_in=frozenset({400}))),
    # pipelines API
    "api:pipelines:pipeline-list": ("get", EVERY_ROLE),
    "api:pipelines:run-list": ("get", EVERY_ROLE),
    "api:pipelines:run-detail": (
        "get",
        EVERY_ROLE,
        Target(url=lambda: _run_url("run-detail", "api:pipelines")),
    ),
    "api:pipelines:model-deployments": ("get", EVERY_ROLE, Target(MODEL)),
    "api:pipelines:model-history": ("get", EVERY_ROLE, Target(MODEL)),
    "api:pipelines:model-serving": (
        "get",
        EVERY_ROLE,
        Target(
            url=lambda: (
                reverse("api:pipelines:model-serving", kwargs=MODEL)
                + "?environment=PROD&at=2026-10-03T14:00:00Z"
            )
        ),
    ),
    "api:pipelines:model-rollback": ("post", EDITORS, Target(MODEL, let_in=frozenset({400}))),
    # approvals pages: everyone with a role reads; only approvers decide; admins retry
    "approvals:inbox": ("get", EVERY_ROLE),
    "approvals:detail": ("get", EVERY_ROLE, Target(url=lambda: _approval_url("detail"))),
    "approvals:decision-box": (
        "get",
        EVERY_ROLE,
        Target(url=lambda: _approval_url("decision-box")),
    ),
    # an empty POST from an approver is their own 400 (no decision chosen)
    "approvals:decide": (
        "post",
        APPROVERS,
        Target(url=lambda: _approval_url("decide"), let_in=frozenset({400})),
    ),
    "approvals:outbox-retry": ("post", ADMINS, Target({"pk": 999999}, let_in=frozenset({404}))),
    # deciding several at once: approvers only (no ids is the screen's own 400; an unknown
    # result token its 404)
    "approvals:bulk": ("get", APPROVERS, Target(let_in=frozenset({400}))),
    "approvals:bulk-decide": ("post", APPROVERS, Target(let_in=frozenset({400}))),
    "approvals:bulk-result": ("get", APPROVERS, Target({"token": "gone"}, let_in=frozenset({404}))),
    "approvals:audit": ("get", AUDITORS),
    "approvals:audit-csv": ("get", AUDITORS),
    # freeze windows: everyone with a role reads; managers and admins edit
    "approvals:freeze": ("get", EVERY_ROLE),
    "approvals:freeze-new": ("get", ASSESSORS),
    "approvals:freeze-edit": ("get", ASSESSORS, MISSING),
    "approvals:freeze-active": ("post", ASSESSORS, MISSING),
    "approvals:freeze-delete": ("post", ASSESSORS, MISSING),
    "reauthenticate": ("get", SIGNED_IN),
    # approvals API (the same rules as the pages)
    "api:approvals:approval-list": ("get", EVERY_ROLE),
    "api:approvals:approval-detail": (
        "get",
        EVERY_ROLE,
        Target(url=lambda: _approval_url("approval-detail", "api:approvals")),
    ),
    "api:approvals:approval-decision": (
        "post",
        APPROVERS,
        Target(
            url=lambda: _approval_url("approval-decision", "api:approvals"),
            let_in=frozenset({400}),
        ),
    ),
    # an empty POST from an approver is its own 400 (no ids)
    "api:approvals:bulk-decisions": ("post", APPROVERS, Target(let_in=frozenset({400}))),
    "api:approvals:audit-list": ("get", AUDITORS),
    # post-deployment sign-offs: everyone reads; the service lets only approvers close one
    # (anyone else: its audited 403)
    "approvals:signoff-close": ("post", EVERY_ROLE, MISSING),
    "api:approvals:signoff-list": ("get", EVERY_ROLE),
    "api:approvals:signoff-close": ("post", EVERY_ROLE, MISSING),
    # approval policies: everyone reads (writes: managers and admins, tests/approvals)
    "api:approvals:policy-list": ("get", EVERY_ROLE),
    "api:approvals:policy-detail": ("get", EVERY_ROLE, MISSING),
    "api:approvals:policy-effective": (
        "get",
        EVERY_ROLE,
        Target(url=lambda: reverse("api:approvals:policy-effective") + "?environment=PROD"),
    ),
    "api:approvals:freeze-window-list": ("get", EVERY_ROLE),
    "api:approvals:freeze-window-detail": ("get", EVERY_ROLE, MISSING),
    "api:approvals:outbox-retry": (
        "post",
        ADMINS,
        Target({"pk": 999999}, let_in=frozenset({404})),
    ),
    # operations pages and API: everyone with a role reads; data scientists, approvers and
    # admins confirm or decline a proposal; admins create a match rule (no such row: 404)
    "operations:inbox": ("get", EVERY_ROLE),
    "operations:episode": ("get", EVERY_ROLE, MISSING),
    "operations:episode-confirm": ("post", CONFIRMERS, MISSING),
    "operations:episode-decline": ("post", CONFIRMERS, MISSING),
    "operations:signal": ("get", EVERY_ROLE, MISSING),
    "operations:signal-rule-create": ("post", ADMINS, MISSING),
    # the demo's "send a signal" button: admins; 404 unless settings.DEMO, 400 without a model
    "operations:demo-signal": ("post", ADMINS, Target(let_in=frozenset({400, 404}))),
    "api:operations:episode-list": ("get", EVERY_ROLE),
    "api:operations:episode-detail": ("get", EVERY_ROLE, MISSING),
    "api:operations:episode-confirm": ("post", CONFIRMERS, MISSING),
    "api:operations:episode-decline": ("post", CONFIRMERS, MISSING),
    "api:operations:signal-list": ("get", EVERY_ROLE),
    "api:operations:signal-detail": ("get", EVERY_ROLE, MISSING),
    "api:operations:policy-list": ("get", EVERY_ROLE),
    "api:operations:model-operations": ("get", EVERY_ROLE, Target({"name": SAMPLE_MODEL})),
    # maturity pages: everyone with a role reads; managers declare; managers and admins
    # re-assess (a POST with no reason is the declaration form's 400)
    "maturity:dashboard": ("get", EVERY_ROLE),
    "maturity:dashboard-csv": ("get", EVERY_ROLE),
    "maturity:criteria": ("get", EVERY_ROLE),
    "maturity:declare": ("post", MANAGERS, Target(MODEL, let_in=frozenset({400}))),
    "maturity:assess": ("post", ASSESSORS, Target(MODEL)),
    # maturity API
    "api:maturity:criteria": ("get", EVERY_ROLE),
    "api:maturity:summary": ("get", EVERY_ROLE),
    "api:maturity:model-list": ("get", EVERY_ROLE),
    "api:maturity:model-detail": ("get", EVERY_ROLE, Target(MODEL)),
    "api:maturity:declaration": ("post", MANAGERS, Target(MODEL, let_in=frozenset({400}))),
}


def _approval_url(name: str, namespace: str = "approvals") -> str:
    from approvals.models import ApprovalRequest

    return reverse(f"{namespace}:{name}", kwargs={"pk": ApprovalRequest.objects.get().pk})


def _run_url(name: str, namespace: str = "pipelines") -> str:
    from pipelines.models import PipelineRun

    run = PipelineRun.objects.get(pipeline__kind="training")
    return reverse(f"{namespace}:{name}", kwargs={"pk": run.pk})


def _pipeline_url(name: str) -> str:
    from pipelines.models import Pipeline

    return reverse(f"pipelines:{name}", kwargs={"pk": Pipeline.objects.get(kind="training").pk})


@pytest.fixture
def sample(db):
    """The rows the EXPECTED targets point at."""
    from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

    registered = RegisteredModelFactory(name=SAMPLE_MODEL)
    assert registered.source.name == SAMPLE_SOURCE
    ModelVersionFactory(registered_model=registered, version=1)
    ModelVersionFactory(registered_model=registered, version=2)
    from tests.pipelines.factories import PipelineFactory, PipelineRunFactory

    training = PipelineFactory(catalog_model=registered.catalog_model, kind="training")
    PipelineRunFactory(pipeline=training, running=True)
    from tests.approvals.factories import ApprovalRequestFactory

    ApprovalRequestFactory()
    return registered


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


def _assert_outcome(
    response, *, allowed: bool, principal: str, label: str, let_in: frozenset[int] = frozenset()
):
    status = response.status_code
    location = response.headers.get("Location", "")
    login_paths = (reverse("login"), reverse("admin:login"))
    to_login = status == 302 and "next=" in location and any(p in location for p in login_paths)
    if allowed:
        assert (status < 400 or status in let_in) and not to_login, (
            f"{label}: {principal} should be let in, got {status}"
        )
    elif principal == ANONYMOUS:
        assert to_login or status in (401, 403), (
            f"{label}: anonymous should be refused, got {status}"
        )
    else:
        assert status == 403, f"{label}: {principal} should get 403, got {status} {location}"


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("url_name", sorted(EXPECTED))
def test_matrix(url_name, principal, client, make_user, sample):
    method, allowed, *rest = EXPECTED[url_name]
    target = rest[0] if rest else Target()
    client = _client_for(principal, client, make_user)
    response = getattr(client, method)(target.resolve(url_name))
    _assert_outcome(
        response,
        allowed=principal in allowed,
        principal=principal,
        label=url_name,
        let_in=target.let_in,
    )


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
