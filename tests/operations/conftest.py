"""Fixtures of the operations tests: the vendors' sample payloads (fixtures/, README.md
says where each comes from) and a sender that posts them to the running portal."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import requests
from django.urls import reverse

FIXTURES = Path(__file__).parent / "fixtures"
KEYS = {
    "azure-monitor": "test-azure-monitor-key",
    "event-grid": "test-event-grid-key",
    "databricks": "test-databricks-key",
    "evidently": "test-evidently-key",
    "generic": "test-generic-key",
}


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str):
    return json.loads(fixture_bytes(name))


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Sender:
    """POSTs bodies to a signal endpoint of the live portal, with its shared key unless told."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def url(self, slug: str) -> str:
        return self.base_url + reverse(f"api:operations:signals-{slug}")

    def post(self, slug, body, *, key=True, headers=None, params=None, content_type=None):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        sent = {"Content-Type": content_type or "application/json", **(headers or {})}
        if key is True:
            sent["X-Signal-Key"] = KEYS[slug]
        elif key:
            sent["X-Signal-Key"] = key
        return self.session.post(
            self.url(slug), data=body, headers=sent, params=params or {}, timeout=10
        )


@pytest.fixture
def sender(live_server):
    s = Sender(live_server.url)
    yield s
    s.session.close()
