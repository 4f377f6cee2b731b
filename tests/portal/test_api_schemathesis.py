"""The API against its own OpenAPI schema, by schemathesis: no answer is a 5xx, and every
answer (status code, content type, body) is one the schema describes.

Bounded so it stays in the normal suite: a few generated requests per operation, and a
budget of requests for the whole run that fails the run rather than letting it grow unnoticed.
The budget counts requests, not seconds: the generation is derandomized, so the count is the
same on every machine, where a clock budget failed on a busy one (timings belong in bench/).
"""

import pytest
import requests
import schemathesis
from django.conf import settings
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.roles import Role
from tests.approvals.factories import ApprovalRequestFactory
from tests.factories import UserFactory
from tests.maturity.factories import set_maturity
from tests.registry.factories import ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 4
# Every operation together: 2109 requests on 2026-12-03 (about 130 s on a quiet machine; the
# generic signal endpoint alone makes 414 of them); on 2026-12-04 the freeze windows' five
# operations, the approval policies and sign-offs (881: their bodies have many fields) and the
# bulk decisions added theirs.
MAX_REQUESTS = 4400
_requests_made: list[int] = [0]


@pytest.fixture
def api_session(live_server):
    """A signed-in browser session holding every role, with its CSRF token for writes."""
    user = UserFactory(username="fuzzer", roles=tuple(Role))
    client = Client()
    client.force_login(user)
    csrf = _get_new_csrf_string()
    session = requests.Session()
    session_id = client.cookies[settings.SESSION_COOKIE_NAME].value
    session.cookies.set(settings.SESSION_COOKIE_NAME, session_id)
    session.cookies.set(settings.CSRF_COOKIE_NAME, csrf)
    session.headers.update({"X-CSRFToken": csrf, "Referer": live_server.url})
    return session


def _served_schema() -> dict:
    """The document /api/schema/ serves, generated the same way without a request (the
    pytest plugin needs the schema when it collects the tests, before any server runs)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


SCHEMA = _served_schema()
schema = schemathesis.openapi.from_dict(SCHEMA)
# Keep the coverage phase's edge values (empty, zero, too long, wrong type...) but not its
# requests with other HTTP methods, which only probe Django's 405s and double the run.
schema.config.phases.coverage.unexpected_methods = set()


@pytest.fixture
def api_data(db):
    """Something for each list and detail to show: a model with versions, an approval and a
    maturity record."""
    version = ModelVersionFactory(registered_model=RegisteredModelFactory(name="fraud"), version=1)
    ModelVersionFactory(registered_model=version.registered_model, version=2)
    ApprovalRequestFactory(model_version=version)
    set_maturity(version.registered_model.catalog_model, assessed=2, history=[1])


def test_the_fuzzed_schema_is_the_one_the_api_serves(live_server, api_session):
    import json

    response = api_session.get(f"{live_server.url}/api/schema/?format=json", timeout=30)
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(SCHEMA, default=str))


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_answers_what_its_schema_says(case, api_session, api_data, live_server):
    _requests_made[0] += 1
    if _requests_made[0] > MAX_REQUESTS:
        pytest.fail(f"the schemathesis run made over {MAX_REQUESTS} requests: lower MAX_EXAMPLES")
    # The schema's cookieAuth makes schemathesis invent a session cookie; use the real one.
    if case.cookies:
        case.cookies.pop(settings.SESSION_COOKIE_NAME, None)
    # Likewise a made-up bearer token for the token schemes: it would only ever meet the 401
    # (documented; tests/portal/test_api_tokens.py and test_entra_api_tokens.py cover tokens).
    if case.headers:
        case.headers.pop("Authorization", None)
    case.call_and_validate(base_url=live_server.url, session=api_session, checks=CHECKS, timeout=30)
