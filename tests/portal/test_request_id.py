import io
import json
import logging

import pytest

from core.request_context import RequestIdLogFilter, get_request_id

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_fresh_request_id(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert len(first) == 32 and first != second


def test_the_proxy_request_id_is_kept(client):
    response = client.get("/healthz", headers={"X-Request-ID": "edge-7f3a.42"})
    assert response["X-Request-ID"] == "edge-7f3a.42"


@pytest.mark.parametrize("bad", ["has space", "new\nline", "x" * 200, "<script>"])
def test_a_malformed_proxy_id_is_replaced(client, bad):
    response = client.get("/healthz", headers={"X-Request-ID": bad})
    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


def test_the_request_id_is_cleared_after_the_request(client):
    client.get("/healthz", headers={"X-Request-ID": "gone-after"})
    assert get_request_id() is None


def _handler_like_production(stream, settings):
    """A handler built from the LOGGING config: the request-id filter and the JSON format."""
    from logging.config import DictConfigurator

    config = DictConfigurator(settings.LOGGING)
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(config.configure_formatter(dict(settings.LOGGING["formatters"]["json"])))
    return handler


def test_a_log_line_written_during_a_request_carries_its_id(settings):
    """The access middleware's log line about a view without a rule carries the request id."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from portal.middleware import AccessMiddleware, RequestIdMiddleware

    def undeclared(request):
        return HttpResponse("secret")

    def downstream(request):
        return AccessMiddleware(lambda r: HttpResponse()).process_view(request, undeclared, (), {})

    request = RequestFactory().get("/x", headers={"X-Request-ID": "refused-42"})
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    request.resolver_match = None
    stream = io.StringIO()
    logger = logging.getLogger("portal.middleware")
    handler = _handler_like_production(stream, settings)
    logger.addHandler(handler)
    try:
        response = RequestIdMiddleware(downstream)(request)
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 403
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["request_id"] == "refused-42"
    assert line["level"] == "ERROR"
    assert "declares no access rule" in line["message"]
